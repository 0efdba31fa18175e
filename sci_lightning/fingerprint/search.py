"""The geometry search: a photo's best alignment in every fingerprint's frame, stage by stage (:mod:`.hypotheses`),
each camera that could be named judged against the null measured on its own planes and its decoys (:mod:`.null`).

Correlation is Goljan's form: the photo's ``W * I`` (residual times intensity) placed in the fingerprint's frame
(resampled for a size setting), every offset at once by one FFT; each camera's fingerprint spectrum serves every
photo and the photo's spectrum every camera of the same frame (:class:`~.geometry.Spectra`, :class:`~.geometry.Query`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.fft

from sci_lightning.fingerprint.geometry import (
    GeometrySettings,
    Match,
    Query,
    Spectra,
    orient_to_photo,
)
from sci_lightning.fingerprint.hypotheses import Hypothesis, hypotheses, orientations
from sci_lightning.fingerprint.null import NullModel, Tail, fit_null, plane_tail
from sci_lightning.fingerprint.scales import STAGE as SCALE_STAGE
from sci_lightning.fingerprint.scales import scale_search
from sci_lightning.fingerprint.significance import grid_pce, judged, log10_false_alarm

# Geometries that are not searched (with geometry.mirror=false), applied to a fingerprint: its scene residue and
# processing stay, its PRNU is nowhere the search looks. A turn of the photo is searched, so turns are no decoys.
DECOYS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mirrored": lambda k: np.ascontiguousarray(k[:, ::-1]),
    "flipped": lambda k: np.ascontiguousarray(k[::-1, :]),
}


def decoy_spectrum(fk: np.ndarray, frame: tuple[int, int], decoy: str) -> np.ndarray:
    """The rfft2 of the frame ``fk`` is the rfft2 of, mirrored left-right or flipped upside down, computed from
    ``fk`` itself (a reversed axis is a conjugate and a phase ramp in the DFT): no resample and no FFT per decoy."""
    f0, f1 = frame
    neg = (-np.arange(f0)) % f0
    if decoy == "mirrored":
        ramp = np.exp(-2j * np.pi * np.arange(fk.shape[1]) * (f1 - 1) / f1).astype(fk.dtype)
        return ramp[None, :] * np.conj(fk[neg, :])
    ramp = np.exp(-2j * np.pi * np.arange(f0) * (f0 - 1) / f0).astype(fk.dtype)
    return ramp[:, None] * fk[neg, :]


def stages(s: GeometrySettings) -> int:
    """How many stages a search may run: as stored, whole frames and plain resizes, size settings, crops as stored
    or upside down, crops turned sideways (a time saver: most crops keep the sensor's orientation), crop + resize.

    Each stage is judged on the hypotheses tested so far and may stop the search (``geometry=auto``), so a
    peak's false-alarm probability is multiplied by this (the union bound over the stages: the overall rate
    stays within the bar). Few stages, each cheap ones first: a resized whole frame is judged among ~20
    positions, not among the ten million offsets a crop search adds later."""
    return 3 + 2 * int(s.crop) + int(s.scale_search)


def correlate(q: Query, name: str, k: np.ndarray, h: Hypothesis, spectra: Spectra, keep: bool = True) -> np.ndarray:
    """The correlation plane of the photo against ``k`` under the hypothesis ``h``."""
    fk = spectra.get(name, k, h.frame)
    return scipy.fft.irfft2(fk * np.conj(q.spectrum(h.rotation, h.mirror, h.frame, keep)), s=h.frame, workers=-1)


def peak_of(plane: np.ndarray, h: Hypothesis) -> tuple[int, int]:
    """The highest (positive) correlation where the hypothesis allows the peak."""
    if h.shift == 0:
        valid = plane[: h.frame[0] - h.photo[0] + 1, : h.frame[1] - h.photo[1] + 1]
        i, j = np.unravel_index(int(np.argmax(valid)), valid.shape)
        return int(i), int(j)
    rows, cols = h.spans()
    sub = plane[np.ix_(rows, cols)]
    i, j = np.unravel_index(int(np.argmax(sub)), sub.shape)
    return int(rows[i]), int(cols[j])


@dataclass
class _Camera:
    """One camera's state during a search: what it was tested with, its best peak, its planes' tails."""

    tested: int = 0  # positions tested (the aligned comparison's included)
    tails: list[tuple[int, Tail]] = field(default_factory=list)  # (stage, own plane's tail without its peak), of
    # the hypotheses whose peak could have named the camera: only those are judged, so only their null is measured
    decoys: dict[Hypothesis, dict[str, Tail]] = field(default_factory=dict)  # decoy planes' tails, by kind
    decoy_peaks: dict[Hypothesis, dict[str, float]] = field(default_factory=dict)  # their peaks where h looks
    best: tuple[float, Hypothesis, tuple[int, int], int, int] | None = None  # pce, h, peak, n, stage
    null: NullModel | None = None
    sources: str = ""
    checks: tuple[int, int] = (0, 0)  # decoy searches judged against the null measured without them, named


def _by_frame(h: Hypothesis) -> tuple:
    return h.frame, h.rotation, h.mirror


class Searcher:
    """The search of one photo against a set of fingerprints (:func:`search_photo`)."""

    def __init__(
        self,
        q: Query,
        fingerprints: dict[str, np.ndarray],
        s: GeometrySettings,
        spectra: Spectra,
        tested: dict[str, int] | None = None,
        bar: float | None = None,
    ) -> None:
        self.q, self.fps, self.s, self.spectra, self.bar = q, fingerprints, s, spectra, bar
        self.cams = {c: _Camera(tested=(tested or {}).get(c, 0)) for c in fingerprints}
        self.n = 0
        self.n_stages = stages(s)

    # -- stages ------------------------------------------------------------------------------------------------
    def run_stage(self, stage: int) -> None:
        """Every hypothesis of ``stage`` for every camera; each camera keeps its peak of lowest false-alarm
        probability (Gaussian) over the stages."""
        found: dict[str, tuple[float, Hypothesis, tuple[int, int]]] = {}
        # camera by camera, each one's frames in turn: its fingerprint's spectra (a resample and an FFT each) are
        # made once per photo; the photo's padded spectra are cheaper to make again (no resample)
        for name, k in self.fps.items():
            for h in sorted((h for h in hypotheses(self.q.shape, k.shape, self.s) if h.stage == stage), key=_by_frame):
                fk = self.spectra.get(name, k, h.frame)
                q = np.conj(self.q.spectrum(h.rotation, h.mirror, h.frame))
                plane = scipy.fft.irfft2(fk * q, s=h.frame, workers=-1)
                peak = peak_of(plane, h)
                value = grid_pce(plane, peak)
                cam = self.cams[name]
                cam.tested += h.count
                if self.nameable(value, cam.tested):  # its null now, while the plane and the spectra are at hand
                    cam.decoys[h], cam.decoy_peaks[h] = self._decoys(fk, q, h)
                    cam.tails.append((stage, plane_tail(plane, exclude=peak)))
                self.n += h.count
                if name not in found or value > found[name][0]:
                    found[name] = (value, h, peak)
        for name, f in found.items():
            self._offer(name, f, stage)

    def run_scale_search(self, stage: int, skip: frozenset[str] = frozenset()) -> None:
        """The crop + resize search (:func:`~.scales.scale_search`) for every camera, in the turns
        ``geometry.scale_rotations``; a peak that could name its camera gets its decoy searched the same way (every
        scale, all three passes: a decoy looked at only at the camera's scale would not have had the camera's
        chance to find, among the scales, one where the photo's scene lines up with the fingerprint's)."""
        turns = [(r, m) for r, m in orientations(self.s) if r in self.s.scale_rotations]
        for name, k in self.fps.items():
            if name in skip:
                continue
            tails: list[Tail] = []
            f, count = scale_search(self.q, name, k, self.s, self.spectra, turns, tails)
            cam = self.cams[name]
            cam.tested += count
            self.n += count
            if f is None:
                continue
            cam.tails += [(stage, t) for t in tails]
            value, h, _ = f
            if self.nameable(value, cam.tested):
                cam.decoys[h], cam.decoy_peaks[h] = {}, {}
                for d in list(DECOYS)[:1]:  # its planes are huge (~1e9 positions): one decoy measures the tail
                    dtails: list[Tail] = []
                    found, _ = scale_search(self.q, f"{name}~{d}", DECOYS[d](k), self.s, self.spectra, turns, dtails)
                    if found is not None:
                        cam.decoys[h][d], cam.decoy_peaks[h][d] = Tail.pooled(dtails), found[0]
            self._offer(name, f, stage)

    def _offer(self, name: str, f: tuple[float, Hypothesis, tuple[int, int]], stage: int) -> None:
        cam = self.cams[name]
        if cam.best is None or log10_false_alarm(f[0], cam.tested) < log10_false_alarm(cam.best[0], cam.best[3]):
            cam.best = (*f, cam.tested, stage)
            cam.null = None  # measured again for the new peak

    # -- the null ----------------------------------------------------------------------------------------------
    def gaussian(self, name: str) -> float:
        b = self.cams[name].best
        return judged(log10_false_alarm(b[0], b[3]), self.n_stages, len(self.fps)) if b else 0.0

    def measured(self, name: str) -> float:
        """The camera's judged false-alarm probability under its measured null (:meth:`measure`)."""
        b, cam = self.cams[name].best, self.cams[name]
        if b is None:
            return 0.0
        if cam.null is None:
            self.measure(name)
        own = cam.null.log10_pfa(b[0], b[3]) if cam.null is not None else log10_false_alarm(b[0], b[3])
        return judged(own, self.n_stages, len(self.fps))

    def nameable(self, pce: float, n: int) -> bool:
        """Whether a peak could name its camera by the Gaussian tail (only those are worth their decoys)."""
        if self.bar is None or not self.s.decoys or self.s.mirror:  # mirrors searched: impostors are the null
            return False
        return judged(log10_false_alarm(pce, n), self.n_stages, len(self.fps)) <= self.bar

    def _decoys(self, fk: np.ndarray, q: np.ndarray, h: Hypothesis) -> tuple[dict[str, Tail], dict[str, float]]:
        """The hypothesis searched with the decoy fingerprints (``fk`` its frame's spectrum, ``q`` the photo's
        conjugate spectrum): each decoy plane's tail (for the null) and its peak where ``h`` looks (for the decoy
        checks); both decoys where the hypothesis has few positions, one where its planes are large."""
        tails, peaks = {}, {}
        for d in list(DECOYS) if h.count < 10_000 else list(DECOYS)[:1]:
            plane = scipy.fft.irfft2(decoy_spectrum(fk, h.frame, d) * q, s=h.frame, workers=-1)
            peaks[d] = grid_pce(plane, peak_of(plane, h))
            tails[d] = plane_tail(plane)
        return tails, peaks

    def measure(self, name: str) -> None:
        """Fit the camera's null (:func:`measured_null`): the own planes (peaks left out) and the decoy planes of
        each hypothesis whose peak could have named it, up to its peak's stage."""
        cam = self.cams[name]
        pce, _, _, n, stage = cam.best
        own = [t for st, t in cam.tails if st <= stage]
        # the decoys of every hypothesis whose peak could have named the camera (made in run_stage)
        hs = [h for h in cam.decoys if h.stage <= stage]
        decoys = [cam.decoys[h] for h in hs]
        cam.null, cam.sources = measured_null(own, [t for ts in decoys for t in ts.values()])
        named = lambda lp: judged(lp, self.n_stages, len(self.fps)) <= self.bar  # noqa: E731
        cam.checks = decoy_checks(own, decoys, [cam.decoy_peaks[h] for h in hs], n, named)

    def cleared(self, stop: float) -> bool:
        """Whether a camera's peak clears ``stop`` under its measured null (measured only for the cameras whose
        Gaussian probability clears it: the others cannot be named)."""
        nameable = sorted((c for c in self.cams if self.cams[c].best is not None), key=self.gaussian)
        if not self.s.decoys:  # geometry.decoys=false: the Gaussian tail alone
            return any(self.gaussian(c) <= stop for c in nameable)
        return any(self.measured(c) <= stop for c in nameable if self.gaussian(c) <= stop)

    def matches(self, stop: float | None) -> dict[str, Match]:
        out = {}
        for name, cam in self.cams.items():
            if cam.best is None:
                continue
            if self.s.decoys and stop is not None and self.gaussian(name) <= stop and cam.null is None:
                self.measure(name)
            pce, h, peak, n, _ = cam.best
            out[name] = _match(self.q, name, self.fps[name], self.spectra, pce, h, peak, n, cam.null, cam.sources)
            out[name].decoy_checks = cam.checks
        return out


