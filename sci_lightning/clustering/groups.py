"""From linked pairs to groups of photos, then cluster fingerprints for the photos left alone.

**Linkage.** Average linkage (SciPy) on the distance 0 for a linked pair and 1 otherwise (pairs not compared
count as not linked): two groups merge while at least ``cluster.min_link_fraction`` of the pairs between them are
linked. Why not single linkage: one link is enough there, and two bodies of one model share non-unique artefacts
that can link a few of their photos (on the hidden six-Nikon set the largest PCE between bodies was 51); a merge
here needs many links. A camera whose photos link weakly may come out in a few groups, never merged with another.

**Cluster fingerprints.** Each group of two or more becomes a fingerprint (its members' residuals turned into one
frame and averaged as an enrolment does, :func:`~sci_lightning.fingerprint.core.fingerprint_from_residuals`);
every photo left alone is compared with each fingerprint of its size in each turn, and joins the best one when
that comparison clears the run's bar (the null measured on those comparisons and their mirrored decoys, every
round's comparisons counted) and is ``cluster.margin`` times its next best. Rounds repeat until no photo joins.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.cluster.hierarchy
import scipy.spatial.distance

from sci_lightning.clustering.compare import COPY, SAME_SCENE, NullSamples, Pair, fit_pair_null, hypotheses_of
from sci_lightning.clustering.pairs import grid_planes, in_threads, shifted_tail, signature, spectrum, zero_shift_pce
from sci_lightning.clustering.photos import Photo, scene_similarity
from sci_lightning.clustering.settings import ClusterSettings
from sci_lightning.fingerprint.core import fingerprint_from_residuals, intensity_weight

SCENE_SAMPLE = 8  # members of each cluster whose views are compared before two clusters merge
SHORTLIST_CLUSTERS = 3  # with the shortlist, the clusters a lone photo is compared with: its best by signature


@dataclass(frozen=True)
class Joined:
    """A photo that joined a cluster through the cluster's fingerprint."""

    photo: int
    cluster: int
    pce: float
    log10_pfa: float
    round: int


def average_linkage(n: int, linked: list[Pair], min_fraction: float) -> np.ndarray:
    """Group labels (0..) of ``n`` photos from their linked pairs (see the module's docstring)."""
    if n < 2:
        return np.zeros(n, np.int64)
    dist = np.ones((n, n))
    np.fill_diagonal(dist, 0)
    for p in linked:
        dist[p.a, p.b] = dist[p.b, p.a] = 0.0
    tree = scipy.cluster.hierarchy.linkage(scipy.spatial.distance.squareform(dist, checks=False), method="average")
    return scipy.cluster.hierarchy.fcluster(tree, t=1.0 - min_fraction + 1e-9, criterion="distance") - 1


def sparse_average_linkage(n: int, compared: list[Pair], linked: list[Pair], min_fraction: float) -> np.ndarray:
    """Average linkage over the pairs compared only (the shortlist's: a pair not compared is unknown, not
    unlinked): two groups merge, closest first, while at least ``min_fraction`` of the compared pairs between them
    are linked. With every pair compared it is :func:`average_linkage`. Written here because SciPy's linkage
    needs every distance, and n^2 of them is what the shortlist exists to avoid."""
    on = {(p.a, p.b) for p in linked}
    between: dict[int, dict[int, list[int]]] = {i: {} for i in range(n)}  # group -> group -> [linked, compared]
    for p in compared:
        if p.a != p.b:
            for x, y in ((p.a, p.b), (p.b, p.a)):
                cell = between[x].setdefault(y, [0, 0])
                cell[0] += (p.a, p.b) in on
                cell[1] += 1
    heap = [(-lc[0] / lc[1], x, y) for x in between for y, lc in between[x].items() if x < y and lc[0]]
    heapq.heapify(heap)
    parent = list(range(n))
    while heap:
        score, x, y = heapq.heappop(heap)
        if parent[x] != x or parent[y] != y or y not in between[x]:
            continue  # a group merged since, or a score that changed (pushed again below)
        lc = between[x][y]
        if -score != lc[0] / lc[1]:
            continue
        if -score < min_fraction:
            break
        parent[y] = x  # y joins x: its pairs with every other group become x's
        for z, (l2, c2) in between.pop(y).items():
            del between[z][y]
            if z == x:
                continue
            cell = between[x].setdefault(z, [0, 0])
            cell[0], cell[1] = cell[0] + l2, cell[1] + c2
            between[z][x] = cell
            if cell[0]:
                heapq.heappush(heap, (-cell[0] / cell[1], min(x, z), max(x, z)))
    roots = [_root(parent, i) for i in range(n)]
    _, labels = np.unique(roots, return_inverse=True)
    return labels.astype(np.int64)


