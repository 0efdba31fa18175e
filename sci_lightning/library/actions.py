"""``python library.py action=...`` (conf/library.yaml): each action a function of one typed
:class:`~.job.LibraryJob` (built from the config by :mod:`sci_lightning.run.library`), over :mod:`.store`,
:mod:`.enrol` and :mod:`.search`.

The library decides as ``evaluate.py method=prnu`` does (:mod:`sci_lightning.forensic.pce`), with the rule made at
enrolment from a case (:func:`decision_rule`), and writes the same verdict report plus its own CSVs
(:mod:`.reports`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from sci_lightning.data.selection import questioned_files
from sci_lightning.errors import SCIConfigError
from sci_lightning.fingerprint.core import HEAT_BLOCK
from sci_lightning.fingerprint.impostors import validation_scores
from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.fingerprint.significance import sci
from sci_lightning.forensic import false_alarm
from sci_lightning.forensic.pce import calibrate, decide, write_pce_report
from sci_lightning.forensic.report import finish_folder_verdicts
from sci_lightning.forensic.rules import Rule
from sci_lightning.library.enrol import enrol_cameras, ingest_photos, repair_camera
from sci_lightning.library.job import LibraryJob
from sci_lightning.library.reports import print_cameras, write_reverse_csv, write_search_csv
from sci_lightning.library.results import (
    PhotoVerdict,
    ReverseOutcome,
    SearchOutcome,
    candidates_of,
    reverse_row,
)
from sci_lightning.library.search import Searcher, SearchSettings, reverse_decisions, reverse_search
from sci_lightning.library.store import FingerprintLibrary
from sci_lightning.outputs import Metrics, write_json, write_skipped
from sci_lightning.tracking import log_run

log = logging.getLogger(__name__)

SECONDS = ("index", "verify", "residual")  # per photo: shortlist, PCE of the shortlist, residual (stored or computed)
DECIDED_BY = (
    "Decided by the fingerprint library: the photo's wavelet noise residual is shortlisted against the library's "
    "index and verified by PCE against the enrolled fingerprints; best PCE wins."
)


def open_library(job: LibraryJob, create: bool = False) -> FingerprintLibrary:
    """The library at ``library.path`` (created by the first enrolment when ``create``)."""
    exists = (job.path / "catalogue.sqlite").is_file()
    return FingerprintLibrary(job.library.path, create and not exists, job.prnu.residual, job.library.index_side)


def _residuals(job: LibraryJob, lib: FingerprintLibrary) -> ResidualStore:
    return ResidualStore(job.cache_dir, lib.residual)


def _photos(job: LibraryJob) -> list[str]:
    if not job.images:
        raise SCIConfigError("images", "is not set", "pass images=DIR (a folder of photos, or one photo)")
    return [str(p) for p in questioned_files(job.images, job.image_extensions)]


def _engine(job: LibraryJob) -> tuple[str, int]:
    return job.library.scheduler, job.library.workers


def enrol(job: LibraryJob) -> Metrics:
    """One camera from ``images=DIR`` (``library.camera``), or every reference camera of the configured case
    (then, with ``library.calibrate``, the case's decision rule is kept with the library)."""
    lib = open_library(job, create=True)
    residuals = _residuals(job, lib)
    if job.photos:
        name = str(job.library.camera)
        jobs = [(name, str(job.library.device or name), list(job.photos))]
        source, sel = job.photos_source, None
    elif job.images:
        name = str(job.library.camera)
        jobs = [(name, str(job.library.device or name), _photos(job))]
        source, sel = f"folder {Path(job.images).expanduser().resolve()}", None
    else:
        if job.case is None:
            raise SCIConfigError(
                "images", "is not set and no case is configured", "pass images=DIR, or a case's data=... to enrol"
            )
        case_name, sel = job.case.name, job.case.select()
        by_cam: dict[str, tuple[str, list[str]]] = {}
        for r in sel.references():
            by_cam.setdefault(r.camera, (r.device, []))[1].append(str(r.path))
        jobs = [(cam, dev, paths) for cam, (dev, paths) in sorted(by_cam.items())]
        if job.library.camera:  # one camera of the case, never silently all of them
            jobs = [j for j in jobs if j[0] == str(job.library.camera)]
            if not jobs:
                raise SCIConfigError(
                    "library.camera",
                    f"{job.library.camera!r} is not a reference camera of data={case_name} "
                    f"({len(by_cam)} cameras: {', '.join(sorted(by_cam)[:10])}{', ...' if len(by_cam) > 10 else ''})",
                    "name one of them, or leave library.camera unset to enrol them all",
                )
        source = f"case data={case_name} split={sel.where()}"
    named = bool(job.library.camera)  # one camera asked for by name: rebuilt if its stored copy is damaged
    done = enrol_cameras(lib, jobs, residuals, source, *_engine(job), job.library.replace, named)
    if sel is not None and job.library.calibrate and done["enrolled"]:
        search = job.search
        scores = validation_scores(
            sel, residuals, search if search.active else None, (None, None), os.cpu_count() or 1, job.seed
        )
        cal = calibrate(scores, job.prnu.false_alarm, job.verdict.target_false_attribution)
        if cal:
            lib.set_calibration({**cal, "source": source})
    metrics = {"action": "enrol", "library": str(lib.path), **done, "n_cameras": len(lib.names())}
    write_json(job.out() / "metrics.json", metrics)
    log.info("library %s: %d cameras (%d enrolled now)", lib.path, metrics["n_cameras"], len(done["enrolled"]))
    return metrics


def list_cameras(job: LibraryJob) -> Metrics:
    """The catalogue (``library.device`` filters): printed and written to ``cameras.csv``."""
    rows = [r for r in open_library(job).cameras() if not job.library.device or r["device"] == job.library.device]
    print_cameras(rows, job.out() / "cameras.csv")
    return {"action": "list", "n_cameras": len(rows)}


def show(job: LibraryJob) -> Metrics:
    lib = open_library(job)
    row = {**lib.camera(str(job.library.camera)), "residual": lib.residual, "index_side": lib.side}
    print(json.dumps(row, indent=2))
    return row


def remove(job: LibraryJob) -> Metrics:
    row = open_library(job).remove(str(job.library.camera))
    log.info("removed %s (%s) from %s", row["name"], row["device"], job.library.path)
    return {"action": "remove", "camera": row["name"]}


def export(job: LibraryJob) -> Metrics:
    name = str(job.library.camera)
    target = open_library(job).export(name, job.library.to or job.out() / f"{name}.npz")
    log.info("exported %s -> %s", name, target)
    return {"action": "export", "camera": name, "file": str(target)}


def verify(job: LibraryJob) -> Metrics:
    lib = open_library(job)
    report = lib.verify()
    if report["problems"]:
        repairs = [lib.repair_command(name) for name in report["damaged"]]
        raise SCIConfigError(
            "library.path",
            f"{job.library.path} is damaged:\n    " + "\n    ".join(report["problems"]),
            ("rebuild each damaged camera from its stored source photos:\n    " + "\n    ".join(repairs) + "\n  or ")
            * bool(repairs)
            + "restore the library folder from a backup",
        )
    log.info("library %s: %d cameras, all checks passed", job.library.path, report["n_cameras"])
    return {"action": "verify", **report}


def repair(job: LibraryJob) -> Metrics:
    """Rebuild ``library.camera``'s fingerprint from the source photos its catalogue row lists."""
    lib = open_library(job)
    done = repair_camera(lib, str(job.library.camera), _residuals(job, lib))
    metrics = {"action": "repair", **done}
    write_json(job.out() / "metrics.json", metrics)
    return metrics


def ingest(job: LibraryJob) -> Metrics:
    lib = open_library(job)
    done = ingest_photos(lib, _photos(job), _residuals(job, lib), *_engine(job))
    out = job.out()
    if done["skipped"]:
        write_skipped(out / "skipped_images.csv", [(r["path"], r["reason"]) for r in done["skipped"]])
    metrics = {
        "action": "ingest",
        **{k: v for k, v in done.items() if k not in ("skipped", "seconds")},
        **{f"seconds/{k}": v for k, v in done["seconds"].items()},
    }
    write_json(out / "metrics.json", metrics)
    return metrics


def decision_rule(job: LibraryJob, lib: FingerprintLibrary) -> Rule | None:
    """How the library decides: with the geometry search, the false-alarm bar (the library's own, made at
    enrolment from a case, or ``prnu.false_alarm`` as set); without, ``prnu.pce_threshold`` with the library's
    Platt calibration if it has one."""
    cal = lib.calibration
    searched = cal is not None and cal.get("method") == "false_alarm"
    if job.search.active:
        if searched:
            return cal
        if cal is not None:
            log.warning("the library's calibration was made for geometry=none: the bar is prnu.false_alarm as set")
        return false_alarm.uncalibrated(job.prnu.false_alarm, job.verdict.target_false_attribution)
    return None if searched else cal


def _settings(job: LibraryJob, lib: FingerprintLibrary, rule: Rule | None, heat_block: int = 0) -> SearchSettings:
    min_z = job.library.min_z
    search = job.search
    if rule and rule.get("method") == "false_alarm":  # the library's own bar, made at enrolment
        search = replace(search, stop=rule["log10_bar"])
    search = search.for_fingerprints({r["name"]: r["quality"] for r in lib.cameras()})
    min_z = float("inf") if min_z is None else float(min_z)
    return SearchSettings(job.library.shortlist, min_z, job.library.exhaustive, heat_block, search)


def search(job: LibraryJob) -> Metrics:
    """Each photo of ``images=`` against the library (:func:`search_outcome`); returns its metrics."""
    return search_outcome(job).metrics


def search_outcome(
    job: LibraryJob, progress: Callable[[int, int], None] | None = None, names: dict[str, str] | None = None
) -> SearchOutcome:
    """Each photo of ``images=`` against the library: verdicts (the PRNU report and the self-contained case
    report), ``search.csv`` (top-k), and the same results typed, heat maps' paths with them.
    ``progress(done, total)`` is called after each photo; ``names`` are the names the case report shows for the
    photos (an uploaded file's own name) where they are not the file's."""
    lib, paths, out = open_library(job), _photos(job), job.out()
    cal = decision_rule(job, lib)
    searcher = Searcher(lib, _residuals(job, lib), _settings(job, lib, cal, HEAT_BLOCK))
    scored = []
    for i, p in enumerate(paths):
        scored.append(searcher.search_photo(p))
        if progress is not None:
            progress(i + 1, len(paths))
    devices = {r["name"]: r["device"] for r in lib.cameras()}
    cameras, threshold = list(devices), job.prnu.pce_threshold
    verdicts, skipped = decide(paths, scored, {n: i for i, n in enumerate(cameras)}, cameras, cal, threshold, None)
    top_k = job.library.top_k
    for v in verdicts:
        v["ranked"] = v["ranked"][:top_k]
    case = {"settings": _case_settings(job, lib, cal, skipped, names), "names": names}
    qualities = {r["name"]: r["quality"] for r in lib.cameras()}
    max_heat = job.verdict.max_heatmaps
    decided = write_pce_report(out, verdicts, cal, threshold, max_heat, DECIDED_BY, case, fingerprints=qualities)
    by_path = dict(zip(paths, scored))
    photos = tuple(
        PhotoVerdict(
            v["path"],
            v["decision"],
            candidates_of(by_path[v["path"]], devices, cal, top_k),
            Path(v["heat_png"]) if v.get("heat_png") else None,
        )
        for v in verdicts
    )
    write_search_csv(out / "search.csv", photos)
    timed = [s["seconds"] for s in scored if "seconds" in s]
    tail = {
        "exhaustive": searcher.settings.exhaustive,
        **{f"seconds_per_photo/{k}": sum(t[k] for t in timed) / max(len(timed), 1) for k in SECONDS},
        **{k: v for k, v in decided.items() if isinstance(v, (int, float, str))},
    }
    head = {"action": "search", "n_cameras": len(cameras)}
    metrics = finish_folder_verdicts(out, f"library ({len(cameras)} cameras)", head, verdicts, skipped, tail)
    log_run(job.run_log, metrics, {"reliability": out / "reliability.png"})
    return SearchOutcome(metrics, photos)


def _case_settings(
    job: LibraryJob,
    lib: FingerprintLibrary,
    cal: Rule | None,
    skipped: list[dict[str, str]],
    names: dict[str, str] | None,
) -> Metrics:
    """What the case report states about how this search ran."""
    rule = (
        f"false-alarm bar {sci(cal['log10_bar'])} (geometry={job.search.geometry.name}), each nameable camera's peak "
        "judged against the null measured on its own planes and decoys"
        if cal is not None and cal.get("method") == "false_alarm"
        else f"PCE >= {job.prnu.pce_threshold:g} (geometry=none)"
    )
    shown = names or {}
    return {
        "library": str(lib.path),
        "cameras in the library": len(lib.names()),
        "decision rule": rule,
        "calibration": cal.get("source", "prnu.false_alarm") if cal is not None else "none kept with the library",
        "noise residual": ", ".join(f"{k}={v}" for k, v in lib.residual.items()),
        "index": f"{lib.side} px sign-bit codes; shortlist {job.library.shortlist}, min_z {job.library.min_z}, "
        f"exhaustive {job.library.exhaustive}",
        "skipped photos": "; ".join(f"{shown.get(r['path'], Path(r['path']).name)}: {r['reason']}" for r in skipped)
        or "none",
    }


def reverse(job: LibraryJob) -> Metrics:
    """The photos of ``images=`` that ``library.camera`` took (:func:`reverse_outcome`); returns its metrics."""
    return reverse_outcome(job).metrics


def reverse_outcome(job: LibraryJob) -> ReverseOutcome:
    """The photos of ``images=`` that ``library.camera`` took (ingests the ones not ingested yet): ``reverse.csv``
    and the same rows typed."""
    lib, camera, paths, out = open_library(job), str(job.library.camera), _photos(job), job.out()
    residuals = _residuals(job, lib)
    done = ingest_photos(lib, paths, residuals, *_engine(job))
    bad = {r["path"] for r in done["skipped"]}
    known = lib.photos([p for p in paths if p not in bad])
    photos = [{"path": p, "code": known[p][0], "shape": known[p][1]} for p in paths if p in known]
    cal = decision_rule(job, lib)
    rows = reverse_search(lib, camera, photos, residuals, _settings(job, lib, cal))
    rows = tuple(reverse_row(r, cal) for r in reverse_decisions(rows, cal, job.prnu.pce_threshold))
    write_reverse_csv(out / "reverse.csv", rows)
    metrics = {
        "action": "reverse",
        "camera": camera,
        "n_photos": len(photos),
        "n_skipped_images": len(bad),
        "n_verified": sum(r.pce is not None for r in rows),
        "n_matches": sum(r.decision == "match" for r in rows),
    }
    write_json(out / "metrics.json", metrics)
    log.info(
        "%s took %d of %d photos (%d verified by PCE) -> %s",
        camera,
        metrics["n_matches"],
        len(photos),
        metrics["n_verified"],
        out / "reverse.csv",
    )
    return ReverseOutcome(metrics, rows)


ACTIONS: dict[str, Callable[[LibraryJob], Metrics]] = {
    "enrol": enrol,
    "list": list_cameras,
    "show": show,
    "remove": remove,
    "export": export,
    "verify": verify,
    "repair": repair,
    "ingest": ingest,
    "search": search,
    "reverse": reverse,
}
