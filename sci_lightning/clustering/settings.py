"""The ``cluster`` config group: ``python library.py action=cluster images=DIR``."""

from __future__ import annotations

from dataclasses import dataclass

from sci_lightning.errors import require
from sci_lightning.settings import schema_of, setting


@dataclass(frozen=True)
class ClusterSettings:
    """How photos are compared, linked and grouped without reference photos."""

    side: int = setting(1024, "px side of each photo's central square compared (smaller photos: their largest)")
    min_side: int = setting(256, "px: photos whose short side is smaller are left alone (too small)")
    false_links: float = setting(0.01, "expected number of false links in the whole run: sets the pair bar")
    min_link_fraction: float = setting(
        0.5, "two groups merge when at least this fraction of their compared pairs are linked (average linkage)"
    )
    turns: bool = setting(True, "also pair photos turned by 90, 180 or 270 degrees")
    cluster_fingerprints: bool = setting(
        True, "match the photos left alone against each cluster's fingerprint (its members' residuals averaged)"
    )
    rounds: int = setting(5, "cluster-fingerprint rounds at most (stops earlier when nothing joins)")
    margin: float = setting(
        10.0, "a lone photo joins a cluster only if its PCE there is this many times its next-best cluster's"
    )
    decoys: int = setting(2000, "pairs whose mirrored decoy is compared too (the null at zero shift)")
    shortlist_from: int = setting(
        300, "photos from which only the pairs their signatures shortlist are compared (fewer: every pair)"
    )
    candidates: int = setting(10, "with the shortlist: the partners each photo keeps by signature")
    signature_side: int = setting(256, "with the shortlist: px side of the central square a signature keeps")
    memory_gb: float = setting(2.0, "GB of photo spectra held at once while pairs are compared (more: fewer remade)")
    max_heatmap: int = setting(60, "report: photos drawn in the similarity matrix picture at most")
    truth: str | None = setting(
        None, "a CSV of path,camera (or the folder level that names the camera: parent) for ARI and pair scores"
    )
    csv: str | None = setting(None, "action=enrol: the clusters.csv of an action=cluster run to enrol a cluster from")
    id: int | None = setting(None, "action=enrol with cluster.csv: the cluster to enrol as library.camera")

    def __post_init__(self) -> None:
        require(self.side >= 64 and self.side % 8 == 0, "cluster.side", f"is {self.side}", "use a multiple of 8")
        require(self.min_side >= 64, "cluster.min_side", f"is {self.min_side}", "use 64 or more, e.g. 256")
        require(0 < self.false_links < 1, "cluster.false_links", f"is {self.false_links}", "use e.g. 0.01")
        require(
            0 < self.min_link_fraction <= 1,
            "cluster.min_link_fraction",
            f"is {self.min_link_fraction}",
            "use a fraction in (0, 1], e.g. 0.5",
        )
        require(self.rounds >= 0, "cluster.rounds", f"is {self.rounds}", "use 0 or more")
        require(self.margin >= 1, "cluster.margin", f"is {self.margin}", "use 1 or more, e.g. 10")
        require(self.memory_gb > 0, "cluster.memory_gb", f"is {self.memory_gb}", "use e.g. 2")
        require(self.shortlist_from >= 2, "cluster.shortlist_from", f"is {self.shortlist_from}", "use e.g. 300")
        require(self.candidates >= 1, "cluster.candidates", f"is {self.candidates}", "use e.g. 10")
        require(
            self.signature_side >= 64 and self.signature_side % 8 == 0,
            "cluster.signature_side",
            f"is {self.signature_side}",
            "use a multiple of 8, e.g. 256",
        )
        require(self.decoys >= 0, "cluster.decoys", f"is {self.decoys}", "use 0 or more")


ClusterSettingsSchema = schema_of(ClusterSettings)  # what Hydra composes the group onto (sci_lightning.settings)
