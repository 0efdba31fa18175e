"""What a desk job does: the library's own actions (:mod:`sci_lightning.library.actions`, exactly what
``library.py action=...`` runs), on the desk's :class:`~sci_lightning.library.job.LibraryJob` pointed at the job's
photos and folder. Their
results come back typed (:mod:`sci_lightning.library.results`), heat maps' paths with them: the desk never reads
the files the actions write.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sci_lightning.clustering.action import ClusterJob, cluster_outcome
from sci_lightning.clustering.outcome import PairRow
from sci_lightning.clustering.settings import ClusterSettings
from sci_lightning.data.selection import sha256_file
from sci_lightning.desk.casefile import Upload, safe_name
from sci_lightning.desk.jobs import Job
from sci_lightning.desk.results import GroupedPhoto, JobResult, ShownCluster, ShownPhoto
from sci_lightning.forensic.decisions import UNKNOWN
from sci_lightning.library import actions
from sci_lightning.library.job import LibraryJob
from sci_lightning.library.results import GEOMETRY_COLUMNS, PhotoVerdict


def link_photos(uploads: list[Upload], folder: Path) -> dict[str, Upload]:
    """The job's photos folder: each upload linked in (copied where links are not allowed); returns the upload
    behind each path there (its name is what the report shows; two uploads may share a name, never a path)."""
    folder.mkdir(parents=True, exist_ok=True)
    linked = {}
    for k, u in enumerate(uploads):
        # the upload order, then the name it came with made safe for a file name (figures and logs show it)
        target = folder / f"{k:04d}-{safe_name(Path(u.name).stem)[:60]}{u.path.suffix}"
        if not target.exists():
            try:
                os.link(u.path, target)
            except OSError:
                shutil.copyfile(u.path, target)
        linked[str(target)] = u
    return linked


def search(job: Job, base: LibraryJob, uploads: list[Upload]) -> JobResult:
    """Search the uploaded photos against the library; the job's result is each photo's ranking and verdict."""
    linked = link_photos(uploads, job.folder / "photos")
    task = base.varied(str(job.folder / "photos"), job.folder / "out")
    job.progress(0, len(uploads))
    outcome = actions.search_outcome(task, progress=job.progress, names={p: u.name for p, u in linked.items()})
    return {"metrics": outcome.metrics, "photos": [_shown(i, p, linked) for i, p in enumerate(outcome.photos)]}


def _shown(i: int, photo: PhotoVerdict, linked: dict[str, Upload]) -> ShownPhoto:
    """What the results page and the job's saved state hold of one searched photo (plain values: JSON)."""
    upload = linked.get(photo.path)
    ranked = [c.cells() for c in photo.candidates]
    top = ranked[0] if ranked else {}
    return ShownPhoto(
        index=i,
        name=upload.name if upload else Path(photo.path).name,
        sha256=upload.sha256 if upload else "",
        decision=photo.decision,
        words=in_words(photo.decision, top),
        ranked=ranked,
        geometry={k: top[k] for k in GEOMETRY_COLUMNS if top.get(k, "") != ""},
        heat=str(photo.heat_png) if photo.heat_png else None,
        path=photo.path,
    )


def in_words(decision: str, top: dict[str, str]) -> str:
    """The verdict in a sentence."""
    if decision == UNKNOWN:
        return (
            "Unknown: no camera of the library is supported by this photo at the stated error rate (a camera not "
            "in the library, or too little of its noise pattern left in the photo)."
        )
    prob = f", P(match) {top['p_match']}" if top.get("p_match") else ""
    pfa = f", false-alarm probability 10^{top['log10_p_false_alarm']}" if top.get("log10_p_false_alarm") else ""
    how = ""
    if top.get("transform") and top["transform"] != "aligned":
        how = f"; found {top['transform']}, turned {top.get('rotation', '0')}°, scale {top.get('scale', '1')}"
    return f"Taken by {decision} (PCE {top.get('pce', '?')}{prob}{pfa}){how}."


def enrol(job: Job, base: LibraryJob, camera: str, device: str, folder: Path, replace: bool) -> JobResult:
    """Enrol one camera from the photos of ``folder`` (uploads linked there, or a folder under ``serve.roots``)."""
    out = job.folder / "out"
    task = base.varied(str(folder), out, camera=camera, device=device or camera, replace=replace, scheduler="single")
    return {"metrics": actions.enrol(task)}


def reverse(job: Job, base: LibraryJob, camera: str, folder: Path) -> JobResult:
    """The photos of ``folder`` that ``camera`` took."""
    task = base.varied(str(folder), job.folder / "out", camera=camera, scheduler="single")
    outcome = actions.reverse_outcome(task)
    return {"metrics": outcome.metrics, "rows": [r.cells() for r in outcome.rows]}


def group(job: Job, base: LibraryJob, settings: ClusterSettings, folder: Path, names: dict[str, str]) -> JobResult:
    """Which photos of ``folder`` share a camera (``library.py action=cluster``, its files in the job's ``out``);
    ``names``: the name each uploaded photo came with, by its path there."""
    task = ClusterJob(
        settings=settings,
        residual=base.prnu.residual,
        images=str(folder),
        image_extensions=base.image_extensions,
        output_dir=job.folder / "out",
        cache_dir=base.cache_dir,
        scheduler="single",
        workers=1,
        seed=base.seed,
    )
    result, metrics = cluster_outcome(task, progress=job.progress)
    rows = [(r.path, r.cluster, r.reason, r.size_px) for r in result.rows]  # the unreadable ones too
    grouped = []
    for k, (path, c, reason, size) in enumerate(sorted(rows)):
        w, h = (int(v) for v in size.split("x")) if size else (0, 0)
        name = names.get(path, Path(path).name)
        grouped.append(
            GroupedPhoto(
                index=k, name=name, path=path, sha256=sha256_file(path), height=h, width=w, cluster=c, reason=reason
            )
        )
    at = {g["path"]: g["index"] for g in grouped}
    clusters = [
        ShownCluster(
            id=c.id,
            members=[at[m] for m in c.members],
            strongest=_link_words(c.strongest, names),
            weakest=_link_words(c.weakest, names),
        )
        for c in result.clusters
    ]
    return {"metrics": metrics, "grouped": grouped, "clusters": clusters}


def _link_words(p: PairRow | None, names: dict[str, str]) -> str:
    """A link in words, each photo by the name it was uploaded with."""
    if p is None:
        return "joined through the cluster's fingerprint"
    a, b = (names.get(x, Path(x).name) for x in (p.a, p.b))
    pfa = f"false-alarm probability 10^{p.log10_p_false_alarm:.3g}"
    return f"{a} and {b}: PCE {p.pce:.4g} ({p.geometry}), {pfa}"
