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
distinct comparison counted once: :mod:`.matching` makes none twice) and is ``cluster.margin`` times its
next best. Rounds repeat until no photo joins.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.cluster.hierarchy
import scipy.spatial.distance

from sci_lightning.clustering.compare import COPY, SAME_SCENE, NullSamples, Pair, fit_pair_null
from sci_lightning.clustering.matching import Memo, match_alone, match_prints
from sci_lightning.clustering.photos import Photo, scene_similarity
from sci_lightning.clustering.settings import ClusterSettings
from sci_lightning.fingerprint.core import fingerprint_from_residuals

log = logging.getLogger(__name__)

SCENE_SAMPLE = 8  # members of each cluster whose views are compared before two clusters merge


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


def links_within(labels: np.ndarray, linked: list[Pair]) -> dict[int, list[Pair]]:
    """The links inside each group, by label (so that :func:`member_turns` reads its group's links only, not every
    link of the run once per group)."""
    out: dict[int, list[Pair]] = {}
    for p in linked:
        if labels[p.a] == labels[p.b]:
            out.setdefault(int(labels[p.a]), []).append(p)
    return out


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
    memo = Memo()  # fingerprints and comparisons of earlier rounds: what did not change is not done again
    bar = math.log10(s.false_links)
    for rnd in range(1, (s.rounds if s.cluster_fingerprints else 0) + 1):
        groups = {int(c): [int(i) for i in np.flatnonzero(labels == c)] for c in np.unique(labels)}
        clusters = {c: m for c, m in groups.items() if len(m) >= 2}
        alone = [m[0] for m in groups.values() if len(m) == 1]
        if not clusters:
            break
        inside = links_within(labels, links)
        turns = {c: member_turns(m, inside.get(c, [])) for c, m in clusters.items()}
        keys = {c: tuple(sorted(turns[c].items())) for c in clusters}
        first, compared, started = memo.next_id, len(memo.done), time.perf_counter()
        prints = {
            c: memo.made(keys[c], lambda t=turns[c]: cluster_fingerprint(photos, t), s.signature_side) for c in clusters
        }
        memo.keep_only(set(keys.values()), set(alone))
        new = {p.id for p in prints.values() if p.id >= first}  # ids only grow: those made this round
        pairs = match_prints(photos, prints, s, samples, memo, new)
        scores = match_alone(photos, alone, prints, s, samples, memo, new) if alone else {}
        null = fit_pair_null(samples)
        survivor = {c: c for c in prints}
        moved = 0
        for pce, c1, c2, k in pairs:  # strongest first: a cluster merged into one already merged follows it
            r1, r2 = _root(survivor, c1), _root(survivor, c2)
            if r1 != r2 and null.log10_pfa(pce, samples.hypotheses) <= bar and not _one_view(photos, turns, c1, c2, k):
                survivor[r2] = r1
                labels[labels == r2] = r1
                links.append(Pair(prints[c1].root, prints[c2].root, pce, k, 0))  # c2's frame turned k onto c1's
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
                links.append(Pair(prints[c].root, i, pce, k, 0))  # turned k, it lines up with the cluster's frame
                moved += 1
        log.info(
            "cluster fingerprints, round %d: %d clusters (%d new), %d alone, %d compared; "
            "%d merges, %d joined so far (%.1f s)",
            rnd,
            len(prints),
            len(new),
            len(alone),
            len(memo.done) - compared,
            merges,
            len(joined),
            time.perf_counter() - started,
        )
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


def _root(parent: Mapping[int, int] | list[int], c: int) -> int:
    """The group ``c`` was merged into (union-find: follow ``parent`` to a group that is its own parent)."""
    while parent[c] != c:
        c = parent[c]
    return c