def member_turns(members: list[int], linked: list[Pair]) -> dict[int, int]:
    """Each member's turn onto the first member's frame, along the links within the group (breadth first)."""
    inside = set(members)
    edges: dict[int, list[tuple[int, int]]] = {m: [] for m in members}
    for p in linked:
        if p.a in inside and p.b in inside:
            edges[p.a].append((p.b, p.turn))  # b turned p.turn lines up with a
            edges[p.b].append((p.a, -p.turn))
    turns, todo = {members[0]: 0}, deque([members[0]])
    while todo:
        x = todo.popleft()
        for y, k in edges[x]:
            if y not in turns:
                turns[y] = (turns[x] + k) % 4
                todo.append(y)
    return turns


def cluster_fingerprint(photos: list[Photo], turns: dict[int, int]) -> np.ndarray:
    """The members' residual squares in one frame, averaged (a fingerprint of the group's sensor)."""
    return fingerprint_from_residuals(photos[m].turned(k) for m, k in turns.items())


def fingerprint_rounds(
    photos: list[Photo], labels: np.ndarray, linked: list[Pair], s: ClusterSettings
) -> tuple[np.ndarray, list[Joined], int, int]:
    """Clusters merged whose fingerprints match, and photos left alone joining the clusters' fingerprints, round
    by round. Returns the new labels, who joined how, the hypotheses compared over every round and the merges."""
    labels, links, joined, samples, merges = labels.copy(), list(linked), [], NullSamples(), 0
    made: dict[tuple, np.ndarray] = {}  # fingerprints by members and turns: a cluster unchanged is not averaged again
    bar = math.log10(s.false_links)
    for rnd in range(1, (s.rounds if s.cluster_fingerprints else 0) + 1):
        groups = {int(c): [int(i) for i in np.flatnonzero(labels == c)] for c in np.unique(labels)}
        clusters = {c: m for c, m in groups.items() if len(m) >= 2}
        alone = [m[0] for m in groups.values() if len(m) == 1]
        if not clusters:
            break
        turns = {c: member_turns(m, links) for c, m in clusters.items()}
        prints = {c: (m[0], _made(made, photos, turns[c])) for c, m in clusters.items()}
        pairs = _match_prints(photos, prints, s, samples)
        scores = _match(photos, alone, prints, s, samples) if alone else {}
        null = fit_pair_null(samples)
        survivor = {c: c for c in prints}
        moved = 0
        for pce, c1, c2, k in pairs:  # strongest first: a cluster merged into one already merged follows it
            r1, r2 = _root(survivor, c1), _root(survivor, c2)
            if r1 != r2 and null.log10_pfa(pce, samples.hypotheses) <= bar and not _one_view(photos, turns, c1, c2, k):
                survivor[r2] = r1
                labels[labels == r2] = r1
                links.append(Pair(prints[c1][0], prints[c2][0], pce, k, 0))  # c2's frame turned k onto c1's
                moved, merges = moved + 1, merges + 1
        for i, ranked in scores.items():
            if not ranked:
                continue
            (pce, c, k), runner = ranked[0], (ranked[1][0] if len(ranked) > 1 else -math.inf)
            lp = null.log10_pfa(pce, samples.hypotheses)
            # i turned k lines up with the cluster's frame, as member m turned t does: i onto m is k - t
            aligned = any(_aligned(photos[m], photos[i], (k - t) % 4) for m, t in turns[c].items())
            if lp <= bar and pce >= s.margin * max(runner, 1.0) and not aligned:
                labels[i] = _root(survivor, c)
                joined.append(Joined(i, c, pce, lp, rnd))
                links.append(Pair(prints[c][0], i, pce, k, 0))  # turned k, it lines up with the cluster's frame
                moved += 1
        if not moved:
            break
    return labels, joined, samples.hypotheses, merges


