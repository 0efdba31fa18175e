"""Crop and resize at once (a crop of unknown size, then resized): the scale search, coarse to fine.

Goljan & Fridrich 2008 search the scale by brute force at full resolution (one FFT of the whole fingerprint per
scale and turn): ~100 s per camera and turn for a 12 MP fingerprint on a 2-core machine. Three passes instead,
each as coarse as its job allows:

1. **coarse** (which scales are worth a look): the photo's central ``scale_block`` px square against the
   fingerprint at half resolution, at scales from ``scale_max`` down to the smallest at which the photo still fits
   in relative steps of ``2 / block`` (a mis-scale of one step moves the half-resolution block's edges by half a
   pixel), at every offset where the whole photo fits around it (the FFT is of that window of the fingerprint,
   one window per run of scales). The square is the same square in every turn, so one window's spectrum serves
   both turns of a shape, and a turn by 180 degrees is the same product conjugated the other way (no second FFT
   of the block).
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
BAND = 16  # coarse scales that share one window of the fingerprint (and its FFT)
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


def _peak_within(plane: np.ndarray, frame: tuple[int, int], rows: tuple[int, int], cols: tuple[int, int]):
    """PCE and position of the highest peak at rows ``rows[0]..rows[1]`` and columns ``cols[0]..cols[1]`` (the
    positions where the photo fits) of the plane's ``frame`` (its top left: the rest is zero padding)."""
    plane = plane[: frame[0], : frame[1]]
    valid = plane[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1]
    i, j = np.unravel_index(int(np.argmax(valid)), valid.shape)
    peak = (int(i) + rows[0], int(j) + cols[0])
    return grid_pce(plane, peak), peak


def _block_span(photo: int, b: int, sc: float, frame: int, side: int) -> tuple[int, int]:
    """First and last place (half-resolution sensor px, along one axis) of the photo's central ``b`` px square
    (``side`` px there) where the whole photo (``photo`` px along the axis, at scale ``sc``) lies in ``frame``,
    with a px of slack either way for rounding. Places where only the square fits are no crop of this camera."""
    before = (photo - b) / 2 / (sc * COARSE)  # the photo's px before its central square
    room = frame - photo / (sc * COARSE)  # how far the photo can move
    return max(0, math.floor(before) - 1), min(frame - side, math.ceil(before + room) + 1)


def _coarse(q: Query, name: str, k: np.ndarray, s: GeometrySettings, spectra: Spectra, turns: list) -> list:
    """(PCE, scale, turn) of every coarse step in each turn's range.

    The square slides only where the whole photo fits around it: for a photo much smaller than the sensor that is
    most of the frame at scale 1 and a strip at its smallest scale. So each run of ``BAND`` scales transforms only
    the window of the fingerprint its squares can reach (one window for the run's largest reach), not the whole
    frame: ~3x fewer FFT px for a 3 MP photo in a 26 MP fingerprint, and no peak where the photo cannot be."""
    big = k.shape
    half = (big[0] // COARSE, big[1] // COARSE)
    kh = spectra.resampled(name, k, half)
    b = min(s.scale_block, *q.shape)
    y0, x0 = (q.shape[0] - b) // 2, (q.shape[1] - b) // 2
    block = q.wi[y0 : y0 + b, x0 : x0 + b]
    shapes = {t: orient_to_sensor(q.w, *t).shape for t in turns}
    ranges = {t: scale_range(shapes[t], big, s) for t in turns}
    lo, hi = min(r[0] for r in ranges.values()), max(r[1] for r in ranges.values())
    step = COARSE / b
    scales = [float(sc) for sc in hi * (1 - step) ** np.arange(int(math.log(lo / hi) / math.log(1 - step)) + 1)]
    classes: dict[int, list] = {}  # turns that share the photo's turned shape (0 and 180; 90 and 270)
    for t in turns:
        classes.setdefault(t[0] % 180, []).append(t)
    out = []
    for first in range(0, len(scales), BAND):
        squares: dict[float, np.ndarray] = {}  # the square at each of the run's scales, for both shapes
        for turned in classes.values():
            shape, spans = shapes[turned[0]], {}
            for sc in scales[first : first + BAND]:
                side = int(round(b / (sc * COARSE)))  # the square brought to the half-resolution sensor's scale
                live = [t for t in turned if ranges[t][0] <= sc <= ranges[t][1]]
                span = [_block_span(shape[a], b, sc, half[a], side) for a in (0, 1)]
                if live and side <= min(half) and all(a <= z for a, z in span):
                    spans[sc] = (side, live, span)
            if not spans:
                continue
            # the window's origin on the 8 px grid, so that grid_pce's classes are the frame's
            origin = [min(v[2][a][0] for v in spans.values()) // 8 * 8 for a in (0, 1)]
            end = [min(half[a], max(v[2][a][1] + v[0] for v in spans.values())) for a in (0, 1)]
            window = kh[origin[0] : end[0], origin[1] : end[1]]
            size = window.shape
            fast = (scipy.fft.next_fast_len(size[0], real=True), scipy.fft.next_fast_len(size[1], real=True))
            pad = np.zeros(fast, np.float32)
            pad[: size[0], : size[1]] = window - np.float32(window.mean())
            fk = scipy.fft.rfft2(pad, workers=-1)
            for sc, (side, live, span) in spans.items():
                if sc not in squares:
                    squares[sc] = resample(block, side, side)
                (ry, rx) = [(a - o, z - o) for (a, z), o in zip(span, origin, strict=True)]
                for t, plane in _planes(fk, squares[sc], fast, live).items():
                    out.append((_peak_within(plane, size, ry, rx)[0], sc, t))
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
    value, peak = _peak_within(plane, frame, (0, frame[0] - photo[0]), (0, frame[1] - photo[1]))
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
    medium, k_half = [], spectra.resampled(name, k, (big[0] // COARSE, big[1] // COARSE))  # the coarse pass's
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
