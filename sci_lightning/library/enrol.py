"""Filling the library: enrol cameras from their reference photos, ingest folders of photos (residuals and
index codes) for reverse search. Both run on the engine (:mod:`.engine`: Dask by default) and commit each
finished camera, or each batch of photos, at once: a killed run keeps what it committed and a rerun skips it."""

from __future__ import annotations

import logging
import os
import time
from functools import partial

from sci_lightning.data.selection import sha256_file
from sci_lightning.errors import SCIConfigError
from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.library.engine import run_tasks
from sci_lightning.library.records import Enrolment, IngestedPhoto, Ingestion, Repair
from sci_lightning.library.store import FingerprintLibrary
from sci_lightning.library.tasks import estimate_camera, ingest_photo

log = logging.getLogger(__name__)

COMMIT_EVERY = 32  # photos per catalogue transaction during ingestion
COMMIT_EVERY_S = 10.0


def enrol_cameras(
    lib: FingerprintLibrary,
    jobs: list[tuple[str, str, list[str]]],
    residuals: ResidualStore,
    source: str,
    scheduler: str = "local",
    workers: int = 2,
    replace: bool = False,
    check_damage: bool = False,
) -> Enrolment:
    """Enrol ``jobs`` = ``[(name, device, reference photo paths), ...]``.

    A camera already enrolled from the same photos is skipped (a rerun after a crash does only what is left), or,
    with ``check_damage`` (a camera named by ``library.camera``), rebuilt if its stored fingerprint is damaged:
    reading every stored fingerprint on each rerun of a large case would cost as much as enrolling it again. One
    enrolled from other photos is refused unless ``replace``. Cameras with no readable photo are skipped with
    their reason. Returns ``{"enrolled": [...], "already": [...], "skipped": [{"name", "reason"}]}``.
    """
    existing = {row["name"]: sorted(p for p, _ in row["photos"]) for row in lib.cameras()}
    todo, already = [], []
    for name, device, paths in jobs:
        if name in existing and not replace:
            if existing[name] == sorted(str(p) for p in paths):
                if not check_damage or name not in lib.damaged([name]):
                    already.append(name)
                    continue
                log.warning(
                    "%s is enrolled from the same photos but its stored fingerprint is damaged: rebuilding it", name
                )
                todo.append((name, device, [str(p) for p in paths]))
                continue
            raise SCIConfigError(
                "library.camera",
                f"{name!r} is already in {lib.path}, enrolled from other photos",
                "pass library.replace=true to re-enrol it, or choose another library.camera name",
            )
        todo.append((name, device, [str(p) for p in paths]))
    if already:
        log.info("%d cameras already enrolled from the same photos: %s", len(already), ", ".join(already))
    enrolled, skipped = [], []
    fn = partial(estimate_camera, residuals=residuals)
    for _, out in run_tasks(fn, todo, scheduler, workers, "fingerprints"):
        if "reason" in out:
            log.warning("camera %s not enrolled: %s", out["name"], out["reason"])
            skipped.append({"name": out["name"], "reason": out["reason"]})
            continue
        lib.enrol(out["name"], out["device"], out["fingerprint"], out["photos"], source, out.get("quality"))
        enrolled.append(out["name"])
        quality = out.get("quality") or {}
        log.info(
            "enrolled %s (%s, %d photos, scene leak %s: %s)",
            out["name"],
            out["device"],
            len(out["photos"]),
            quality.get("scene_leak", "?"),
            quality.get("level", "?"),
        )
        if quality.get("warnings"):
            log.warning("fingerprint of %s: %s", out["name"], "; ".join(quality["warnings"]))
    return {"enrolled": enrolled, "already": already, "skipped": skipped}


def repair_camera(lib: FingerprintLibrary, name: str, residuals: ResidualStore) -> Repair:
    """Rebuild camera ``name``'s fingerprint from the source photos its catalogue row lists (same device, source
    and name; no other camera is touched). Refused, naming the photo, when a source photo is missing or changed
    since enrolment (the rebuilt fingerprint would not be the one enrolled). Returns ``{"camera", "was_damaged",
    "same_as_enrolled"}``: the last says whether the rebuilt fingerprint's SHA-256 equals the catalogue's."""
    row = lib.camera(name)
    was_damaged = name in lib.damaged([name])
    for path, digest in row["photos"]:
        if not os.path.isfile(path):
            why = "is missing"
        elif digest and sha256_file(path) != digest:
            why = "changed since enrolment (SHA-256)"
        else:
            continue
        raise SCIConfigError(
            "library.camera",
            f"{name!r} cannot be rebuilt from its source photos: {path} {why}",
            "restore that photo, or enrol the camera again from the photos you have: python library.py "
            f"action=enrol library.path={lib.path.resolve()} library.camera={name} images=DIR library.replace=true",
        )
    out = estimate_camera((name, row["device"], [p for p, _ in row["photos"]]), residuals)
    if "reason" in out:
        raise SCIConfigError("library.camera", f"{name!r} cannot be rebuilt: {out['reason']}", "restore its photos")
    new = lib.enrol(name, row["device"], out["fingerprint"], out["photos"], row["source"], out.get("quality"))
    same = new["fp_sha256"] == row["fp_sha256"]
    log.info(
        "repaired %s from its %d source photos (%s)",
        name,
        len(out["photos"]),
        "the same fingerprint as enrolled" if same else "its SHA-256 differs from the enrolled one: other settings",
    )
    return {"camera": name, "was_damaged": was_damaged, "same_as_enrolled": same}


def ingest_photos(
    lib: FingerprintLibrary,
    paths: list[str],
    residuals: ResidualStore,
    scheduler: str = "local",
    workers: int = 2,
) -> Ingestion:
    """Residual (into the residual store) and index code (into the catalogue) of every photo not yet ingested
    unchanged. Returns counts and the skipped photos with their reasons."""
    known = lib.ingested()
    todo = []
    for p in map(str, paths):
        st = os.stat(p)
        if known.get(p) != (st.st_size, st.st_mtime_ns):
            todo.append(p)
    log.info("ingesting %d photos (%d already ingested, unchanged)", len(todo), len(paths) - len(todo))
    batch: list[IngestedPhoto] = []
    skipped: list[dict[str, str]] = []
    last = time.perf_counter()
    fn = partial(ingest_photo, residuals=residuals, side=lib.side)
    seconds: dict[str, float] = {}
    for _, out in run_tasks(fn, todo, scheduler, workers, "ingestion", seconds):
        if "reason" in out:
            log.warning("skipped %s: %s", out["path"], out["reason"])
            skipped.append({"path": out["path"], "reason": out["reason"]})
        else:
            batch.append(out)
        if len(batch) >= COMMIT_EVERY or (batch and time.perf_counter() - last >= COMMIT_EVERY_S):
            lib.add_photos(batch)
            batch, last = [], time.perf_counter()
    if batch:
        lib.add_photos(batch)
    return {
        "n_photos": len(paths),
        "n_ingested": len(todo) - len(skipped),
        "n_skipped": len(skipped),
        "skipped": skipped,
        "seconds": seconds,
    }