def decoy_checks(
    own: list[Tail],
    decoys: list[dict[str, Tail]],
    peaks: list[dict[str, float]],
    n: int,
    named: Callable[[float], bool],
) -> tuple[int, int]:
    """Each decoy searched as if it were a camera: its best peak where the camera's hypotheses look (``peaks``,
    one dict per hypothesis), among the camera's ``n`` positions, judged against the null measured without it
    (the camera's own planes and the other decoy's). Returns ``(searches, named)``: how often a fingerprint that
    cannot hold the photo's PRNU would have been named by the rule (the measured false-attribution rate of decoy
    searches, reported with their count)."""
    searches = names = 0
    for kind in DECOYS:
        mine = [p[kind] for p in peaks if kind in p]
        if not mine:
            continue
        rest = [t for ts in decoys for k, t in ts.items() if k != kind]
        model = fit_null(Tail.pooled(own + rest))
        best = max(mine)
        lp = model.log10_pfa(best, n) if model is not None else log10_false_alarm(best, n)
        searches += 1
        names += int(named(lp))
    return searches, names


def measured_null(own: list[Tail], decoys: list[Tail]) -> tuple[NullModel | None, str]:
    """The null fitted on a camera's own planes (peaks left out) and its decoys' planes, and what it was
    measured on, in words (None where too few positions were measured to fit one: the Gaussian's then).

    The other cameras' planes for the same photo are not pooled in: their tails are their own fingerprints'
    (a one-photo chart fingerprint reaches PCE 300 against any chart photo), not this camera's; they compete
    instead, each judged against its own decoys, and the case's impostor searches (validation photos searched
    without their camera) measure what the whole rule lets through."""
    model = fit_null(Tail.pooled(own + decoys))
    if model is None:
        return None, ""
    what = (
        f"its own planes and {len(decoys)} decoy plane{'s' if len(decoys) != 1 else ''}" if decoys else "its own planes"
    )
    return model, f"{what}: {model.n:.3g} positions, largest PCE {model.largest:.1f}"


