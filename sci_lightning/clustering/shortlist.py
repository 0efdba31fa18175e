"""The shortlist (``cluster.shortlist_from`` photos or more): which pairs are worth a PCE, from compact signatures.

Comparing every pair costs ~1.5 ms per hypothesis at 512 px, n^2 / 2 pairs and up to four turns each: 10,000
photos would take days. Instead:

1. **Signatures** (:mod:`.signatures`). Each photo's residual square cut to its central
   ``cluster.signature_side`` square, its 8 x 8 JPEG-grid pattern and mean removed and scaled to unit norm
   (float16: 128 KB at 256 px, one for all four turns). The dot product of two signatures is their correlation at
   zero shift, the statistic a pair's PCE is made of, on a quarter of the pixels (PRNU is white: the z-score keeps
   half its size).
2. **Candidates.** Every pair's dot products in every turn, as blocked matrix products (BLAS: ~450 GFLOP/s on
   this 2-core machine against ~0.1 for FFT planes; the four turns for the work of 1.5), each photo keeping its
   ``cluster.candidates`` best partners (a pair is a candidate when it is among either photo's best, in its best
   turn).
3. **Verification.** Each candidate is compared as the exhaustive run compares a pair (:mod:`.pairs`, its best
   turn), on threads of this process (the photos are already here: shipping two residuals to a Dask worker per
   pair costs more than their FFT).
4. **Inside the groups.** Weak links a signature misses matter for average linkage. So pairs inside each
   connected group of links are compared too (in the turn its links imply): all of a small group, 20 random
   partners per photo in a large one; and the linkage counts compared pairs only
   (:func:`~.groups.sparse_average_linkage`: a pair never compared is unknown, not unlinked). The uniform draws
   inside a group are what keep two bodies of one model, joined in one group by a few links, apart: most of their
   compared pairs are then drawn, not shortlisted, and unlinked.

Every hypothesis screened counts for the bar (``samples.hypotheses``), and the null is measured on
:data:`NULL_PAIRS` pairs drawn at random and ``cluster.decoys`` of them mirrored (a sample of the population the
exhaustive run measures it on), so a pair is judged as in the exhaustive run: only which pairs get a PCE differs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from sci_lightning.clustering.compare import (
    NullSamples,
    Pair,
    add_decoys,
    comparable_class,
    fit_pair_null,
    hypotheses_of,
    scene_checked,
)
from sci_lightning.clustering.groups import links_within, member_turns
from sci_lightning.clustering.pairs import Kept, grid_planes, in_threads, spectrum, zero_shift_pce
from sci_lightning.clustering.photos import Photo
from sci_lightning.clustering.settings import ClusterSettings
from sci_lightning.clustering.signatures import row_signature, signature, turn_exact, turn_scores

NULL_PAIRS = 20_000  # pairs drawn at random for the null (their planes: ~8e7 positions at 512 px)
INSIDE = 20  # partners compared for each photo of a large connected group (all pairs of a smaller one)


def _classes(photos: list[Photo]) -> dict[tuple, list[int]]:
    """Photos that could be compared with one another (:func:`~.compare.comparable_class`)."""
    out: dict[tuple, list[int]] = {}
    for i, p in enumerate(photos):
        out.setdefault(comparable_class(p), []).append(i)
    return out


class _Best:
    """Each photo's ``k`` best (z, pair) so far."""

    def __init__(self, n: int, k: int) -> None:
        self.z = np.full((n, k), -np.inf, np.float32)
        self.pair = np.full((n, k, 3), -1, np.int64)  # (a, b, turn)

    def offer(self, rows: np.ndarray, z: np.ndarray, a: np.ndarray, b: np.ndarray, turn: int) -> None:
        """Row ``rows[r]`` is offered ``z[r, c]`` for pair ``(a[r, c], b[r, c], turn)``."""
        k = self.z.shape[1]
        top = np.argpartition(-z, min(k, z.shape[1]) - 1, axis=1)[:, :k] if z.shape[1] > k else np.indices(z.shape)[1]
        zz = np.take_along_axis(z, top, axis=1)
        pairs = np.stack([np.take_along_axis(a, top, 1), np.take_along_axis(b, top, 1), np.full_like(top, turn)], -1)
        allz = np.concatenate([self.z[rows], zz], axis=1)
        allp = np.concatenate([self.pair[rows], pairs], axis=1)
        keep = np.argpartition(-allz, k - 1, axis=1)[:, :k]
        self.z[rows] = np.take_along_axis(allz, keep, 1)
        self.pair[rows] = np.take_along_axis(allp, keep[..., None], 1)

    def pairs(self) -> dict[tuple[int, int], tuple[float, int]]:
        """``{(a, b): (z, turn)}``, a pair's best turn where two turns of it were kept."""
        out: dict[tuple[int, int], tuple[float, int]] = {}
        for z, (a, b, k) in zip(self.z[np.isfinite(self.z)], self.pair[np.isfinite(self.z)], strict=True):
            if (int(a), int(b)) not in out or z > out[(int(a), int(b))][0]:
                out[(int(a), int(b))] = (float(z), int(k))
        return out


