"""Virtual camera line-ups. Device names start with ``SYN-`` so nobody mistakes them for real phones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sci_lightning.data.synthetic.camera import Pipeline, Sensor, VirtualCamera

MAKE = "sci-lightning (synthetic)"

# Three makers' pipelines that differ the way real ones do: CFA layout, demosaicing, colour, tone, sharpening,
# JPEG quality and chroma subsampling.
PIPE_A = Pipeline(
    MAKE,
    "SYN-A virtual phone",
    cfa="RGGB",
    demosaic="mhc",
    wb_gains=(2.0, 1.0, 1.6),
    gamma=2.2,
    contrast=0.0,
    sharpen=0.6,
    jpeg_quality=92,
    subsampling="4:2:0",
)
PIPE_B = Pipeline(
    MAKE,
    "SYN-B virtual phone",
    cfa="BGGR",
    demosaic="bilinear",
    wb_gains=(1.9, 1.0, 1.7),
    colour_matrix=(1.5, -0.3, -0.2, -0.25, 1.45, -0.2, -0.05, -0.45, 1.5),
    gamma=2.4,
    contrast=0.3,
    sharpen=0.2,
    jpeg_quality=88,
    subsampling="4:2:2",
)
PIPE_C = Pipeline(
    MAKE,
    "SYN-C virtual tablet",
    cfa="GRBG",
    demosaic="mhc",
    wb_gains=(2.1, 1.0, 1.5),
    colour_matrix=(1.7, -0.5, -0.2, -0.35, 1.6, -0.25, -0.1, -0.6, 1.7),
    gamma=2.0,
    contrast=0.15,
    sharpen=1.0,
    jpeg_quality=85,
    subsampling="4:2:0",
)


def _rear(size: int) -> Sensor:
    return Sensor(height=size, width=size, psf_sigma=0.6, vignetting=0.15, full_well=6000, read_noise=0.0015)


def _front(size: int) -> Sensor:
    # Front cameras: smaller sensor (fewer pixels), smaller photosites (more noise), softer lens.
    small = max(64, int(size * 0.75) // 32 * 32)
    return Sensor(height=small, width=small, psf_sigma=0.8, vignetting=0.25, full_well=2500, read_noise=0.003)


def miche_like(size: int = 256, seed: int = 0) -> list[VirtualCamera]:
    """MICHE-I's structure: A (front + rear), B (front + rear), C (one camera) -> 3 model, 5 sensor classes.

    The two cameras of a device share CFA, pipeline and JPEG (steps 4–6) and differ in sensor size, PRNU and
    noise, so telling them apart (sensor level) is harder than telling the devices apart (model level).
    """
    return [
        VirtualCamera("SYN-A", "SYN-A_front", _front(size), PIPE_A, seed),
        VirtualCamera("SYN-A", "SYN-A_rear", _rear(size), PIPE_A, seed),
        VirtualCamera("SYN-B", "SYN-B_front", _front(size), PIPE_B, seed),
        VirtualCamera("SYN-B", "SYN-B_rear", _rear(size), PIPE_B, seed),
        VirtualCamera("SYN-C", "SYN-C", replace(_rear(size), psf_sigma=0.7), PIPE_C, seed),
    ]


def units_of_one_model(size: int = 256, seed: int = 0, units: int = 4) -> list[VirtualCamera]:
    """Several units of one model: identical optics, noise and pipeline, different PRNU — device-level
    identification, the hardest case. One device class only: use it with ``task=sensor_level``."""
    return [VirtualCamera("SYN-U", f"SYN-U_unit{k}", _rear(size), PIPE_A, seed) for k in range(1, units + 1)]


def many_units(size: int = 256, seed: int = 0, units: int = 8) -> list[VirtualCamera]:
    """``units`` units of each of three models (pipelines A, B and C): ``3 * units`` sensors, each with its own
    PRNU and dark pattern, the units of a model otherwise identical. Many devices to learn a fingerprint matcher
    on, with hard negatives built in (units of the same model share optics, noise and the whole pipeline)."""
    models = (("SYN-M1", PIPE_A), ("SYN-M2", PIPE_B), ("SYN-M3", PIPE_C))
    return [
        VirtualCamera(device, f"{device}_unit{k:03d}", _rear(size), pipe, seed)
        for device, pipe in models
        for k in range(1, units + 1)
    ]


PROFILES: dict[str, Callable[..., list[VirtualCamera]]] = {
    "miche_like": miche_like,
    "units_of_one_model": units_of_one_model,
    "many_units": many_units,
}
UNIT_PROFILES = ("units_of_one_model", "many_units")  # the profiles whose number of units data.units sets


def cameras_of(profile: str, size: int, seed: int, units: int | None = None) -> list[VirtualCamera]:
    """The cameras of a profile (``units``: units per model, for the unit profiles; None: the profile's own)."""
    return PROFILES[profile](size=size, seed=seed, **({"units": units} if units else {}))
