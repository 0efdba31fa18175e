"""Every pair of photos that could share a sensor, compared at zero shift in each turn that maps one onto the
other, and the null those comparisons are judged against, measured on the run's own photos.

Which pairs: photos of one size (turns of 0 and 180 degrees; all four for square photos) or of transposed sizes
(90 and 270). Photos of other sizes are not compared (a camera's size settings are the geometry search's work).

The null, per hypothesis (one turn of one pair), is the larger of two measured tails, each never below the
Gaussian's (:class:`~sci_lightning.fingerprint.null.NullModel`):

* **shifted**: every comparison's own plane at the other multiples of 8 (16,383 positions at 1024 px) and the
  decoys' planes: misaligned residuals, pooled over the run;
* **decoys at zero shift**: up to ``cluster.decoys`` compared pairs again with one photo mirrored left-right, a
  geometry no camera produces: aligned like a real pair, same scenes and processing, no shared PRNU.

A pair is linked when the chance that any of the run's ``H`` hypotheses reaches its PCE under that null is at most
``cluster.false_links``: the run's expected number of false links.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from sci_lightning.clustering.pairs import THREADS, grid_planes, in_threads, shifted_tail, spectrum, zero_shift_pce
from sci_lightning.clustering.photos import Photo, scene_similarity
from sci_lightning.clustering.settings import ClusterSettings
from sci_lightning.fingerprint.null import NullModel, Tail, fit_null, gaussian_log10_sf
from sci_lightning.fingerprint.significance import any_of

SAME_SCENE = 0.1  # fine-detail correlation from which two photos show one view pixel-aligned (not linked)
COPY = 0.995  # ... and from which they are copies of one photo (linked: one photo, one camera)
DECOY_TAIL = 0.1  # the decoys' top fraction the exponential tail is fitted on
MIN_DECOYS = 10  # exceedances needed to fit it


@dataclass(frozen=True)
class Pair:
    """Photos ``a`` and ``b`` (indices) compared: the best turn of ``b`` onto ``a`` and its PCE."""

    a: int
    b: int
    pce: float
    turn: int  # b turned by turn x 90 degrees (np.rot90) lines up with a
    hypotheses: int  # turns tried


@dataclass
class NullSamples:
    """What the run's comparisons measured of the null (see the module's docstring)."""

    shifted: Tail | None = None
    zero: list[float] = field(default_factory=list)  # decoys' PCE at zero shift
    hypotheses: int = 0  # hypotheses judged (the run's H)

    def add_planes(self, planes: np.ndarray) -> None:
        """Grid planes ``(n, side / 8, side / 8)`` (:func:`~.pairs.shifted_tail`) added to the shifted tail."""
        self.add_tails([shifted_tail(planes)])

    def add_tails(self, tails: Iterable[Tail]) -> None:
        self.shifted = Tail.pooled([self.shifted, *tails])


@dataclass(frozen=True)
class PairNull:
    """The per-hypothesis null of the run: ``log10_sf(pce)`` and what it rests on."""

    shifted: NullModel | None
    zero: NullModel | None
    n_decoys: int
    largest_decoy: float

    def log10_sf(self, pce: float) -> float:
        out = gaussian_log10_sf(pce)
        for model in (self.shifted, self.zero):
            if model is not None:
                out = max(out, model.log10_sf(pce))
        return out

    def log10_pfa(self, pce: float, hypotheses: int) -> float:
        """log10 chance that the best of the run's ``hypotheses`` null comparisons reaches ``pce``."""
        return any_of(self.log10_sf(pce), hypotheses)

    def bar(self, alpha: float, hypotheses: int) -> float:
        """The PCE a comparison needs to be linked (bisection on :meth:`log10_pfa`; ``inf`` when none suffices)."""
        lo, hi, target = 0.0, 1e6, math.log10(alpha)
        if self.log10_pfa(hi, hypotheses) > target:
            return math.inf
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if self.log10_pfa(mid, hypotheses) > target else (lo, mid)
        return hi


def fit_pair_null(samples: NullSamples) -> PairNull:
    """The run's :class:`PairNull` from what its comparisons measured."""
    return PairNull(
        shifted=fit_null(samples.shifted),
        zero=_decoy_tail(samples.zero),
        n_decoys=len(samples.zero),
        largest_decoy=max(samples.zero, default=0.0),
    )


def _decoy_tail(values: list[float]) -> NullModel | None:
    """The decoys' null at zero shift: their empirical tail, and above their top :data:`DECOY_TAIL` an exponential
    (the Gaussian PCE's own shape, xi = 0) with the scale measured there. Why not a fitted shape as for the pooled
    planes: a few hundred or thousand decoys cannot tell a heavier shape at the 1e-7 a bar needs, and a shape fitted
    on so few values swings to heavy tails by chance (500 Gaussian decoys gave xi = 0.47 and a bar of PCE 295)."""
    positive = np.sort([v for v in values if v > 0])[::-1]
    k = int(len(values) * DECOY_TAIL)
    if k < MIN_DECOYS or len(positive) <= k:
        return None
    u = float(positive[k])
    scale = float(np.mean(positive[:k] - u))
    return NullModel(tuple(float(v) for v in positive[: max(k, 1)]), len(values), u, 0.0, max(scale, 1e-9))