def _one_view(photos: list[Photo], turns: dict[int, dict[int, int]], c1: int, c2: int, k: int) -> bool:
    """Whether members of the two clusters (up to :data:`SCENE_SAMPLE` of each) show one view pixel-aligned: then
    the fingerprints' match can be the scene's residue, which an average keeps (four units photographing one view
    gave cluster fingerprints that matched across units), so the clusters are not merged."""
    m1, m2 = list(turns[c1].items())[:SCENE_SAMPLE], list(turns[c2].items())[:SCENE_SAMPLE]
    # m2 turned t2 lines up with c2's frame, which turned k lines up with c1's: m2 onto m1 is t2 + k - t1
    return any(_aligned(photos[a], photos[b], (t2 + k - t1) % 4) for a, t1 in m1 for b, t2 in m2)


def _aligned(a: Photo, b: Photo, turn: int) -> bool:
    """Whether ``b`` turned ``turn`` shows ``a``'s view pixel-aligned, short of being a copy of it."""
    return SAME_SCENE <= scene_similarity(a, b, turn) < COPY


def _made(made: dict[tuple, np.ndarray], photos: list[Photo], turns: dict[int, int]) -> np.ndarray:
    """The cluster's fingerprint, averaged once for each set of members (and their turns)."""
    key = tuple(sorted(turns.items()))
    if key not in made:
        made[key] = cluster_fingerprint(photos, turns)
    return made[key]


def _root(parent: Mapping[int, int] | list[int], c: int) -> int:
    """The group ``c`` was merged into (union-find: follow ``parent`` to a group that is its own parent)."""
    while parent[c] != c:
        c = parent[c]
    return c


def _match_prints(
    photos: list[Photo], prints: dict[int, tuple[int, np.ndarray]], s: ClusterSettings, samples: NullSamples
) -> list[tuple[float, int, int, int]]:
    """Every two clusters' fingerprints compared in each turn their frames allow (with the shortlist: each
    cluster with its :data:`SHORTLIST_CLUSTERS` best by signature), the second mirrored as the decoy:
    ``[(pce, c1, c2, turn)]``, the best turn of each pair, strongest first. A camera whose photos link weakly can
    come out of the linkage in a few clusters; their fingerprints, each an average, match where its photos did
    not (a cluster fingerprint is cleaned of the row / column and periodic patterns cameras of a model share)."""
    names = sorted(prints)
    near = _near(prints, s) if len(photos) >= s.shortlist_from else None
    fk = {c: spectrum(prints[c][1]) for c in names}
    todo = []
    for x, c1 in enumerate(names):
        for c2 in names[x + 1 :]:
            hs = hypotheses_of(photos[prints[c1][0]], photos[prints[c2][0]], s.turns)
            samples.hypotheses += len(hs)
            if hs and (near is None or c2 in near[c1] or c1 in near[c2]):
                todo.append((c1, c2, hs))

    def one(job: tuple[int, int, tuple[int, ...]]) -> tuple[tuple[float, int, int, int], list, list[float]]:
        c1, c2, hs = job
        best, tails, zeros = (-math.inf, c1, c2, 0), [], []
        for k in hs:
            turned = np.rot90(prints[c2][1], k)
            value, decoy = _with_decoy(fk[c1], _mirrored_pair(turned), len(turned), tails)
            zeros.append(decoy)
            if value > best[0]:
                best = (value, c1, c2, k)
        return best, tails, zeros

    out = []
    for best, tails, zeros in in_threads(one, todo):
        samples.add_tails(tails)
        samples.zero += zeros
        out.append(best)
    return sorted(out, reverse=True)


def _near(prints: dict[int, tuple[int, np.ndarray]], s: ClusterSettings) -> dict[int, set[int]]:
    """Each cluster's :data:`SHORTLIST_CLUSTERS` nearest clusters by the correlation of their fingerprints'
    signatures in any turn (frames of another size never near)."""
    names = sorted(prints)
    upright = [signature(prints[c][1], s.signature_side).astype(np.float32) for c in names]
    score = np.full((len(names), len(names)), -np.inf, np.float32)
    same: dict[int, list[int]] = {}
    for x, v in enumerate(upright):
        same.setdefault(len(v), []).append(x)
    for k in range(4) if s.turns else (0,):
        turned = [signature(np.rot90(prints[c][1], k), s.signature_side).astype(np.float32) for c in names]
        for idx in same.values():
            block = np.stack([upright[x] for x in idx]) @ np.stack([turned[x] for x in idx]).T
            score[np.ix_(idx, idx)] = np.maximum(score[np.ix_(idx, idx)], block)
    np.fill_diagonal(score, -np.inf)
    return {
        c: {names[y] for y in np.argsort(-score[x])[:SHORTLIST_CLUSTERS] if np.isfinite(score[x, y])}
        for x, c in enumerate(names)
    }