def candidates(photos: list[Photo], s: ClusterSettings) -> tuple[set[tuple[int, int, int]], int]:
    """Candidate pairs ``(a, b, turn)`` (``a < b``; ``b`` turned ``turn`` lines up with ``a``) and the number of
    hypotheses screened (every comparable pair in each of its turns)."""
    found: dict[tuple[int, int], tuple[float, int]] = {}
    screened = 0
    for members in _classes(photos).values():
        if len(members) < 2:
            continue
        idx = np.asarray(members)
        first = photos[members[0]]
        square = first.size[0] == first.size[1]
        upright = np.array([photos[i].size == first.size for i in members])
        turns = [0, 1, 2, 3] if s.turns else [0]
        exact = turn_exact(first.size, first.side)
        sig = np.stack([signature(photos[i].residual, s.signature_side, exact) for i in members])
        best = _Best(len(members), s.candidates)
        d = sig.shape[-1]
        block = max(1, int(s.memory_gb * 2**30 // (3 * d * 4 * 2)))  # two float32 blocks and their products
        for r0 in range(0, len(members), block):
            rows = np.arange(r0, min(len(members), r0 + block))
            a = np.stack([row_signature(v) for v in sig[rows]]).astype(np.float32)
            for c0 in range(r0, len(members), block):
                cols = np.arange(c0, min(len(members), c0 + block))
                later = cols[None, :] > rows[:, None]
                same = upright[rows][:, None] == upright[cols][None, :]
                ga, gb = np.broadcast_arrays(idx[rows][:, None], idx[cols][None, :])
                z = turn_scores(a, sig[cols]) * np.float32(math.sqrt(d))
                for k in turns:  # the turns hypotheses_of allows each pair
                    valid = later if square else later & (same if k % 2 == 0 else ~same)
                    if not valid.any():
                        continue
                    zk = np.where(valid, z[k], -np.inf)
                    screened += int(valid.sum())
                    best.offer(rows, zk, ga, gb, k)
                    best.offer(cols, zk.T, ga.T, gb.T, k)
        found |= best.pairs()  # classes share no photo
    return {(a, b, k) for (a, b), (_, k) in found.items()}, screened


def _local_order(by_a: dict[int, list[tuple[int, int]]], n: int) -> list[int]:
    """The photos of ``by_a`` in breadth-first order over the pairs wanted: a photo's partners come soon after it,
    so their spectra are still kept (:class:`~.pairs.Kept`) whatever order the photos were read in."""
    pairs = [(a, b) for a, partners in by_a.items() for b, _ in partners]
    graph = scipy.sparse.coo_matrix(([1] * len(pairs), tuple(zip(*pairs, strict=True))), (n, n)).tocsr()
    seen = np.zeros(n, bool)
    order = []
    for start in sorted(by_a):
        if not seen[start]:
            reached = scipy.sparse.csgraph.breadth_first_order(graph, start, directed=False, return_predecessors=False)
            seen[reached] = True
            order += [int(i) for i in reached if int(i) in by_a]
    return order


def verify(
    photos: list[Photo],
    wanted: Iterable[tuple[int, int, int]],
    s: ClusterSettings,
    samples: NullSamples | None = None,
) -> list[Pair]:
    """Each wanted ``(a, b, turn)`` compared at zero shift (:func:`~.pairs.grid_planes`), its planes added to
    ``samples`` where given (their hypotheses were counted when screened). A photo's spectrum in a turn is made
    once while it stays among the ``cluster.memory_gb`` of those kept (a camera's photos are compared together:
    :func:`_local_order`); pairs come back in the order of ``wanted`` sorted."""
    by_a: dict[int, list[tuple[int, int]]] = {}
    for a, b, k in sorted(set(wanted)):
        by_a.setdefault(a, []).append((b, k))
    if not by_a:
        return []
    spectra = Kept(s.memory_gb * 2**30)  # by (photo, turn)

    def spectrum_of(i: int, k: int) -> np.ndarray:
        return spectra.get((i, k), lambda: spectrum(photos[i].residual(k), workers=1))

    def one(a: int) -> list[tuple[Pair, np.ndarray]]:
        fa = spectrum_of(a, 0)
        out = []
        for b, k in by_a[a]:
            plane = grid_planes(fa, spectrum_of(b, k)[None], photos[a].side, workers=1)
            hs = hypotheses_of(photos[a], photos[b], s.turns)
            out.append((Pair(a, b, float(zero_shift_pce(plane)[0]), k, len(hs)), plane))
        return out

    pairs = []
    for got in in_threads(one, _local_order(by_a, len(photos))):
        pairs += [pair for pair, _ in got]
        if samples is not None:
            samples.add_planes(np.concatenate([plane for _, plane in got]))
    return sorted(pairs, key=lambda p: (p.a, p.b, p.turn))


def random_pairs(photos: list[Photo], s: ClusterSettings, n: int, seed: int) -> set[tuple[int, int, int]]:
    """``n`` comparable pairs drawn at random, each in a random turn of its own: compared beside the candidates,
    mostly pairs of different cameras, so the null is measured on the kind of pairs the exhaustive run measures it
    on (the candidates alone are the pairs most alike)."""
    rng = np.random.default_rng(seed)
    classes = [m for m in _classes(photos).values() if len(m) >= 2]
    if not classes or not n:
        return set()
    weight = np.array([len(m) * (len(m) - 1) for m in classes], np.float64)
    out: set[tuple[int, int, int]] = set()
    for c in rng.choice(len(classes), size=n, p=weight / weight.sum()):
        a, b = sorted(int(v) for v in rng.choice(classes[c], size=2, replace=False))
        if hs := hypotheses_of(photos[a], photos[b], s.turns):
            out.add((a, b, int(rng.choice(hs))))
    return out


def _one_turn_each(pairs: set[tuple[int, int, int]]) -> set[tuple[int, int, int]]:
    return {(a, b, k) for (a, b), k in {(a, b): k for a, b, k in sorted(pairs)}.items()}


def shortlist_pairs(photos: list[Photo], s: ClusterSettings, seed: int = 0) -> tuple[list[Pair], NullSamples]:
    """The pairs worth comparing (the module's steps), compared, with the null they and their decoys measured:
    what :func:`~.compare.compare_pairs` returns for every pair."""
    wanted, screened = candidates(photos, s)
    samples = NullSamples(hypotheses=screened)
    # the null is measured on pairs drawn at random (and their decoys), the population the exhaustive run measures
    # it on: the shortlisted pairs are the most alike, and their planes at other shifts are not a null's
    drawn = verify(photos, _one_turn_each(random_pairs(photos, s, NULL_PAIRS, seed)), s, samples)
    add_decoys(photos, drawn, samples, s.decoys, seed)
    shortlisted = {(a, b) for a, b, _ in wanted}
    pairs = verify(photos, wanted, s) + [p for p in drawn if (p.a, p.b) not in shortlisted]
    null, bar = fit_pair_null(samples), math.log10(s.false_links)
    linked, _ = scene_checked(photos, [p for p in pairs if null.log10_pfa(p.pce, screened) <= bar])
    done = {(p.a, p.b) for p in pairs}
    pairs += verify(photos, inside_groups(photos, linked, done, s, seed), s)
    pairs.sort(key=lambda p: (p.a, p.b))
    return pairs, samples


def inside_groups(
    photos: list[Photo], linked: list[Pair], done: set[tuple[int, int]], s: ClusterSettings, seed: int = 0
) -> list[tuple[int, int, int]]:
    """Pairs inside each connected group of ``linked`` not compared yet (``done``), in the turn the group's links
    imply (b turned t_b onto the group's first member, a turned t_a: b turned t_b - t_a lines up with a): every
    pair of a group of up to ``2 * INSIDE + 1`` photos, else :data:`INSIDE` partners drawn at random for each photo
    (enough for the linkage's fractions, which count compared pairs only)."""
    if not linked:
        return []
    rng = np.random.default_rng(seed)
    n = len(photos)
    graph = scipy.sparse.coo_matrix(([1] * len(linked), ([p.a for p in linked], [p.b for p in linked])), (n, n))
    _, label = scipy.sparse.csgraph.connected_components(graph, directed=False)
    out = set()
    inside = links_within(label, linked)
    for c in np.unique(label[[p.a for p in linked]]):
        members = [int(i) for i in np.flatnonzero(label == c)]
        turns = member_turns(members, inside[int(c)])
        if len(members) <= 2 * INSIDE + 1:
            wanted = [(a, b) for x, a in enumerate(members) for b in members[x + 1 :]]
        else:
            wanted = [tuple(sorted((a, int(b)))) for a in members for b in rng.choice(members, INSIDE) if b != a]
        for a, b in wanted:
            k = (turns[b] - turns[a]) % 4
            if (a, b) not in done and k in hypotheses_of(photos[a], photos[b], s.turns):
                out.add((a, b, k))
    return sorted(out)
