"""PRNU building blocks, written from the method descriptions (PyWavelets and SciPy do the transforms).

- residual W = I - F(I): 4-level wavelet decomposition (db4); each detail coefficient shrunk by local Wiener
  filtering with the smallest local variance over 3/5/7/9 windows and sigma = 5 (8-bit units); approximation
  zeroed; of the grey image (``grey_first``, the default: one denoising instead of three, measured 2x faster
  with the same detection accuracy, docs/BENCHMARKS.md) or per colour channel, then to grey (Lukas et al.);
- clean-up: rows and columns made zero-mean on each of the four 2x2 CFA sub-grids (removes linear patterns that
  cameras of one model share), then Wiener filtering of the DFT magnitude (removes periodic peaks);
- fingerprint K = sum(W * I) / sum(I^2), saturated pixels masked, then the same clean-up;
- decisions: normalised cross-correlation, and PCE = sign(peak) * peak^2 / mean energy of the correlation
  outside an 11x11 window around the peak.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pywt
import scipy.fft
from scipy.ndimage import uniform_filter

GREY = np.array([0.299, 0.587, 0.114], np.float32)
WINDOWS = (3, 5, 7, 9)
SATURATION = 250.0  # grey level from which pixels carry no PRNU (clipped): masked out of fingerprints

HEAT_BLOCK = 64  # px: tiles of the local-correlation heat maps (:func:`block_ncc`) verdicts draw


def _local_wiener_noise(coef: np.ndarray, noise_var: float) -> np.ndarray:
    """The noise part of ``coef``: coef * s^2 / (local variance + s^2), local variance = min over windows."""
    sq = coef * coef
    est = np.min([np.maximum(uniform_filter(sq, size=w, mode="reflect") - noise_var, 0) for w in WINDOWS], axis=0)
    return coef * noise_var / (est + noise_var)


def _residual_2d(channel: np.ndarray, sigma: float, levels: int, wavelet: str) -> np.ndarray:
    h, w = channel.shape
    coeffs = pywt.wavedec2(channel, wavelet, level=levels, mode="periodization")
    noise = [np.zeros_like(coeffs[0])]  # approximation zeroed: the residual has no low-pass content
    noise += [tuple(_local_wiener_noise(c, sigma * sigma) for c in detail) for detail in coeffs[1:]]
    return pywt.waverec2(noise, wavelet, mode="periodization")[:h, :w]


def noise_residual(
    img: np.ndarray, sigma: float = 5.0, levels: int = 4, wavelet: str = "db4", grey_first: bool = True
) -> np.ndarray:
    """Grey noise residual of an (H, W) or (H, W, 3) image in 8-bit units (zero-mean cleaned, Wiener-DFT).

    ``grey_first``: denoise the grey image once; otherwise each colour channel, then combine (3x the work). The
    PRNU survives demosaicing in all three channels alike, so the grey residual carries it as well.
    """
    x = np.asarray(img, dtype=np.float32)
    if x.ndim == 3 and grey_first:
        w = _residual_2d(grey_of(x), sigma, levels, wavelet)
    elif x.ndim == 3:
        w = sum(GREY[c] * _residual_2d(x[..., c], sigma, levels, wavelet) for c in range(3))
    else:
        w = _residual_2d(x, sigma, levels, wavelet)
    return wiener_dft(zero_mean_total(w))


def zero_mean_total(x: np.ndarray) -> np.ndarray:
    """Subtract row and column means on each of the four 2x2 CFA sub-grids (returns a new array)."""
    out = np.array(x, dtype=np.float32, copy=True)
    for dy in (0, 1):
        for dx in (0, 1):
            sub = out[dy::2, dx::2]
            sub -= sub.mean(axis=1, keepdims=True)
            sub -= sub.mean(axis=0, keepdims=True)
    return out


def wiener_dft(x: np.ndarray) -> np.ndarray:
    """Wiener filtering of the DFT magnitude: keeps the noise-like spectrum, suppresses periodic peaks."""
    # scipy.fft keeps float32 input in complex64 (numpy.fft promotes to complex128): half the time, and the
    # result differs from the double-precision one by ~1e-7 of its range.
    f = scipy.fft.fft2(np.asarray(x, dtype=np.float32))
    mag = np.abs(f) / np.float32(np.sqrt(x.size))
    noise_var = float(mag.var())
    cleaned = _local_wiener_noise(mag, noise_var) if noise_var > 0 else mag
    scale = np.divide(cleaned, mag, out=np.zeros_like(mag), where=mag > 0)
    return np.real(scipy.fft.ifft2(f * scale)).astype(np.float32)


def grey_of(img: np.ndarray) -> np.ndarray:
    """The intensity a fingerprint is weighted by (RGB -> grey, float32)."""
    x = np.asarray(img, dtype=np.float32)
    return x @ GREY if x.ndim == 3 else x


def intensity_weight(grey: np.ndarray, saturation: float = SATURATION) -> np.ndarray:
    """I in K = sum(W*I) / sum(I^2), with saturated pixels (no PRNU left in them) weighted 0."""
    return np.where(grey >= saturation, 0.0, grey).astype(np.float32)


def estimate_fingerprint(images: Iterable[np.ndarray], saturation: float = SATURATION, **residual_kw) -> np.ndarray:
    """K = sum(W*I) / sum(I^2) over same-size images (saturated pixels masked), then cleaned up."""
    return fingerprint_from_residuals(
        ((noise_residual(img, **residual_kw), grey_of(img)) for img in images), saturation=saturation
    )


def fingerprint_from_residuals(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]], saturation: float = SATURATION
) -> np.ndarray:
    """:func:`estimate_fingerprint` from ``(residual W, grey intensity I)`` pairs already computed (e.g. cached)."""
    num = den = None
    for w, grey in pairs:
        weight = intensity_weight(grey, saturation)
        num = w * weight if num is None else num + w * weight
        den = weight * weight if den is None else den + weight * weight
    if num is None:
        raise ValueError("estimate_fingerprint needs at least one image")
    return clean_up(np.divide(num, den, out=np.zeros_like(num), where=den > 0))


def clean_up(k: np.ndarray) -> np.ndarray:
    """A raw fingerprint estimate freed of linear (CFA row/column) and periodic patterns cameras share."""
    return wiener_dft(zero_mean_total(k))


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation (at zero shift) of two same-size arrays."""
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def pce(a: np.ndarray, b: np.ndarray, exclude: int = 11, search: bool = False) -> tuple[float, tuple[int, int]]:
    """Peak-to-correlation energy of the circular cross-correlation of ``a`` (e.g. K*I) and ``b`` (e.g. W).

    The peak is at zero shift, or anywhere when ``search`` (a cropped query): returns (PCE with the peak's sign,
    peak shift (dy, dx)). Energy is the mean squared correlation outside an ``exclude`` x ``exclude`` window.
    """
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    # Real FFTs (half the spectrum) and the window's energy subtracted from the total instead of a masked copy:
    # the same PCE to ~1e-16 relative, 1.7x (256 px) to 3.3x (3 MP) faster than complex fft2 with a mask.
    xc = scipy.fft.irfft2(scipy.fft.rfft2(a) * np.conj(scipy.fft.rfft2(b)), s=a.shape)
    peak_idx = np.unravel_index(np.argmax(np.abs(xc)), xc.shape) if search else (0, 0)
    shift = tuple(int(s if s <= n // 2 else s - n) for s, n in zip(peak_idx, xc.shape))
    return plane_pce(xc, peak_idx, exclude), shift


def plane_pce(xc: np.ndarray, peak_idx: tuple[int, int], exclude: int = 11) -> float:
    """PCE of a (circular) correlation plane ``xc`` at ``peak_idx``: sign(peak) * peak^2 / the mean squared
    correlation outside the ``exclude`` x ``exclude`` window around the peak."""
    peak = float(xc[peak_idx])
    h, w = xc.shape
    rows = np.unique((np.arange(-(exclude // 2), exclude // 2 + 1) + peak_idx[0]) % h)
    cols = np.unique((np.arange(-(exclude // 2), exclude // 2 + 1) + peak_idx[1]) % w)
    window = xc[np.ix_(rows, cols)]
    outside = xc.size - window.size
    # summed in float64 whatever the plane's type (the geometry search correlates in float32)
    total = float(np.vdot(xc, xc)) if xc.dtype == np.float64 else float(np.square(xc, dtype=np.float64).sum())
    energy = (total - float(np.vdot(window, window))) / outside if outside > 0 else 0.0
    return float(np.sign(peak) * peak * peak / energy) if energy > 0 else 0.0


def block_ncc(a: np.ndarray, b: np.ndarray, block: int = 64) -> np.ndarray:
    """NCC of ``a`` and ``b`` in every non-overlapping ``block`` x ``block`` tile: where the fingerprint shows.

    Returns an ``(H // block, W // block)`` map (vectorised over tiles).
    """
    h, w = (a.shape[0] // block) * block, (a.shape[1] // block) * block
    if h == 0 or w == 0:
        return np.zeros((0, 0))

    def tiles(x: np.ndarray) -> np.ndarray:
        t = np.asarray(x[:h, :w], np.float64).reshape(h // block, block, w // block, block)
        return t - t.mean(axis=(1, 3), keepdims=True)

    ta, tb = tiles(a), tiles(b)
    num = (ta * tb).sum(axis=(1, 3))
    den = np.sqrt((ta * ta).sum(axis=(1, 3)) * (tb * tb).sum(axis=(1, 3)))
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def crop_center(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """The centred ``height`` x ``width`` window of ``x`` (for comparing images of different sizes)."""
    h, w = x.shape[:2]
    y0, x0 = (h - height) // 2, (w - width) // 2
    return x[y0 : y0 + height, x0 : x0 + width]
