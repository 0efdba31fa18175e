"""``python library.py action=...``: the camera fingerprint library's command line (conf/library.yaml).

Each action is a thin wrapper over :mod:`sci_lightning.library`, which is usable from Python the same way.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sci_lightning.data.selection import questioned_files
from sci_lightning.fingerprint.geometry import GeometrySettings
from sci_lightning.fingerprint.references import selection_of
from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.fingerprint.scoring import HEAT_BLOCK, search_of
from sci_lightning.forensic import false_alarm
from sci_lightning.forensic.decisions import UNKNOWN
from sci_lightning.forensic.pce import calibrate_pce, calibrate_searched, decide, write_pce_report
from sci_lightning.forensic.report import REPORT_NAME
from sci_lightning.library.enrol import enrol_cameras, ingest_photos
from sci_lightning.library.reports import write_reverse_csv, write_search_csv
from sci_lightning.library.search import Searcher, SearchSettings, reverse_decisions, reverse_search
from sci_lightning.library.store import FingerprintLibrary
from sci_lightning.outputs import write_json, write_skipped
from sci_lightning.run.config import check_geometry, require
from sci_lightning.tracking import log_run

log = logging.getLogger(__name__)

RESIDUAL_KEYS = ("sigma", "levels", "wavelet", "grey_first")
SECONDS = ("index", "verify", "residual")  # per photo: shortlist, PCE of the shortlist, residual (stored or computed)
DECIDED_BY = (
    "Decided by the fingerprint library: the photo's wavelet noise residual is shortlisted against the library's "
    "index and verified by PCE against the enrolled fingerprints; best PCE wins."
)


def _residual_kw(cfg: DictConfig) -> dict[str, Any]:
    return {k: cfg.prnu[k] for k in RESIDUAL_KEYS}


def _open(cfg: DictConfig, create: bool = False) -> FingerprintLibrary:
    lib_cfg = cfg.library
    require(bool(lib_cfg.path), "library.path", "is not set", "pass library.path=DIR (the library folder)")
    exists = (Path(os.path.expanduser(str(lib_cfg.path))) / "catalogue.sqlite").is_file()
    side = int(lib_cfg.index_side)
    require(side >= 64 and side % 8 == 0, "library.index_side", f"is {side}", "use a multiple of 8, e.g. 512")
    return FingerprintLibrary(lib_cfg.path, create and not exists, _residual_kw(cfg), side)


def _residuals(cfg: DictConfig, lib: FingerprintLibrary) -> ResidualStore:
    return ResidualStore(cfg.paths.cache_dir if cfg.prnu.residual_cache else None, lib.residual)


def _photos(cfg: DictConfig) -> list[str]:
    require(bool(cfg.images), "images", "is not set", "pass images=DIR (a folder of photos) or one photo")
    return [str(p) for p in questioned_files(cfg.images, cfg.image_extensions)]


def _camera(cfg: DictConfig) -> str:
    require(bool(cfg.library.camera), "library.camera", "is not set", "name the camera: library.camera=NAME")
    return str(cfg.library.camera)


def _out_dir(cfg: DictConfig) -> Path:
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _engine(cfg: DictConfig) -> tuple[str, int]:
    scheduler, workers = str(cfg.library.scheduler), int(cfg.library.workers)
    require(
        scheduler in ("local", "single") or "://" in scheduler,
        "library.scheduler",
        f"is {scheduler!r}",
        "use local (a Dask local cluster), single (this process) or a scheduler address tcp://HOST:8786",
    )
    require(workers >= 1, "library.workers", f"is {workers}", "use 1 or more")
    return scheduler, workers


def enrol(cfg: DictConfig) -> dict[str, Any]:
    """One camera from ``images=DIR`` (``library.camera``), or every reference camera of the configured case."""
    lib = _open(cfg, create=True)
    residuals, (scheduler, workers) = _residuals(cfg, lib), _engine(cfg)
    if cfg.images:
        name = _camera(cfg)
        jobs = [(name, str(cfg.library.device or name), _photos(cfg))]
        source, sel = f"folder {Path(str(cfg.images)).expanduser().resolve()}", None
    else:
        sel = selection_of(cfg, os.cpu_count() or 1)
        by_cam: dict[str, tuple[str, list[str]]] = {}
        for r in sel.references():
            by_cam.setdefault(r.camera, (r.device, []))[1].append(str(r.path))
        jobs = [(cam, dev, paths) for cam, (dev, paths) in sorted(by_cam.items())]
        source = f"case data={cfg.data.name} split={sel.where()}"
    done = enrol_cameras(lib, jobs, residuals, source, scheduler, workers, bool(cfg.library.replace))
    if sel is not None and cfg.library.calibrate and done["enrolled"]:
        workers = os.cpu_count() or 1
        if search_of(cfg).active:
            alpha, target = float(cfg.prnu.false_alarm), float(cfg.verdict.target_false_attribution)
            cal = calibrate_searched(sel, residuals, search_of(cfg), workers, int(cfg.seed), alpha, target)
        else:
            cal = calibrate_pce(sel, residuals, (None, None), workers)
        if cal:
            lib.set_calibration({**cal, "source": source})
    metrics = {"action": "enrol", "library": str(lib.path), **done, "n_cameras": len(lib.names())}
    write_json(_out_dir(cfg) / "metrics.json", metrics)
    log.info("library %s: %d cameras (%d enrolled now)", lib.path, metrics["n_cameras"], len(done["enrolled"]))
    return metrics


def list_cameras(cfg: DictConfig) -> dict[str, Any]:
    rows = [r for r in _open(cfg).cameras() if not cfg.library.device or r["device"] == cfg.library.device]
    fields = ("name", "device", "height", "width", "n_photos", "enrolled_at", "indexed", "source")
    with (_out_dir(cfg) / "cameras.csv").open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(fields)
        wr.writerows([[r[f] for f in fields] for r in rows])
    print(f"{'name':<24} {'device':<24} {'size':>11} {'photos':>6}  enrolled")
    for r in rows:
        size = f"{r['width']}x{r['height']}"
        print(f"{r['name']:<24} {r['device']:<24} {size:>11} {r['n_photos']:>6}  {r['enrolled_at']}")
    return {"action": "list", "n_cameras": len(rows)}


def show(cfg: DictConfig) -> dict[str, Any]:
    lib = _open(cfg)
    row = {**lib.camera(_camera(cfg)), "residual": lib.residual, "index_side": lib.side}
    print(json.dumps(row, indent=2))
    return row


def remove(cfg: DictConfig) -> dict[str, Any]:
    row = _open(cfg).remove(_camera(cfg))
    log.info("removed %s (%s) from %s", row["name"], row["device"], cfg.library.path)
    return {"action": "remove", "camera": row["name"]}


def export(cfg: DictConfig) -> dict[str, Any]:
    name = _camera(cfg)
    target = _open(cfg).export(name, cfg.library.to or _out_dir(cfg) / f"{name}.npz")
    log.info("exported %s -> %s", name, target)
    return {"action": "export", "camera": name, "file": str(target)}


def verify(cfg: DictConfig) -> dict[str, Any]:
    report = _open(cfg).verify()
    require(
        not report["problems"],
        "library.path",
        f"{cfg.library.path} is damaged:\n    " + "\n    ".join(report["problems"]),
        "re-enrol the cameras named, or restore the library folder from a backup",
    )
    log.info("library %s: %d cameras, all checks passed", cfg.library.path, report["n_cameras"])
    return {"action": "verify", **report}


def ingest(cfg: DictConfig) -> dict[str, Any]:
    lib = _open(cfg)
    done = ingest_photos(lib, _photos(cfg), _residuals(cfg, lib), *_engine(cfg))
    out = _out_dir(cfg)
    if done["skipped"]:
        write_skipped(out / "skipped_images.csv", [(r["path"], r["reason"]) for r in done["skipped"]])
    metrics = {
        "action": "ingest",
        **{k: v for k, v in done.items() if k not in ("skipped", "seconds")},
        **{f"seconds/{k}": v for k, v in done["seconds"].items()},
    }
    write_json(out / "metrics.json", metrics)
    return metrics


def _rule(cfg: DictConfig, lib: FingerprintLibrary) -> dict[str, Any] | None:
    """How the library decides: with the geometry search, the false-alarm bar (the library's own, made at
    enrolment from a case, or ``prnu.false_alarm`` as set); without, ``prnu.pce_threshold`` with the library's
    Platt calibration if it has one."""
    check_geometry(cfg.geometry)
    alpha = float(cfg.prnu.false_alarm)
    require(0 < alpha < 1, "prnu.false_alarm", f"must be in (0, 1) (got {alpha})", "use e.g. 1e-4")
    cal = lib.calibration
    searched = cal is not None and cal.get("method") == "false_alarm"
    if GeometrySettings.from_config(cfg.geometry).searches:
        if searched:
            return cal
        if cal is not None:
            log.warning("the library's calibration was made for geometry=none: the bar is prnu.false_alarm as set")
        return false_alarm.uncalibrated(alpha, float(cfg.verdict.target_false_attribution))
    return None if searched else cal


def _settings(cfg: DictConfig, rule: dict[str, Any] | None, heat_block: int = 0) -> SearchSettings:
    k, min_z = int(cfg.library.shortlist), cfg.library.min_z
    require(k >= 1, "library.shortlist", f"is {k}", "use 1 or more, e.g. 20")
    search = search_of(cfg, rule["log10_bar"] if rule and rule.get("method") == "false_alarm" else None)
    min_z = float("inf") if min_z is None else float(min_z)
    return SearchSettings(k, min_z, bool(cfg.library.exhaustive), heat_block, search)


def search(cfg: DictConfig) -> dict[str, Any]:
    """Each photo of ``images=`` against the library: verdicts (the PRNU report), ``search.csv`` (top-k)."""
    lib, paths, out = _open(cfg), _photos(cfg), _out_dir(cfg)
    cal = _rule(cfg, lib)
    searcher = Searcher(lib, _residuals(cfg, lib), _settings(cfg, cal, HEAT_BLOCK))
    scored = [searcher.search_photo(p) for p in paths]
    devices = {r["name"]: r["device"] for r in lib.cameras()}
    names, threshold = list(devices), float(cfg.prnu.pce_threshold)
    verdicts, skipped = decide(paths, scored, {n: i for i, n in enumerate(names)}, names, cal, threshold, None)
    top_k = int(cfg.library.top_k)
    for v in verdicts:
        v["ranked"] = v["ranked"][:top_k]
    decided = write_pce_report(out, verdicts, cal, threshold, int(cfg.verdict.max_heatmaps), DECIDED_BY)
    decision_of = {v["path"]: v["decision"] for v in verdicts}
    write_search_csv(out / "search.csv", paths, scored, decision_of, devices, cal, top_k)
    if skipped:
        write_skipped(out / "skipped_images.csv", [(r["path"], r["reason"]) for r in skipped])
    timed = [s["seconds"] for s in scored if "seconds" in s]
    metrics = {
        "action": "search",
        "n_cameras": len(names),
        "n_images": len(verdicts),
        "n_skipped_images": len(skipped),
        "n_unknown_verdicts": sum(v["decision"] == UNKNOWN for v in verdicts),
        "exhaustive": searcher.settings.exhaustive,
        **{f"seconds_per_photo/{k}": sum(t[k] for t in timed) / max(len(timed), 1) for k in SECONDS},
        **{k: v for k, v in decided.items() if isinstance(v, (int, float, str))},
    }
    write_json(out / "metrics.json", metrics)
    log_run(cfg, "library", metrics, {"reliability": out / "reliability.png"})
    log.info(
        "%d photos searched against %d cameras (%d unknown) -> %s",
        len(verdicts),
        len(names),
        metrics["n_unknown_verdicts"],
        out / REPORT_NAME,
    )
    return metrics


def reverse(cfg: DictConfig) -> dict[str, Any]:
    """The photos of ``images=`` that ``library.camera`` took (ingests the ones not ingested yet)."""
    lib, camera, paths, out = _open(cfg), _camera(cfg), _photos(cfg), _out_dir(cfg)
    residuals = _residuals(cfg, lib)
    done = ingest_photos(lib, paths, residuals, *_engine(cfg))
    bad = {r["path"] for r in done["skipped"]}
    known = lib.photos([p for p in paths if p not in bad])
    photos = [{"path": p, "code": known[p][0], "shape": known[p][1]} for p in paths if p in known]
    cal = _rule(cfg, lib)
    rows = reverse_search(lib, camera, photos, residuals, _settings(cfg, cal))
    rule = (
        cal
        if cal and cal.get("method") == "false_alarm"
        else {"method": "pce", "threshold": float(cfg.prnu.pce_threshold)}
    )
    rows = reverse_decisions(rows, rule)
    rows.sort(key=lambda r: -(r["pce"] if r["pce"] is not None else -1e9))
    write_reverse_csv(out / "reverse.csv", rows, cal)
    matches = [r["path"] for r in rows if r["decision"] == "match"]
    metrics = {
        "action": "reverse",
        "camera": camera,
        "n_photos": len(photos),
        "n_skipped_images": len(bad),
        "n_verified": sum(r["pce"] is not None for r in rows),
        "n_matches": len(matches),
    }
    write_json(out / "metrics.json", metrics)
    log.info(
        "%s took %d of %d photos (%d verified by PCE) -> %s",
        camera,
        len(matches),
        len(photos),
        metrics["n_verified"],
        out / "reverse.csv",
    )
    return metrics


ACTIONS: dict[str, Callable[[DictConfig], dict[str, Any]]] = {
    "enrol": enrol,
    "list": list_cameras,
    "show": show,
    "remove": remove,
    "export": export,
    "verify": verify,
    "ingest": ingest,
    "search": search,
    "reverse": reverse,
}


def run(cfg: DictConfig) -> dict[str, Any]:
    action = str(cfg.action)
    require(action in ACTIONS, "action", f"is {action!r}", f"use one of {', '.join(ACTIONS)}")
    return ACTIONS[action](cfg)