def comparable_class(p: Photo) -> tuple[int, tuple[int, int]]:
    """Photos of one class can be compared (:func:`hypotheses_of`): one compared side, one size up to a turn."""
    return p.side, (min(p.size), max(p.size))


def hypotheses_of(a: Photo, b: Photo, turns: bool) -> tuple[int, ...]:
    """The turns of ``b`` that could line it up with ``a`` (none: not comparable)."""
    return turns_between(a.size, b.size, turns) if a.side == b.side else ()


def turns_between(a: tuple[int, int], b: tuple[int, int], turns: bool) -> tuple[int, ...]:
    """:func:`hypotheses_of` for photos of sizes ``a`` and ``b`` (and one compared side)."""
    same, square = a == b, a[0] == a[1]
    if same and square:
        return (0, 1, 2, 3) if turns else (0,)
    if same:
        return (0, 2) if turns else (0,)
    return (1, 3) if turns and a == b[::-1] else ()


def compare_pairs(photos: list[Photo], s: ClusterSettings, seed: int = 0) -> tuple[list[Pair], NullSamples]:
    """Every comparable pair compared in each of its turns, with the null they and their decoys measured.

    Memory stays within ``cluster.memory_gb``: the photos are taken in blocks of rows whose spectra are held
    together, and each later photo's turned spectra are made once per block (n / block extra FFTs per photo,
    against n / 2 comparisons per photo)."""
    samples, pairs = NullSamples(), []
    if not photos:
        return pairs, samples
    side = max(p.side for p in photos)
    block = max(1, int(s.memory_gb * 2**30 // (2 * side * (side // 2 + 1) * 8)))
    with ThreadPoolExecutor(THREADS) as pool:
        for i0 in range(0, len(photos), block):
            rows = range(i0, min(len(photos), i0 + block))
            fa: dict[int, np.ndarray] = {}
            for j in range(i0 + 1, len(photos)):
                want = {i: hs for i in rows if i < j and (hs := hypotheses_of(photos[i], photos[j], s.turns))}
                if not want:
                    continue
                fb = {k: spectrum(photos[j].residual(k)) for k in sorted(set().union(*want.values()))}
                for i in want:
                    if i not in fa:
                        fa[i] = spectrum(photos[i].residual(0))

                def one(i: int, fb=fb, fa=fa, want=want) -> tuple[np.ndarray, list[Tail]]:
                    planes = grid_planes(fa[i], np.stack([fb[k] for k in want[i]]), photos[i].side, workers=1)
                    return zero_shift_pce(planes), [shifted_tail(planes)]

                for i, (values, tails) in zip(want, pool.map(one, want), strict=True):
                    samples.add_tails(tails)
                    best = int(np.argmax(values))
                    pairs.append(Pair(i, j, float(values[best]), want[i][best], len(want[i])))
                    samples.hypotheses += len(want[i])
    pairs.sort(key=lambda p: (p.a, p.b))
    add_decoys(photos, pairs, samples, s.decoys, seed)
    return pairs, samples


def add_decoys(photos: list[Photo], pairs: list[Pair], samples: NullSamples, n: int, seed: int) -> None:
    """``n`` compared pairs again with ``b`` mirrored left-right (in its best turn): the null at zero shift."""
    if not pairs or not n:
        return
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(pairs), size=min(n, len(pairs)), replace=False))

    def one(c: int) -> tuple[float, Tail]:
        p = pairs[c]
        fa = spectrum(photos[p.a].residual(0), workers=1)
        mirrored = spectrum(np.fliplr(photos[p.b].residual(p.turn)), workers=1)
        plane = grid_planes(fa, mirrored[None], photos[p.a].side, workers=1)
        return float(zero_shift_pce(plane)[0]), shifted_tail(plane)

    for value, tail in in_threads(one, chosen):
        samples.add_tails([tail])
        samples.zero.append(value)


def scene_checked(photos: list[Photo], linked: list[Pair]) -> tuple[list[Pair], dict[tuple[int, int], float]]:
    """The links that stand once pairs showing one view pixel-aligned are set aside (their fine detail correlates
    at :data:`SAME_SCENE` or more, short of a copy): there a residual's scene residue links photos of different
    cameras (synthetic photos of one scene by four units of one model: PCE up to 41,000, detail correlation
    0.73-0.92, against at most 0.021 between any two other photos). Returns the links kept and ``{(a, b):
    correlation}`` of the pairs set aside and of the copies."""
    kept, noted = [], {}
    for p in linked:
        similarity = scene_similarity(photos[p.a], photos[p.b], p.turn)
        if similarity >= SAME_SCENE:
            noted[(p.a, p.b)] = similarity
        if similarity < SAME_SCENE or similarity >= COPY:
            kept.append(p)
    return kept, noted
