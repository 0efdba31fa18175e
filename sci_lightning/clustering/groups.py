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

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import scipy.cluster.hierarchy
import scipy.spatial.distance

from sci_lightning.clustering.compare import COPY, SAME_SCENE, NullSamples, Pair, fit_pair_null, hypotheses_of
from sci_lightning.clustering.pairs import grid_planes, spectrum, zero_shift_pce
from sci_lightning.clustering.photos import Photo, scene_similarity
from sci_lightning.clustering.settings import ClusterSettings
from sci_lightning.fingerprint.core import fingerprint_from_residuals, intensity_weight


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
) -> tuple[np.ndarray, list[Joined], int]:
    """Photos left alone joining the clusters' fingerprints, round by round. Returns the new labels, who joined
    how and the hypotheses compared over every round."""
    labels, links, joined, samples = labels.copy(), list(linked), [], NullSamples()
    for rnd in range(1, (s.rounds if s.cluster_fingerprints else 0) + 1):
        groups = {int(c): [int(i) for i in np.flatnonzero(labels == c)] for c in np.unique(labels)}
        clusters = {c: m for c, m in groups.items() if len(m) >= 2}
        alone = [m[0] for m in groups.values() if len(m) == 1]
        if not clusters or not alone:
            break
        turns = {c: member_turns(m, links) for c, m in clusters.items()}
        prints = {c: (m[0], cluster_fingerprint(photos, turns[c])) for c, m in clusters.items()}
        scores = _match(photos, alone, prints, s, samples)
        null = fit_pair_null(samples)
        moved = 0
        for i, ranked in scores.items():
            if not ranked:
                continue
            (pce, c, k), runner = ranked[0], (ranked[1][0] if len(ranked) > 1 else -math.inf)
            lp = null.log10_pfa(pce, samples.hypotheses)
            # i turned k lines up with the cluster's frame, as member m turned t does: i onto m is k - t
            aligned = any(
                SAME_SCENE <= scene_similarity(photos[m], photos[i], (k - t) % 4) < COPY for m, t in turns[c].items()
            )
            if lp <= math.log10(s.false_links) and pce >= s.margin * max(runner, 1.0) and not aligned:
                labels[i] = c
                joined.append(Joined(i, c, pce, lp, rnd))
                links.append(Pair(prints[c][0], i, pce, k, 0))  # turned k, it lines up with the cluster's frame
                moved += 1
        if not moved:
            break
    return labels, joined, samples.hypotheses


def _match(
    photos: list[Photo], alone: list[int], prints: dict[int, tuple[int, np.ndarray]], s, samples: NullSamples
) -> dict[int, list[tuple[float, int, int]]]:
    """Each lone photo against each fingerprint of its size, in each turn: ``{photo: [(pce, cluster, turn)]}``,
    each cluster's best turn, best first. The photo's residual times its intensity is compared with the
    fingerprint (at zero shift the same product as the residual with the fingerprint times the intensity, so each
    spectrum is made once), and mirrored as the decoy; both go into ``samples``."""
    fk = {c: spectrum(k) for c, (_, k) in prints.items()}
    out = {}
    for i in alone:
        best: dict[int, tuple[float, int, int]] = {}
        mine: dict[int, np.ndarray] = {}  # turn -> spectra of W * I and of it mirrored
        for c, (root, _) in prints.items():
            hs = hypotheses_of(photos[root], photos[i], s.turns)
            for k in hs:
                if k not in mine:
                    w, grey = photos[i].turned(k)
                    wi = w * intensity_weight(grey)
                    mine[k] = np.stack([spectrum(wi), spectrum(np.fliplr(wi))])
                planes = grid_planes(fk[c], mine[k], photos[root].side)
                samples.add_planes(planes)
                value, decoy = (float(v) for v in zero_shift_pce(planes))
                samples.zero.append(decoy)
                if c not in best or value > best[c][0]:
                    best[c] = (value, c, k)
            samples.hypotheses += len(hs)
        out[i] = sorted(best.values(), reverse=True)
    return out
