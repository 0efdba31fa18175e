"""How much a correlation peak means: its false-alarm probability among the hypotheses searched, and the PCE of
a peak measured against its own place on the JPEG block grid. NumPy and SciPy only.

Under "another camera" the normalised correlation at one position is ~N(0, 1), so PCE is its square and the
best of ``n`` positions is a false alarm with probability ``1 - (1 - Q(sqrt(PCE)))^n`` (Goljan & Fridrich 2008;
a widely copied Python port computes ``p^n`` instead). Computed in log space: a 12 MP crop search has ``n`` ~ 1e7
and a true match a PCE of thousands, whose tail underflows a float.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.special

LN10 = math.log(10.0)


def log10_false_alarm(pce: float, n: int) -> float:
    """``log10(1 - (1 - Q(sqrt(PCE)))^n)``: the chance that the best of ``n`` impostor positions reaches ``pce``.

    A negative PCE (peak of the wrong sign) gives ~0 (P_FA ~ 1). Exact where it matters, and finite where ``Q``
    underflows (``log Q`` from :func:`scipy.special.log_ndtr`)."""
    n = max(int(n), 1)
    x = math.copysign(math.sqrt(abs(pce)), pce)
    log_q = float(scipy.special.log_ndtr(-x))  # ln Q(x)
    if log_q + math.log(n) < -18:  # n*q < 1.5e-8: 1 - (1 - q)^n = n*q to 8 digits
        return (log_q + math.log(n)) / LN10
    q = math.exp(log_q)
    return math.log10(-math.expm1(n * math.log1p(-q))) if q < 1 else 0.0


def any_of(log10_p: float, k: int) -> float:
    """``log10(1 - (1 - p)^k)``: the chance that the best of ``k`` independent tests, each with false-alarm
    probability ``p = 10^log10_p``, is a false alarm (a photo's best camera among ``k`` compared)."""
    k = max(int(k), 1)
    if log10_p + math.log10(k) < -8:
        return log10_p + math.log10(k)
    p = 10.0**log10_p
    return math.log10(-math.expm1(k * math.log1p(-p))) if p < 1 else 0.0


def sci(log10_value: float, digits: int = 3) -> str:
    """``10^log10_value`` in scientific notation from its logarithm, so a probability far below a float's range
    reads ``1.78e-562``, never ``0``."""
    if not math.isfinite(log10_value):
        return "0" if log10_value < 0 else "inf"
    exponent = math.floor(log10_value)
    mantissa = 10.0 ** (log10_value - exponent)
    if round(mantissa, digits - 1) >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.{digits - 1}f}e{exponent:+03d}"


def tally(checks: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """``(searches, named)`` pairs added up (decoy checks over cameras, photos or searches)."""
    searches = named = 0
    for n, k in checks:
        searches, named = searches + n, named + k
    return searches, named


def false_alarm(pce: float, n: int) -> float:
    """``1 - (1 - Q(sqrt(PCE)))^n`` (0.0 where it underflows; see :func:`log10_false_alarm`)."""
    return 10.0 ** log10_false_alarm(pce, n)


def pce_bar(alpha: float, n: int) -> float:
    """The PCE at which the best of ``n`` positions has false-alarm probability ``alpha`` (the decision bar)."""
    q = -math.expm1(math.log1p(-alpha) / max(int(n), 1))  # per-position tail
    x = -float(scipy.special.ndtri(q))
    return x * x if x > 0 else 0.0


def grid_pce(plane: np.ndarray, peak: tuple[int, int], exclude: int = 11, period: int = 8) -> float:
    """PCE of ``peak`` with the energy of the positions that share its place on the JPEG block grid.

    Why not the whole plane's energy (:func:`~sci_lightning.fingerprint.core.plane_pce`): a camera's fingerprint
    and a JPEG photo's residual both carry 8x8 blocking, so offsets that line the two block grids up (one in 64)
    correlate twice as strongly by chance. Searched over every offset, impostors then peak there: on vision-3 an
    impostor PCE of 44.7 at (304, 224) among 1.1e7 positions (the Gaussian tail allows ~28), with 17 % of the top
    2,000 peaks on the grid instead of 1.6 %. Measuring each peak against the energy of its own residue class
    (offset mod 8) brought that plane's largest value to 27.6 and the grid's to 21.7. Removing the grid's
    periodic mean from both sides did not (the blocking follows the content)."""
    a, b = peak[0] % period, peak[1] % period
    sub = plane[a::period, b::period]
    total = float(np.square(sub, dtype=np.float64).sum())
    half = exclude // 2
    rows = np.unique((np.arange(-half, half + 1) + peak[0]) % plane.shape[0])
    cols = np.unique((np.arange(-half, half + 1) + peak[1]) % plane.shape[1])
    rows, cols = rows[rows % period == a], cols[cols % period == b]
    window = plane[np.ix_(rows, cols)]
    outside = sub.size - window.size
    energy = (total - float(np.square(window, dtype=np.float64).sum())) / outside if outside > 0 else 0.0
    value = float(plane[peak])
    return float(np.sign(value) * value * value / energy) if energy > 0 else 0.0


def judged(log10_own: float, n_stages: int, n_cameras: int) -> float:
    """log10 false-alarm probability of a photo's best peak: its own (among the hypotheses its camera had tested
    when it was found, under the Gaussian or the measured null), times the stages, combined over the cameras
    compared."""
    return any_of(log10_own + math.log10(max(n_stages, 1)), n_cameras)


def photo_log10_pfa(scored: dict[str, Any]) -> dict[str, float]:
    """Each camera's peak as the photo's answer (:func:`judged`): its own false-alarm probability (``log10_pfa``
    of its geometry: measured on its own planes and decoys where it could be named, else Gaussian), times the
    search's stages, combined over the ``family`` of cameras the photo was compared with (the library: all of
    them). A photo scored without a search counts one hypothesis per camera and one stage."""
    family, n_stages = int(scored.get("family", len(scored["scores"]))), int(scored.get("stages", 1))
    geometry = scored.get("geometry", {})
    return {
        c: judged(geometry[c]["log10_pfa"] if c in geometry else log10_false_alarm(p, 1), n_stages, family)
        for c, (p, _) in scored["scores"].items()
    }
