"""Two residual squares compared at zero shift: the PCE of their correlation, against the energy of the positions on
the same JPEG-grid class (:func:`~sci_lightning.fingerprint.significance.grid_pce` at (0, 0)), and those positions
as the comparison's own null.

Only the plane's shifts that are multiples of 8 are kept (the peak's residue class; its 11 x 11 window holds no
other such shift). Folding the spectrum (the sum of its 64 aliases) would give them from a 64 times smaller inverse
FFT, but the fold's strided sums cost more than pocketfft's whole inverse FFT (1024 px: 34 ms against 4.5 ms per
pair, measured on 2 cores), so the whole plane is made and sub-sampled. The 16,383 shifted positions are
misaligned comparisons: their largest values are the null the pair's own statistic is judged beside
(:mod:`sci_lightning.fingerprint.null`), and photos of a scene shared at a small shift raise them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import scipy.fft

from sci_lightning.fingerprint.null import Tail, plane_tail

T = TypeVar("T")
R = TypeVar("R")

GRID = 8  # the JPEG block grid: positions of one residue class mod 8
THREADS = 2  # comparison threads, each FFT on one core (at 512 px faster than one FFT on two: 0.8 vs 1.3 ms)


def in_threads(fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """``map(fn, items)`` in order on :data:`THREADS` threads (NumPy and pocketfft let go of the GIL); ``fn``
    should make its FFTs with ``workers=1``."""
    with ThreadPoolExecutor(THREADS) as pool:
        yield from pool.map(fn, items)


def spectrum(x: np.ndarray, workers: int = -1) -> np.ndarray:
    """The half spectrum (``rfft2``, complex64) of a zero-mean square (``workers``: scipy.fft's threads)."""
    x = np.asarray(x, np.float32)
    return scipy.fft.rfft2(x - np.float32(x.mean()), workers=workers)


def signature(w: np.ndarray, side: int) -> np.ndarray:
    """The central ``side`` square of ``w`` (a residual square), its 8 x 8 grid pattern and mean removed, unit
    norm, flattened, float16 (see the module's docstring)."""
    s = min(side, w.shape[0]) // GRID * GRID
    y0, x0 = (w.shape[0] - s) // 2, (w.shape[1] - s) // 2
    x = np.array(w[y0 : y0 + s, x0 : x0 + s], np.float32)
    x -= np.tile(x.reshape(s // GRID, GRID, s // GRID, GRID).mean(axis=(0, 2)), (s // GRID, s // GRID))
    x -= np.float32(x.mean())
    norm = float(np.linalg.norm(x))
    return (x / norm if norm > 0 else x).astype(np.float16).ravel()


def grid_planes(fa: np.ndarray, fb: np.ndarray, side: int, workers: int = -1) -> np.ndarray:
    """The correlation planes of ``fa`` with each of ``fb`` (``(n, side, side // 2 + 1)`` half spectra) at the
    shifts that are multiples of :data:`GRID`: ``(n, side / 8, side / 8)``, the zero shift at ``[:, 0, 0]``."""
    out = np.empty((len(fb), side // GRID, side // GRID), np.float32)
    for i, f in enumerate(fb):
        out[i] = scipy.fft.irfft2(fa * np.conj(f), s=(side, side), workers=workers)[::GRID, ::GRID]
    return out


def zero_shift_pce(planes: np.ndarray) -> np.ndarray:
    """PCE at zero shift of each grid plane: sign x value^2 over the mean energy of the plane's other positions."""
    flat = planes.reshape(len(planes), -1).astype(np.float64)
    v = flat[:, 0]
    energy = (np.square(flat).sum(axis=1) - v * v) / (flat.shape[1] - 1)
    return np.where(energy > 0, np.sign(v) * v * v / np.maximum(energy, 1e-300), 0.0)


def shifted_tail(plane: np.ndarray) -> Tail:
    """The largest values (PCE units) of one grid plane away from zero shift: the pair's own null."""
    return plane_tail(np.array(plane), period=1, exclude=(0, 0), window=1)
