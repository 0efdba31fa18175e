"""Steps 2–6 — a virtual camera photographs a scene: optics, sensor (PRNU, noise), CFA, maker's pipeline, JPEG.

Each step is a small function and each strength a parameter, so the calibration can switch cues on and off.
Physical model, per pixel of the mosaic:  raw = clip(s * (1 + K) + D + shot + read), with s the optical
signal at the pixel's CFA colour, K the sensor's photo-response non-uniformity (PRNU, fixed per sensor),
D its dark-signal pattern, shot noise ~ N(0, s / full_well) and read noise ~ N(0, read_noise^2).
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image
from scipy.ndimage import convolve, gaussian_filter

from sci_lightning.data.size_settings import camera_setting
from sci_lightning.data.synthetic.scene import Chart, Scene, render

CFA_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")


@dataclass(frozen=True)
class Pipeline:
    """The maker's processing (steps 4–6), shared by every camera of one device model."""

    make: str
    model: str
    cfa: str = "RGGB"
    demosaic: str = "bilinear"  # bilinear | mhc (Malvar-He-Cutler gradient-corrected)
    wb_gains: tuple[float, float, float] = (2.0, 1.0, 1.6)
    colour_matrix: tuple[float, ...] = (1.6, -0.4, -0.2, -0.3, 1.5, -0.2, -0.1, -0.5, 1.6)
    gamma: float = 2.2
    contrast: float = 0.0  # S-curve strength of the tone curve
    sharpen: float = 0.5  # unsharp-mask amount
    jpeg_quality: int = 90
    jpeg_jitter: int = 3  # per-image quality jitter (+/-)
    subsampling: str = "4:2:0"  # 4:4:4 | 4:2:2 | 4:2:0


@dataclass(frozen=True)
class Sensor:
    """One camera module: its size, optics and noise (steps 2–3)."""

    height: int
    width: int
    psf_sigma: float = 0.6  # px, optical blur
    vignetting: float = 0.2  # relative fall-off at the corners
    sensitivity: tuple[float, float, float] = (0.5, 1.0, 0.62)  # raw R, G, B response
    full_well: float = 4000.0  # signal level (electrons) at saturation: sets shot noise
    read_noise: float = 0.002  # fraction of full scale
    dark_strength: float = 0.0005  # fixed additive pattern, fraction of full scale


@dataclass(frozen=True)
class VirtualCamera:
    device: str  # model-level class
    camera: str  # sensor-level class
    sensor: Sensor
    pipeline: Pipeline
    fingerprint_seed: int = field(default=0)


def _seed(*parts: object) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


# -- step 2: optics -------------------------------------------------------------------------------------------
def apply_optics(radiance: np.ndarray, psf_sigma: float, vignetting: float) -> np.ndarray:
    """Lens blur (Gaussian PSF) and radial vignetting."""
    out = gaussian_filter(radiance, sigma=(psf_sigma, psf_sigma, 0)) if psf_sigma > 0 else radiance
    h, w = out.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2) / (((h - 1) / 2) ** 2 + ((w - 1) / 2) ** 2)
    return out * (1 - vignetting * r2)[..., None].astype(np.float32)