def search_photo(
    q: Query,
    fingerprints: dict[str, np.ndarray],
    s: GeometrySettings,
    spectra: Spectra,
    stop: float | None = None,
    tested: dict[str, int] | None = None,
    early: bool = True,
    no_scale: frozenset[str] = frozenset(),
) -> tuple[dict[str, Match], int]:
    """The best hypothesis of ``q`` against every fingerprint, stage by stage (:func:`stages`).

    A peak found in a stage carries ``n``, the hypotheses its camera had tested by the end of that stage
    (``tested``: those before the search, e.g. the aligned comparison); a camera keeps the peak with the lowest
    false-alarm probability. ``stop`` is the decision bar: a camera whose peak clears it by the Gaussian tail is
    judged again under its measured null (:meth:`Searcher.measure`), and with ``early`` (``geometry=auto``) the
    search ends after the first stage where one still clears; the scale search then skips the cameras of
    ``no_scale``. Returns ``({camera: Match}, n)``, ``n`` every position tested here over all cameras."""
    run = Searcher(q, fingerprints, s, spectra, tested, stop)
    done = False
    for stage in (1, 2, 3, 4):
        run.run_stage(stage)
        if early and stop is not None and run.cleared(stop):
            done = True
            break
    if not done and s.scale_search:
        run.run_scale_search(SCALE_STAGE, no_scale)
    return run.matches(stop), run.n


