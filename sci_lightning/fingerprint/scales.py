"""Crop and resize at once (a crop of unknown size, then resized): the scale search, coarse to fine.

Goljan & Fridrich 2008 search the scale by brute force at full resolution (one FFT of the whole fingerprint per
scale and turn): ~100 s per camera and turn for a 12 MP fingerprint on a 2-core machine. Three passes instead,
each as coarse as its job allows:

1. **coarse** (which scales are worth a look): the photo's central ``scale_block`` px square against the
   fingerprint at half resolution, at scales from ``scale_max`` down to the smallest at which the photo still fits
   in relative steps of ``2 / block`` (a mis-scale of one step moves the half-resolution block's edges by half a
   pixel), every offset. The square is the same square in every turn, so one fingerprint spectrum serves all four
   turns, and a turn by 180 degrees is the same product conjugated the other way (no second FFT of the block).
2. **medium**: the whole photo at half resolution around the best few coarse (scale, turn) pairs, in steps of
   ``2 / (long side)``.
3. **fine**: the whole photo at full resolution at the best medium scale and ``FINE`` steps of ``1 / (long side)``
   either side, then the half steps beside the best: the plane whose peak is judged, and whose tail (with its
   decoys') is the measured null.

PRNU is white, so the half-resolution passes keep a quarter of its energy: enough to rank the true scale among the
first few (measured on vision-3's cropscale copies, docs/RESULTS.md), not to decide. The count of positions the
peak is judged among is every (scale, offset) the search could have returned at the fine step (:func:`positions`),
not only the ones it looked at: the passes choose where to look, and a chance peak had every scale to come from.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

from sci_lightning.fingerprint.geometry import GeometrySettings, Query, Spectra, orient_to_sensor, resample
from sci_lightning.fingerprint.hypotheses import Hypothesis
from sci_lightning.fingerprint.null import Tail, plane_tail
from sci_lightning.fingerprint.significance import grid_pce

COARSE = 2  # the coarse and medium passes run at 1 / COARSE of the sensor's resolution
CANDIDATES = 3  # coarse (scale, turn) pairs given a medium pass
FINE = 2  # fine steps either side of the best medium scale (the medium pass is good to one of its steps)
STAGE = 5  # the scale search's stage (:func:`~.search.stages`)

Found = tuple[float, Hypothesis, tuple[int, int]]  # PCE, hypothesis, peak


def scale_range(turned: tuple[int, int], big: tuple[int, int], s: GeometrySettings) -> tuple[float, float]:
    """The scales (photo px per sensor px) at which a photo of ``turned`` size fits in a frame of ``big``."""
    return max(s.scale_min, turned[0] / big[0], turned[1] / big[1]), min(s.scale_max, 1.0)


def positions(turned: tuple[int, int], big: tuple[int, int], s: GeometrySettings) -> int:
    """Every (scale, offset) the search could return for one turn: the fine step's scales over the range, each
    with every offset where the photo fits in the fingerprint resampled to it."""
    lo, hi = scale_range(turned, big, s)
    if lo > hi:
        return 0
    fine = 1.0 / (2 * max(turned))  # the fine pass's last step
    sc = hi * (1 - fine) ** np.arange(int(math.log(lo / hi) / math.log(1 - fine)) + 1)
    rows = np.maximum(np.round(big[0] * sc) - turned[0] + 1, 0)
    cols = np.maximum(np.round(big[1] * sc) - turned[1] + 1, 0)
    return int((rows * cols).sum())


def _planes(fk: np.ndarray, block: np.ndarray, frame: tuple[int, int], turns: list[tuple[int, bool]]) -> dict:
    """The square ``block`` (as stored) turned each way of ``turns`` against the fingerprint spectrum ``fk`` of
    ``frame``: {turn: plane}. A turn by 180 degrees reverses the block, whose spectrum is the conjugate with a
    phase ramp: the plane is the convolution with the unturned block, circularly shifted by its side less one."""
    side = block.shape[0]
    out, spectra = {}, {}
    for rotation, mirror in turns:
        base = (rotation % 180, mirror)
        if base not in spectra:
            pad = np.zeros(frame, np.float32)
            pad[:side, :side] = orient_to_sensor(block, *base)
            spectra[base] = scipy.fft.rfft2(pad, workers=-1)
        f = spectra[base]
        if rotation % 360 == base[0]:
            out[(rotation, mirror)] = scipy.fft.irfft2(fk * np.conj(f), s=frame, workers=-1)
        else:
            conv = scipy.fft.irfft2(fk * f, s=frame, workers=-1)
            out[(rotation, mirror)] = np.roll(conv, (1 - side, 1 - side), axis=(0, 1))
    return out


def _valid_peak(plane: np.ndarray, photo: tuple[int, int], frame: tuple[int, int]) -> tuple[float, tuple[int, int]]:
    """PCE and position of the highest peak where a photo of ``photo`` size fits in ``frame`` (the plane's top
    left: the rest is zero padding)."""
    plane = plane[: frame[0], : frame[1]]
    valid = plane[: frame[0] - photo[0] + 1, : frame[1] - photo[1] + 1]
    i, j = np.unravel_index(int(np.argmax(valid)), valid.shape)
    return grid_pce(plane, (int(i), int(j))), (int(i), int(j))


def _coarse(q: Query, name: str, k: np.ndarray, s: GeometrySettings, spectra: Spectra, turns: list) -> list:
    """(PCE, scale, turn) of every coarse step in each turn's range."""
    big = k.shape
    half = (big[0] // COARSE, big[1] // COARSE)
    # zero-padded to sizes the FFT is fast at (a 2448 x 3264 sensor's half is 1224 = 8 * 9 * 17 rows): the padding
    # only adds offsets past the frame's edge, which are not looked at
    fast = (scipy.fft.next_fast_len(half[0], real=True), scipy.fft.next_fast_len(half[1], real=True))
    fk = spectra.get(name, k, half, fast)
    b = min(s.scale_block, *q.shape)
    y0, x0 = (q.shape[0] - b) // 2, (q.shape[1] - b) // 2
    block = q.wi[y0 : y0 + b, x0 : x0 + b]
    ranges = {t: scale_range(orient_to_sensor(q.w, *t).shape, big, s) for t in turns}
    lo, hi = min(r[0] for r in ranges.values()), max(r[1] for r in ranges.values())
    step = COARSE / b
    out = []
    for sc in hi * (1 - step) ** np.arange(int(math.log(lo / hi) / math.log(1 - step)) + 1):
        side = int(round(b / (sc * COARSE)))  # the block brought to the half-resolution sensor's scale
        live = [t for t in turns if ranges[t][0] <= sc <= ranges[t][1]]
        if not live or side > min(half):
            continue
        for t, plane in _planes(fk, resample(block, side, side), fast, live).items():
            out.append((_valid_peak(plane, (side, side), half)[0], float(sc), t))
    return out


def _whole(q: Query, k: np.ndarray, big: tuple[int, int], t: tuple[int, bool], sc: float, res: int):
    """The whole photo (turned ``t``) in the fingerprint (``k``: the sensor's ``big`` frame at 1 / ``res``
    resolution) resampled to scale ``sc``: (PCE, hypothesis, peak, plane), None where it does not fit."""
    x = q.oriented(*t)
    frame = (int(round(big[0] * sc / res)), int(round(big[1] * sc / res)))
    photo = (int(round(x.shape[0] / res)), int(round(x.shape[1] / res)))
    if photo[0] > frame[0] or photo[1] > frame[1] or min(photo) < 8:
        return None
    if res == 1:
        h = Hypothesis("crop", t[0], t[1], frame, photo, 0, STAGE)
        fq = q.spectrum(t[0], t[1], frame, keep=False)
    else:
        h = None
        pad = np.zeros(frame, np.float32)
        pad[: photo[0], : photo[1]] = resample(x, *photo)
        fq = scipy.fft.rfft2(pad, workers=-1)
    fk = scipy.fft.rfft2(Spectra.fingerprint(k, frame), workers=-1)  # used once: not worth the cache
    plane = scipy.fft.irfft2(fk * np.conj(fq), s=frame, workers=-1)
    value, peak = _valid_peak(plane, photo, frame)
    return value, h, peak, plane


def scale_search(
    q: Query,
    name: str,
    k: np.ndarray,
    s: GeometrySettings,
    spectra: Spectra,
    turns: list[tuple[int, bool]],
    tails: list[Tail] | None = None,
) -> tuple[Found | None, int]:
    """The best crop + resize of ``q`` in ``k`` over ``turns`` (the module's three passes). Returns
    ``((PCE, hypothesis, peak) or None, positions)``: None where the photo fits at no scale; ``tails`` collects
    the fine planes' tails (peaks left out)."""
    big = k.shape
    turns = [t for t in turns if min(orient_to_sensor(q.w, *t).shape) >= s.min_side]
    n = sum(positions(orient_to_sensor(q.w, *t).shape, big, s) for t in turns)
    if not n:
        return None, 0
    coarse = sorted(_coarse(q, name, k, s, spectra, turns), key=lambda c: c[0], reverse=True)
    step = COARSE / min(s.scale_block, *q.shape)
    picked: list[tuple[float, tuple[int, bool]]] = []
    for _, sc, t in coarse:  # the best few, each away from a better one of the same turn (one peak, one pick)
        if all(t != pt or abs(math.log(sc / ps)) > 2.5 * step for ps, pt in picked):
            picked.append((sc, t))
        if len(picked) == CANDIDATES:
            break
    medium, k_half = [], resample(k, big[0] // COARSE, big[1] // COARSE)
    for sc, t in picked:
        long_side = max(q.shape)
        reach = int(math.ceil(step * long_side / COARSE))
        lo, hi = scale_range(orient_to_sensor(q.w, *t).shape, big, s)
        for j in range(-reach, reach + 1):
            sm = sc * (1 + j * COARSE / long_side)
            if lo <= sm <= hi and (r := _whole(q, k_half, big, t, sm, COARSE)) is not None:
                medium.append((r[0], sm, t))
    if not medium:
        return None, n
    _, sm, t = max(medium)
    lo, hi = scale_range(orient_to_sensor(q.w, *t).shape, big, s)
    best = None
    long_side = max(q.shape)
    tried: set[int] = set()
    for half_steps in (range(-2 * FINE, 2 * FINE + 1, 2), (-1, 1)):  # whole fine steps, then halves at the best
        centre = 0 if best is None else best[3]
        for j in (centre + d for d in half_steps):
            sf = sm * (1 + j / (2 * long_side))
            if j in tried or not lo <= sf <= hi or (r := _whole(q, k, big, t, sf, 1)) is None:
                continue
            tried.add(j)
            value, h, peak, plane = r
            if tails is not None:
                tails.append(plane_tail(plane, exclude=peak))
            if best is None or value > best[0]:
                best = (value, h, peak, j)
    return (best[:3] if best else None), n
