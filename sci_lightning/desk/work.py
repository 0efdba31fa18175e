"""What a desk job does: the library's own actions (:mod:`sci_lightning.library.actions`, exactly what
``library.py action=...`` runs), on a copy of the desk's config pointed at the job's photos and folder.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from sci_lightning.desk.casefile import Upload, safe_name
from sci_lightning.desk.jobs import Job
from sci_lightning.forensic.decisions import UNKNOWN
from sci_lightning.library import actions
from sci_lightning.library.reports import GEOMETRY_COLUMNS


def job_config(base: DictConfig, **keys: Any) -> DictConfig:
    """The desk's config with ``keys`` (dotted) set, e.g. ``images``, ``paths.output_dir``, ``library.camera``."""
    cfg = OmegaConf.create(OmegaConf.to_container(base, resolve=True))
    with open_dict(cfg):
        for key, value in keys.items():
            OmegaConf.update(cfg, key, value, merge=False)
    return cfg


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


def search(job: Job, base: DictConfig, uploads: list[Upload]) -> dict[str, Any]:
    """Search the uploaded photos against the library; the job's result is each photo's ranking and verdict."""
    linked = link_photos(uploads, job.folder / "photos")
    out = job.folder / "out"
    cfg = job_config(base, images=str(job.folder / "photos"), **{"paths.output_dir": str(out)})
    job.progress(0, len(uploads))
    metrics = actions.search(cfg, progress=job.progress, names={p: u.name for p, u in linked.items()})
    return {"metrics": metrics, "photos": read_search(out, linked)}


def read_search(out: Path, linked: dict[str, Upload]) -> list[dict[str, Any]]:
    """The search's result, photo by photo, from the files it wrote (``verdicts.csv``, ``search.csv``,
    ``verdicts/``): what the results page and the report show."""
    with (out / "verdicts.csv").open() as fh:
        verdicts = list(csv.DictReader(fh))
    rows: dict[str, list[dict[str, str]]] = {}
    if (out / "search.csv").exists():
        with (out / "search.csv").open() as fh:
            for r in csv.DictReader(fh):
                rows.setdefault(r["path"], []).append(r)
    heat = sorted((out / "verdicts").glob("*.png")) if (out / "verdicts").is_dir() else []
    photos = []
    for i, v in enumerate(verdicts):
        upload = linked.get(v["path"])
        name = upload.name if upload else Path(v["path"]).name
        ranked = rows.get(v["path"], [])
        top = ranked[0] if ranked else {}
        png = next((p for p in heat if p.name.startswith(f"{i + 1:04d}_")), None)
        photos.append(
            {
                "index": i,
                "name": name,
                "sha256": upload.sha256 if upload else "",
                "decision": v["decision"],
                "words": in_words(v["decision"], top),
                "ranked": [
                    {k: r.get(k, "") for k in ("camera", "device", "pce", "p_match", "log10_p_false_alarm")}
                    for r in ranked
                ],
                "geometry": {k: top.get(k, "") for k in GEOMETRY_COLUMNS if top.get(k, "") != ""},
                "heat": png.name if png else None,
                "path": v["path"],
            }
        )
    return photos


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


def enrol(job: Job, base: DictConfig, camera: str, device: str, folder: Path, replace: bool) -> dict[str, Any]:
    """Enrol one camera from the photos of ``folder`` (uploads linked there, or a folder under ``serve.roots``)."""
    cfg = job_config(
        base,
        images=str(folder),
        **{
            "paths.output_dir": str(job.folder / "out"),
            "library.camera": camera,
            "library.device": device or camera,
            "library.replace": replace,
            "library.scheduler": "single",
        },
    )
    return {"metrics": actions.enrol(cfg)}


def reverse(job: Job, base: DictConfig, camera: str, folder: Path) -> dict[str, Any]:
    """The photos of ``folder`` that ``camera`` took."""
    out = job.folder / "out"
    cfg = job_config(
        base,
        images=str(folder),
        **{"paths.output_dir": str(out), "library.camera": camera, "library.scheduler": "single"},
    )
    metrics = actions.reverse(cfg)
    with (out / "reverse.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    return {"metrics": metrics, "rows": rows}