def _match(
    q: Query,
    name: str,
    k: np.ndarray,
    spectra: Spectra,
    value: float,
    h: Hypothesis,
    peak: tuple,
    n: int,
    null: NullModel | None = None,
    sources: str = "",
) -> Match:
    scale = h.frame[1] / k.shape[1]
    signed = h.signed(peak)
    offset = tuple(int(round((p - t) / scale)) for p, t in zip(signed, h.trim))  # the photo's corner, sensor px
    kind = "resize" if h.kind == "resize" else h.kind
    m = Match(value, n, kind, h.rotation, h.mirror, scale, (offset[0], offset[1]), hypothesis=h, peak=peak)
    m.null, m.null_sources = null, sources
    m.ncc = ncc32(fingerprint_in_photo(m, name, k, spectra, q.shape) * q.grey, q.w)
    return m


def ncc32(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation at zero shift in float32 (BLAS dot products): ~10x faster than
    :func:`~sci_lightning.fingerprint.core.ncc` at 12 MP, to ~1e-5 of its value; a searched match's NCC is
    reported, never decided on."""
    a = np.ravel(a).astype(np.float32) - np.float32(np.mean(a))
    b = np.ravel(b).astype(np.float32) - np.float32(np.mean(b))
    denom = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    return float(np.dot(a, b)) / denom if denom > 0 else 0.0


def fingerprint_in_photo(m: Match, name: str, k: np.ndarray, spectra: Spectra, shape: tuple[int, int]) -> np.ndarray:
    """The fingerprint ``k`` aligned onto the photo's stored pixels (``shape``) as ``m`` found it (for NCC and heat
    maps; zero where the photo was cut to fit a resampled frame)."""
    h = m.hypothesis
    ks = Spectra.fingerprint(k, h.frame)
    window = np.roll(ks, (-m.peak[0], -m.peak[1]), axis=(0, 1))[: h.photo[0], : h.photo[1]]
    out = np.zeros((shape[1], shape[0]) if h.rotation in (90, 270) else tuple(shape[:2]), np.float32)
    out[h.trim[0] : h.trim[0] + h.photo[0], h.trim[1] : h.trim[1] + h.photo[1]] = window
    return orient_to_photo(out, h.rotation, h.mirror)
