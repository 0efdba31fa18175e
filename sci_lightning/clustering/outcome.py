"""The clustering's result, typed: one row per photo, one per pair compared, one summary per cluster, and the null
the links were judged against. :mod:`.report` writes them; the desk and tests read these objects, not the files."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sci_lightning.clustering.compare import COPY, Pair, PairNull
from sci_lightning.clustering.groups import Joined
from sci_lightning.clustering.photos import THIN_SIGNAL, Photo
from sci_lightning.clustering.settings import ClusterSettings

TURN_NAMES = {0: "as stored", 1: "turned 90", 2: "turned 180", 3: "turned 270"}


@dataclass(frozen=True)
class PhotoRow:
    """A line of ``clusters.csv`` (and the reason a photo is alone, for the report and ``left_alone.csv``)."""

    path: str
    cluster: int | None  # None: joins no one
    size_px: str  # W x H
    n_in_cluster: int
    links: int  # linked partners in its cluster (a join through the cluster's fingerprint counts one)
    confidence: float  # -log10 P_FA of its strongest link into its cluster (0 when alone)
    reason: str = ""  # why it is alone


@dataclass(frozen=True)
class PairRow:
    """A line of ``pairs.csv``: two photos compared (or a photo and a cluster's fingerprint)."""

    a: str
    b: str
    pce: float
    geometry: str
    log10_p_false_alarm: float
    linked: bool


@dataclass(frozen=True)
class ClusterSummary:
    id: int
    members: tuple[str, ...]
    strongest: PairRow | None
    weakest: PairRow | None


@dataclass(frozen=True)
class Clustering:
    rows: tuple[PhotoRow, ...]
    pairs: tuple[PairRow, ...]
    clusters: tuple[ClusterSummary, ...]
    left: dict[str, str]  # unreadable or too small: path -> reason
    linked: tuple[PairRow, ...]
    null: PairNull
    hypotheses: int
    bar_pce: float  # the PCE a pair needed
    fp_hypotheses: int
    settings: ClusterSettings
    seconds: dict[str, float] = field(default_factory=dict)
    merges: int = 0  # clusters merged because their fingerprints matched
    shortlisted: bool = False  # only the pairs the signatures shortlisted were compared (:mod:`.shortlist`)

    @property
    def n_photos(self) -> int:
        return len(self.rows)

    @property
    def n_clusters(self) -> int:
        return len(self.clusters)

    @property
    def n_alone(self) -> int:
        return sum(r.cluster is None for r in self.rows)


def _pair_row(photos: list[Photo], p: Pair, lp: float, bar: float, scene: float | None) -> PairRow:
    geometry, linked = TURN_NAMES[p.turn], lp <= bar
    if scene is not None and scene >= COPY:
        geometry += f"; copies of one photo (detail correlation {scene:.3f})"
    elif scene is not None:
        geometry, linked = geometry + f"; one view pixel-aligned (detail correlation {scene:.3f}): not linked", False
    return PairRow(photos[p.a].path, photos[p.b].path, round(p.pce, 2), geometry, round(lp, 2), linked)


def build_outcome(
    *,
    photos: list[Photo],
    left: dict[str, str],
    pairs: list[Pair],
    log10_pfas: list[float],
    scenes: dict[tuple[int, int], float],
    labels: np.ndarray,
    joined: list[Joined],
    null: PairNull,
    hypotheses: int,
    fp_hypotheses: int,
    settings: ClusterSettings,
    seconds: dict[str, float],
    merges: int = 0,
    shortlisted: bool = False,
) -> Clustering:
    """The typed result from the photos' final labels and the evidence that put them there."""
    bar = math.log10(settings.false_links)
    bar_pce = null.bar(settings.false_links, max(hypotheses, 1))
    rows_of_pairs = [
        _pair_row(photos, p, lp, bar, scenes.get((p.a, p.b))) for p, lp in zip(pairs, log10_pfas, strict=True)
    ]
    sizes = {int(c): int((labels == c).sum()) for c in np.unique(labels)} if len(labels) else {}
    order = sorted((c for c, n in sizes.items() if n >= 2), key=lambda c: (-sizes[c], int(np.argmax(labels == c))))
    ids = {c: i + 1 for i, c in enumerate(order)}
    evidence: dict[int, list[tuple[float, PairRow]]] = {i: [] for i in range(len(photos))}
    mine: dict[int, list[PairRow]] = {i: [] for i in range(len(photos))}  # each photo's pairs (one pass, not n)
    inside: dict[int, list[PairRow]] = {}  # each group's links
    for p, row in zip(pairs, rows_of_pairs, strict=True):
        mine[p.a].append(row)
        mine[p.b].append(row)
        if row.linked and labels[p.a] == labels[p.b]:
            evidence[p.a].append((row.log10_p_false_alarm, row))
            evidence[p.b].append((row.log10_p_false_alarm, row))
            inside.setdefault(int(labels[p.a]), []).append(row)
    for j in joined:
        name = f"cluster {ids.get(int(labels[j.photo]))} fingerprint"
        row = PairRow(photos[j.photo].path, name, round(j.pce, 2), "", round(j.log10_pfa, 2), True)
        evidence[j.photo].append((j.log10_pfa, row))
    rows = []
    for i, p in enumerate(photos):
        c = ids.get(int(labels[i])) if len(labels) else None
        best = min((e[0] for e in evidence[i]), default=0.0)
        rows.append(
            PhotoRow(
                p.path,
                c,
                f"{p.size[1]}x{p.size[0]}",
                sizes[int(labels[i])] if c else 1,
                len(evidence[i]) if c else 0,
                round(-best, 2) if c else 0.0,
                "" if c else _why_alone(photos[i], mine[i], bar_pce),
            )
        )
    rows += [PhotoRow(path, None, "", 1, 0, 0.0, reason) for path, reason in left.items()]
    clusters = []
    for c in order:
        members = tuple(photos[i].path for i in np.flatnonzero(labels == c))
        links = sorted(inside.get(int(c), []), key=lambda r: r.pce, reverse=True)
        clusters.append(ClusterSummary(ids[c], members, links[0] if links else None, links[-1] if links else None))
    return Clustering(
        rows=tuple(rows),
        pairs=tuple(rows_of_pairs),
        clusters=tuple(clusters),
        left=left,
        linked=tuple(r for r in rows_of_pairs if r.linked),
        null=null,
        hypotheses=hypotheses,
        bar_pce=bar_pce,
        fp_hypotheses=fp_hypotheses,
        settings=settings,
        seconds=seconds,
        merges=merges,
        shortlisted=shortlisted,
    )


def _why_alone(photo: Photo, mine: list[PairRow], bar_pce: float) -> str:
    """Why a photo joined no one, from its own pairs (``mine``)."""
    if photo.thin > THIN_SIGNAL:
        return f"too dark or saturated: {photo.thin:.0%} of its pixels carry little PRNU"
    if not mine:
        return "no other photo of its size (or turned size) to compare with"
    if any(r.linked for r in mine):
        n = sum(r.linked for r in mine)
        return f"linked to {n} photo(s), too few of one group's to join it (cluster.min_link_fraction)"
    aligned = [r for r in mine if "pixel-aligned" in r.geometry]
    if aligned:
        return (
            f"{len(aligned)} of its partners show its view pixel-aligned (a tripod series?): "
            "their correlation cannot be told from the scene's, so they were not linked"
        )
    best = max(mine, key=lambda r: r.pce)
    return f"no partner above the bar: best PCE {best.pce:.4g} (needed {bar_pce:.4g})"
