"""Small deterministic JPEG trees for tests: each camera leaves a learnable trace (a fixed per-camera noise
pattern and a per-device colour cast) on random smooth scenes, so a tiny training run has something to learn."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image


def _seed(*parts: object) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


def camera_image(device: str, camera: str, index: int, size: tuple[int, int] = (96, 128)) -> np.ndarray:
    """An (H, W, 3) uint8 photo 'taken' by ``camera`` of ``device``."""
    h, w = size
    rng = np.random.default_rng(_seed("scene", device, camera, index))
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    scene = 0.5 + 0.25 * np.sin(6 * xx * rng.uniform(0.5, 2) + rng.uniform(0, 6)) * np.cos(5 * yy * rng.uniform(0.5, 2))
    img = np.repeat(scene[..., None], 3, axis=2)
    cast = np.random.default_rng(_seed("cast", device)).uniform(0.8, 1.2, 3)
    pattern = np.random.default_rng(_seed("prnu", camera)).normal(0, 0.08, (h, w, 3))
    img = img * cast * (1 + pattern) + rng.normal(0, 0.01, (h, w, 3))
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def textured_image(camera: str, index: int, size: tuple[int, int] = (96, 128), prnu: float = 0.03) -> np.ndarray:
    """A photo with a scene of its own fine texture and ``camera``'s noise pattern (weaker than
    :func:`camera_image`'s, so the photo's fine detail is its scene's, as in a real photo)."""
    from scipy.ndimage import gaussian_filter

    h, w = size
    rng = np.random.default_rng(_seed("textured", camera, index))
    scene = 0.5 + 0.12 * gaussian_filter(rng.standard_normal((h, w)), 1.5) / 0.19
    pattern = np.random.default_rng(_seed("prnu", camera)).normal(0, prnu, (h, w))
    img = scene * (1 + pattern) + rng.normal(0, 0.005, (h, w))
    return np.clip(np.repeat(img[..., None], 3, axis=2) * 255, 0, 255).astype(np.uint8)


def write_jpeg(path: Path, arr: np.ndarray, quality: int = 95) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=quality)
    return path


def make_folder_tree(
    root: Path, cameras: Iterable[tuple[str, str]], per_camera: int = 6, size: tuple[int, int] = (96, 128)
) -> Path:
    """root/<device>/<camera>/img_<k>.jpg for each (device, camera)."""
    for device, camera in cameras:
        for k in range(per_camera):
            write_jpeg(root / device / camera / f"img_{k:03d}.jpg", camera_image(device, camera, k, size))
    return root


MICHE_CAMERAS = [("IP5", "F"), ("IP5", "R"), ("GS4", "F"), ("GS4", "R"), ("GT2", "F")]
MICHE_FOLDERS = {"IP5": "iPhone5", "GS4": "SamsungGalaxyS4", "GT2": "SamsungGalaxyTab2"}


def roots_case(references: Path, questioned: Path) -> list[str]:
    """The overrides of a sensor-level case read from two folder trees: references and questioned photos."""
    return [
        "task=sensor_level",
        "data=folder",
        "data.split.mode=roots",
        f"data.reference_root={references}",
        f"data.questioned_root={questioned}",
    ]


def make_miche_tree(root: Path, subjects: int = 4, shots: int = 2, size: tuple[int, int] = (96, 128)) -> Path:
    """A MICHE-I-named tree: <DeviceFolder>/SSS_DDD_EE_C_LL_NN_K.jpg, mixed extension case, one odd file."""
    for device, sensor in MICHE_CAMERAS:
        for s in range(1, subjects + 1):
            for k in range(1, shots + 1):
                place = "IN" if (s + k) % 2 else "OU"
                ext = ".JPG" if (s + k) % 3 == 0 else ".jpg"
                name = f"{s:03d}_{device}_{place}_{sensor}_RI_01_{k}{ext}"
                write_jpeg(
                    root / MICHE_FOLDERS[device] / name, camera_image(device, f"{device}_{sensor}", s * 10 + k, size)
                )
    write_jpeg(root / "iPhone5" / "thumbnail_001.jpg", camera_image("IP5", "IP5_F", 999, size))  # does not match
    return root


def make_dresden_tree(root: Path, per_camera: int = 3, size: tuple[int, int] = (96, 128)) -> Path:
    """Dresden-named files: Make_Model_Instance_Id.JPG."""
    cams = [("Nikon_D70s", 0), ("Nikon_D70s", 1), ("Canon_Ixus55", 0), ("Agfa_DC-504", 0)]
    for i, (model, inst) in enumerate(cams):
        for k in range(per_camera):
            write_jpeg(root / f"{model}_{inst}_{1000 * i + k}.JPG", camera_image(model, f"{model}_{inst}", k, size))
    return root
