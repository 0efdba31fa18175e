"""What a desk job hands back and keeps in its ``job.json`` (plain mappings: they are written as JSON and read
back after a restart)."""

from __future__ import annotations

from typing import TypedDict

from sci_lightning.outputs import Metrics


class ShownPhoto(TypedDict):
    """One searched photo as the results page shows it."""

    index: int  # its place in the job (heat map and thumbnail URLs)
    name: str  # the uploaded file's own name
    sha256: str
    decision: str  # a camera's name, or "unknown"
    words: str  # the verdict in a sentence
    ranked: list[dict[str, str]]  # the candidates' cells, as search.csv writes them
    geometry: dict[str, str]  # how the top candidate was found (transform, rotation, scale, ...)
    heat: str | None  # the heat map's path
    path: str  # the photo's path in the job's folder


class GroupedPhoto(TypedDict):
    """One photo of a grouping job (its thumbnail URL is by ``index``)."""

    index: int
    name: str
    path: str
    sha256: str
    height: int
    width: int
    cluster: int | None  # None: joins no one
    reason: str  # why it is alone ("" in a cluster)


class ShownCluster(TypedDict):
    """One cluster of a grouping job: its members (indices into the job's photos) and its weakest and strongest
    links in words."""

    id: int
    members: list[int]
    strongest: str
    weakest: str


class JobResult(TypedDict, total=False):
    """A finished job's result: its action's metrics and, by kind, the photos searched, the rows of a reverse
    search, or the photos grouped and their clusters."""

    metrics: Metrics
    photos: list[ShownPhoto]
    rows: list[dict[str, str]]
    grouped: list[GroupedPhoto]
    clusters: list[ShownCluster]