def _match(
    photos: list[Photo], alone: list[int], prints: dict[int, tuple[int, np.ndarray]], s, samples: NullSamples
) -> dict[int, list[tuple[float, int, int]]]:
    """Each lone photo against each fingerprint of its size, in each turn: ``{photo: [(pce, cluster, turn)]}``,
    each cluster's best turn, best first. The photo's residual times its intensity is compared with the
    fingerprint (at zero shift the same product as the residual with the fingerprint times the intensity, so each
    spectrum is made once), and mirrored as the decoy; both go into ``samples``."""
    fk = {c: spectrum(k) for c, (_, k) in prints.items()}
    ranked = _by_signature(photos, alone, prints, s) if len(photos) >= s.shortlist_from else None

    def one(i: int) -> tuple[list[tuple[float, int, int]], list, list[float], int]:
        best: dict[int, tuple[float, int, int]] = {}
        mine: dict[int, np.ndarray] = {}  # turn -> spectra of W * I and of it mirrored
        tails, zeros, n = [], [], 0
        for c, (root, _) in prints.items():
            hs = hypotheses_of(photos[root], photos[i], s.turns)
            n += len(hs)  # screened, compared or not
            if ranked is not None and c not in ranked[i]:
                continue
            for k in hs:
                if k not in mine:
                    mine[k] = _mirrored_pair(_weighted(photos[i], k))
                value, decoy = _with_decoy(fk[c], mine[k], photos[root].side, tails)
                zeros.append(decoy)
                if c not in best or value > best[c][0]:
                    best[c] = (value, c, k)
        return sorted(best.values(), reverse=True), tails, zeros, n

    out = {}
    for i, (got, tails, zeros, n) in zip(alone, in_threads(one, alone), strict=True):
        samples.add_tails(tails)
        samples.zero += zeros
        samples.hypotheses += n
        out[i] = got
    return out


def _mirrored_pair(x: np.ndarray) -> np.ndarray:
    """The spectra of ``x`` and of ``x`` mirrored left-right (its decoy), stacked."""
    return np.stack([spectrum(x, workers=1), spectrum(np.fliplr(x), workers=1)])


def _with_decoy(fk: np.ndarray, both: np.ndarray, side: int, tails: list) -> tuple[float, float]:
    """Zero-shift PCE of the fingerprint spectrum ``fk`` against ``both`` (:func:`_mirrored_pair`): the
    comparison's and its decoy's; their planes' shifted tails are appended to ``tails``."""
    planes = grid_planes(fk, both, side, workers=1)
    tails += [shifted_tail(p) for p in planes]
    value, decoy = (float(v) for v in zero_shift_pce(planes))
    return value, decoy


def _weighted(photo: Photo, k: int) -> np.ndarray:
    w, grey = photo.turned(k)
    return w * intensity_weight(grey)


def _by_signature(
    photos: list[Photo], alone: list[int], prints: dict[int, tuple[int, np.ndarray]], s: ClusterSettings
) -> dict[int, set[int]]:
    """With the shortlist (:mod:`.shortlist`): each lone photo's :data:`SHORTLIST_CLUSTERS` best clusters by the
    correlation of its signature (``W * I``, each turn) with the fingerprint's, over every cluster of its size."""
    names = list(prints)
    by_length: dict[int, list[int]] = {}  # clusters by their signature's length (frames of one side)
    sigs = [signature(k, s.signature_side).astype(np.float32) for _, k in prints.values()]
    for n, v in enumerate(sigs):
        by_length.setdefault(len(v), []).append(n)
    stacked = {d: np.stack([sigs[n] for n in idx]) for d, idx in by_length.items()}
    out = {}
    for i in alone:
        score = np.full(len(names), -np.inf, np.float32)
        allowed = [hypotheses_of(photos[prints[c][0]], photos[i], s.turns) for c in names]
        for k in sorted({k for hs in allowed for k in hs}):
            v = signature(_weighted(photos[i], k), s.signature_side).astype(np.float32)
            idx = by_length.get(len(v), [])
            if not idx:
                continue
            ok = np.array([k in allowed[n] for n in idx])
            score[idx] = np.where(ok, np.maximum(score[idx], stacked[len(v)] @ v), score[idx])
        out[i] = {names[n] for n in np.argsort(-score)[:SHORTLIST_CLUSTERS] if np.isfinite(score[n])}
    return out
