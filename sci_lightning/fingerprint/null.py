"""The null a peak is judged against, measured on the case instead of assumed. NumPy and SciPy only.

Why: the Gaussian false-alarm probability (:mod:`.significance`) assumes that a fingerprint at a wrong alignment
correlates with a photo like white noise. A fingerprint estimated from a few photos of one textured scene keeps
that scene's residue (edges, text, the chart's grid) and the camera's processing; a photo of a similar scene then
correlates with it at many wrong offsets far beyond the Gaussian tail. Measured on the real chart photos of
``../shared/realdata/digicam-dev`` (docs/RESULTS.md): a one-photo Canon EOS RP fingerprint searched with a
2048 x 1536 photo of another camera peaked at PCE 1,652 among 1.1e7 offsets, and the same search against that
fingerprint *mirrored* (which cannot hold the camera's PRNU at any offset searched) at 1,756; the Gaussian tail
allows ~40.

What is measured, for each photo and each camera that would be named:

* **its own planes** away from the peak (the 11 x 11 window around it left out): the fingerprint at every wrong
  alignment, for each hypothesis whose peak could have named it;
* **decoys**: the same hypotheses searched with the fingerprint mirrored left-right and upside down, geometries
  that are not searched (with ``geometry.mirror=true`` they are, and only its own planes remain): same scene
  residue, same processing, no PRNU where it is looked for.

The other cameras' planes are not pooled in (their tails are their own fingerprints'); they compete, each judged
against its own null, and the case's impostor searches measure what the whole rule lets through.

Each plane gives its largest values in PCE units (:func:`plane_tail`); the pooled tails are fitted by a
generalised Pareto distribution over their largest :data:`EXCEEDANCES` values (peaks over threshold), and a
position's chance to reach a PCE is the largest of the Gaussian's, the empirical one and the fitted one, so a
measured null can only raise the bar. Positions near one another are not independent (resampling spreads a peak
over a few px); counting them as independent overstates the null's chances, which errs on the side of "unknown".
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.special
import scipy.stats

from sci_lightning.fingerprint.significance import LN10, any_of

TOP = 256  # values kept per plane
EXCEEDANCES = 200  # the largest pooled values the tail is fitted on
MIN_VALUES = 20  # fewer than this: no fit (a plane of a few hundred positions), the Gaussian's tail alone


@dataclass(frozen=True)
class Tail:
    """The largest values of null correlation planes in PCE units (descending) and the positions they come from."""

    values: np.ndarray
    n: int

    @staticmethod
    def pooled(tails: Iterable[Tail | None]) -> Tail | None:
        """One tail from several (their values merged, their positions added); None if there are none."""
        tails = [t for t in tails if t is not None and t.n > 0]
        if not tails:
            return None
        values = np.sort(np.concatenate([t.values for t in tails]))[::-1][:TOP]
        return Tail(values, sum(t.n for t in tails))


def plane_tail(
    plane: np.ndarray,
    period: int = 8,
    exclude: tuple[int, int] | None = None,
    window: int = 11,
    top: int = TOP,
) -> Tail:
    """The largest positive values of a correlation plane in PCE units: each value squared over the mean energy of
    its residue class mod ``period`` (8: the JPEG grid, as :func:`~.significance.grid_pce`; 1: the whole plane,
    as :func:`~.core.plane_pce`). ``exclude``: a peak whose ``window`` is left out (the camera's own plane; zeroed
    in ``plane`` itself)."""
    plane = np.asarray(plane)
    n_out = 0
    if exclude is not None:  # the peak's window zeroed in place (the plane is the caller's scratch copy)
        half = window // 2
        rows = np.unique((np.arange(-half, half + 1) + exclude[0]) % plane.shape[0])
        cols = np.unique((np.arange(-half, half + 1) + exclude[1]) % plane.shape[1])
        plane[np.ix_(rows, cols)] = 0
        n_out = len(rows) * len(cols)
    candidates = []
    for a in range(min(period, plane.shape[0])):
        for b in range(min(period, plane.shape[1])):
            sub = plane[a::period, b::period].ravel()
            energy = float(np.vdot(sub, sub)) / sub.size if sub.size else 0.0
            k = min(top, sub.size)
            best = np.partition(sub, sub.size - k)[sub.size - k :].astype(np.float64)
            best = best[best > 0]
            if energy > 0 and best.size:
                candidates.append(best * best / energy)
    n = plane.size - n_out
    values = np.sort(np.concatenate(candidates))[::-1][:top] if candidates else np.zeros(0)
    return Tail(values, n)


def gaussian_log10_sf(pce: float) -> float:
    """log10 of one position's chance to reach ``pce`` under the Gaussian null: Q(sqrt(PCE))."""
    x = math.copysign(math.sqrt(abs(pce)), pce)
    return float(scipy.special.log_ndtr(-x)) / LN10


@dataclass(frozen=True)
class NullModel:
    """A measured per-position null: the pooled tail and the generalised Pareto fitted above ``threshold``."""

    values: tuple[float, ...]  # the largest null values (descending, PCE units)
    n: int  # positions measured
    threshold: float  # u: the EXCEEDANCES-th largest value
    shape: float  # xi >= 0 (0: exponential, the Gaussian PCE's own tail shape)
    scale: float  # sigma

    @property
    def largest(self) -> float:
        return self.values[0] if self.values else 0.0

    def log10_sf(self, pce: float) -> float:
        """log10 of one position's chance to reach ``pce``: the largest of the Gaussian's, the empirical and the
        fitted tail's (a measured null only ever raises the bar)."""
        out = gaussian_log10_sf(pce)
        count = self._at_least(pce)
        if count:
            out = max(out, math.log10(count / self.n))
        k = self._at_least(self.threshold)
        if pce > self.threshold and k:
            z = (pce - self.threshold) / self.scale
            log_tail = -math.log1p(self.shape * z) / self.shape if self.shape > 1e-9 else -z
            out = max(out, math.log10(k / self.n) + log_tail / LN10)
        return out

    def log10_pfa(self, pce: float, n: int) -> float:
        """log10 chance that the best of ``n`` null positions reaches ``pce``."""
        return any_of(self.log10_sf(pce), n)

    @functools.cached_property
    def _ascending(self) -> list[float]:
        return [-v for v in self.values]  # values are descending: their negatives ascend

    def _at_least(self, x: float) -> int:
        """How many of ``values`` are >= ``x`` (a bisection: a clustering run asks this for every pair)."""
        return bisect.bisect_right(self._ascending, -x)


def fit_null(tail: Tail | None) -> NullModel | None:
    """The :class:`NullModel` of a pooled tail (None when it holds too few values to fit)."""
    if tail is None or len(tail.values) < MIN_VALUES:
        return None
    values = np.asarray(tail.values, np.float64)
    k = min(EXCEEDANCES, len(values))
    u = float(values[k - 1])
    y = values[: k - 1] - u
    y = y[y > 0]
    shape, scale = 0.0, float(y.mean()) if y.size else 1.0
    if y.size >= MIN_VALUES:
        try:
            c, _, s = scipy.stats.genpareto.fit(y, floc=0)
            if np.isfinite(c) and np.isfinite(s) and s > 0:
                shape, scale = min(max(float(c), 0.0), 1.0), float(s)
                if c < 0:  # a bounded tail is not believed: the exponential's scale instead
                    scale = float(y.mean())
        except (ValueError, RuntimeError, FloatingPointError):
            pass
    return NullModel(tuple(float(v) for v in values), int(tail.n), u, shape, max(scale, 1e-9))