# -- step 3: sensor ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=32)
def sensor_patterns(seed: int, camera: str, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The sensor's fixed patterns, unit variance: PRNU K and dark signal D (scaled by the caller).

    Seeded by the data-set seed and the camera id only, so every image of a sensor shares them.
    """
    rng = np.random.default_rng(_seed("fingerprint", seed, camera))
    k = rng.standard_normal((height, width)).astype(np.float32)
    d = np.abs(rng.standard_normal((height, width))).astype(np.float32)
    return k, d


def cfa_masks(pattern: str, height: int, width: int) -> np.ndarray:
    """(3, H, W) boolean masks of where the R, G, B filters sit for a 2x2 pattern such as RGGB."""
    if pattern not in CFA_PATTERNS:
        raise ValueError(f"unknown CFA pattern {pattern!r}; use one of {CFA_PATTERNS}")
    masks = np.zeros((3, height, width), bool)
    for i, ch in enumerate(pattern):
        masks["RGB".index(ch), i // 2 :: 2, i % 2 :: 2] = True
    return masks


def expose(
    optical: np.ndarray,
    sensor: Sensor,
    masks: np.ndarray,
    prnu: np.ndarray,
    dark: np.ndarray,
    prnu_strength: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sample the optical image through the CFA onto the sensor: PRNU, dark pattern, shot and read noise."""
    signal = (optical * np.asarray(sensor.sensitivity, np.float32)).transpose(2, 0, 1)
    mosaic = (signal * masks).sum(axis=0)
    mosaic = mosaic * (1 + prnu_strength * prnu) + sensor.dark_strength * dark
    shot = np.sqrt(np.clip(mosaic, 0, None) / sensor.full_well)
    mosaic = (
        mosaic
        + shot * rng.standard_normal(mosaic.shape, dtype=np.float32)
        + sensor.read_noise * rng.standard_normal(mosaic.shape, dtype=np.float32)
    )
    return np.round(np.clip(mosaic, 0, 1) * 1023) / 1023  # 10-bit ADC, clipping = saturation


# -- step 4: demosaicing ----------------------------------------------------------------------------------------
_BILINEAR_G = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4
_BILINEAR_RB = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4
# Malvar, He & Cutler (2004) gradient-corrected 5x5 filters (x 1/8).
_MHC_G_AT_RB = np.array([[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]]) / 8
_MHC_ROWWISE = (
    np.array([[0, 0, 0.5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0], [0, 0, 0.5, 0, 0]]) / 8
)
_MHC_COLWISE = _MHC_ROWWISE.T
_MHC_DIAG = (
    np.array([[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]]) / 8
)


def demosaic(mosaic: np.ndarray, masks: np.ndarray, method: str) -> np.ndarray:
    """Interpolate the missing colours: ``bilinear`` or ``mhc``. Returns (H, W, 3)."""
    if method == "bilinear":
        out = [convolve(mosaic * masks[c], _BILINEAR_G if c == 1 else _BILINEAR_RB, mode="mirror") for c in range(3)]
        return np.stack(out, axis=2)
    if method != "mhc":
        raise ValueError(f"unknown demosaicing method {method!r}; use 'bilinear' or 'mhc'")
    r, g, b = masks
    rows_with_r = np.broadcast_to(r.any(axis=1, keepdims=True), r.shape)
    g_in_r_row, g_in_b_row = g & rows_with_r, g & ~rows_with_r
    f = {
        k: convolve(mosaic, v.astype(np.float32), mode="mirror")
        for k, v in (("g", _MHC_G_AT_RB), ("row", _MHC_ROWWISE), ("col", _MHC_COLWISE), ("diag", _MHC_DIAG))
    }
    red = np.where(r, mosaic, np.where(g_in_r_row, f["row"], np.where(g_in_b_row, f["col"], f["diag"])))
    blue = np.where(b, mosaic, np.where(g_in_b_row, f["row"], np.where(g_in_r_row, f["col"], f["diag"])))
    green = np.where(g, mosaic, f["g"])
    return np.stack([red, green, blue], axis=2)


# -- step 5: the maker's colour and tone processing -----------------------------------------------------------
def develop(rgb: np.ndarray, p: Pipeline) -> np.ndarray:
    """White balance, colour matrix, tone curve (gamma + S-curve) and sharpening; returns uint8 sRGB-like."""
    x = rgb * np.asarray(p.wb_gains, np.float32)
    x = x @ np.asarray(p.colour_matrix, np.float32).reshape(3, 3).T
    x = np.clip(x, 0, 1) ** (1 / p.gamma)
    if p.contrast:
        x = x + p.contrast * x * (1 - x) * (2 * x - 1) * -1  # gentle S-curve around mid-grey
    if p.sharpen:
        x = x + p.sharpen * (x - gaussian_filter(x, sigma=(1.0, 1.0, 0)))
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)


# -- step 6: JPEG -----------------------------------------------------------------------------------------------
def encode_jpeg(img: np.ndarray, quality: int, subsampling: str, make: str, model: str) -> bytes:
    """JPEG bytes with the given quality and chroma subsampling, EXIF Make/Model written."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = make, model  # Make, Model
    exif[0x0131] = "sci-lightning synthetic camera"  # Software
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality), subsampling=subsampling, exif=exif)
    return buf.getvalue()


def photograph(
    scene: Scene | Chart,
    cam: VirtualCamera,
    rng: np.random.Generator,
    prnu_strength: float = 0.01,
    jpeg_quality: int | None = None,
    setting: tuple[float, int, float | None] | None = None,
) -> tuple[bytes, int]:
    """Steps 2–6 for one exposure; returns (JPEG bytes, the quality used). ``setting``: one of the camera's own
    smaller size settings, ``(scale, rounding block px, band aspect or None)``, made by its resampler before the
    JPEG step (:func:`~sci_lightning.data.size_settings.camera_setting`)."""
    s, p = cam.sensor, cam.pipeline
    radiance = render(scene, s.height, s.width)
    optical = apply_optics(radiance, s.psf_sigma, s.vignetting)
    masks = cfa_masks(p.cfa, s.height, s.width)
    prnu, dark = sensor_patterns(cam.fingerprint_seed, cam.camera, s.height, s.width)
    mosaic = expose(optical, s, masks, prnu, dark, prnu_strength, rng)
    rgb = demosaic(mosaic.astype(np.float32), masks, p.demosaic)
    quality = (
        jpeg_quality
        if jpeg_quality is not None
        else int(np.clip(p.jpeg_quality + rng.integers(-p.jpeg_jitter, p.jpeg_jitter + 1), 1, 100))
    )
    developed = develop(rgb, p)
    if setting is not None:  # the same resampler as eval.transform's camera_* settings
        developed = np.asarray(camera_setting(Image.fromarray(developed), *setting)[0])
    return encode_jpeg(developed, quality, p.subsampling, p.make, p.model), quality
