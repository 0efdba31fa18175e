"""Two residual squares compared at zero shift: the PCE of their correlation, against the energy of the positions on
the same JPEG-grid class (:func:`~sci_lightning.fingerprint.significance.grid_pce` at (0, 0)), and those positions
as the comparison's own null.

Only the plane's shifts that are multiples of 8 are kept (the peak's residue class; its 11 x 11 window holds no
other such shift), and only they are made: the rows at multiples of 8 are the inverse FFT of the spectrum's 8
aliases along the first axis summed (contiguous slabs: cheap), and in those rows only the columns at multiples of
8 are kept. Why not fold both axes (a 64 times smaller inverse FFT): the half spectrum's columns do not fold without
its mirrored half, and the strided sums cost more than pocketfft's whole inverse FFT (1024 px: 34 ms against 4.5
ms); the fold along rows alone costs 0.3 ms against 1.2 ms for the whole plane at 504 px (1.5 against 4.4 ms at
1024, one core), the same values to float32 rounding. The 16,383 shifted positions are
misaligned comparisons: their largest values are the null the pair's own statistic is judged beside
(:mod:`sci_lightning.fingerprint.null`), and photos of a scene shared at a small shift raise them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import scipy.fft

from sci_lightning.fingerprint.null import TOP, Tail

T = TypeVar("T")
R = TypeVar("R")

GRID = 8  # the JPEG block grid: positions of one residue class mod 8
THREADS = 2  # comparison threads, each FFT on one core (at 512 px faster than one FFT on two: 0.8 vs 1.3 ms)


def in_threads(fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """``map(fn, items)`` in order on :data:`THREADS` threads (NumPy and pocketfft let go of the GIL); ``fn``
    should make its FFTs with ``workers=1``."""
    with ThreadPoolExecutor(THREADS) as pool:
        yield from pool.map(fn, items)


class Kept:
    """The most recently used arrays by key, within ``budget`` bytes (at least the last two: the pair being
    compared), shared by the comparison threads (a value made twice by two threads at once is harmless)."""

    def __init__(self, budget: float) -> None:
        self.budget, self.bytes = budget, 0
        self.kept: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], np.ndarray]) -> np.ndarray:
        """The value kept under ``key``, else ``make()`` kept (the oldest dropped beyond the budget)."""
        with self.lock:
            if key in self.kept:
                self.kept.move_to_end(key)
                return self.kept[key]
        value = make()
        with self.lock:
            if key not in self.kept:
                self.kept[key] = value
                self.bytes += value.nbytes
            while self.bytes > self.budget and len(self.kept) > 2:
                self.bytes -= self.kept.popitem(last=False)[1].nbytes
        return value


def spectrum(x: np.ndarray, workers: int = -1) -> np.ndarray:
    """The half spectrum (``rfft2``, complex64) of a zero-mean square (``workers``: scipy.fft's threads)."""
    x = np.asarray(x, np.float32)
    return scipy.fft.rfft2(x - np.float32(x.mean()), workers=workers)


def grid_planes(fa: np.ndarray, fb: np.ndarray, side: int, workers: int = -1) -> np.ndarray:
    """The correlation planes of ``fa`` with each of ``fb`` (``(n, side, side // 2 + 1)`` half spectra; ``fa`` one
    such spectrum, or ``n`` of them paired with ``fb``'s) at the shifts that are multiples of :data:`GRID`:
    ``(n, side / 8, side / 8)``, the zero shift at ``[:, 0, 0]`` (see the module's docstring for how)."""
    m = side // GRID
    folded = (fa * np.conj(fb)).reshape(len(fb), GRID, m, -1).sum(axis=1)  # rows' 8 aliases summed
    rows = scipy.fft.ifft(folded, axis=1, workers=workers) / np.float32(GRID)  # the rows at multiples of 8
    return np.ascontiguousarray(scipy.fft.irfft(rows, n=side, axis=2, workers=workers)[:, :, ::GRID], np.float32)


def zero_shift_pce(planes: np.ndarray) -> np.ndarray:
    """PCE at zero shift of each grid plane: sign x value^2 over the mean energy of the plane's other positions."""
    flat = planes.reshape(len(planes), -1).astype(np.float64)
    v = flat[:, 0]
    energy = (np.square(flat).sum(axis=1) - v * v) / (flat.shape[1] - 1)
    return np.where(energy > 0, np.sign(v) * v * v / np.maximum(energy, 1e-300), 0.0)


def shifted_tail(planes: np.ndarray) -> Tail:
    """The largest values (PCE units) of grid planes ``(n, side / 8, side / 8)`` away from zero shift, pooled: the
    pairs' own null. Each plane is :func:`~sci_lightning.fingerprint.null.plane_tail` with the zero shift left out
    (``period=1, exclude=(0, 0), window=1``: its value over the plane's energy with that position zeroed), all in
    one partition: per plane, that function's Python steps cost as much as the plane's inverse FFT."""
    flat = np.array(planes, np.float64).reshape(len(planes), -1)
    flat[:, 0] = 0.0
    energy = np.einsum("ij,ij->i", flat, flat) / flat.shape[1]
    k = min(TOP, flat.shape[1])
    best = np.partition(flat, flat.shape[1] - k, axis=1)[:, flat.shape[1] - k :]
    keep = (best > 0) & (energy[:, None] > 0)
    values = (best * best / np.maximum(energy, 1e-300)[:, None])[keep]
    return Tail(np.sort(values)[::-1][:TOP], flat.size - len(flat))
