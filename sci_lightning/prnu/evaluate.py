"""``python evaluate.py method=prnu``: the classical PRNU baseline on the same folds and with the same outputs.

Per camera, a fingerprint is estimated from the references: the fold's training and validation images (or, on
a fixed split, the reference photos). Each test image's residual is correlated with every fingerprint (PCE and
NCC, images centre-cropped to a common size) and takes the class of the best-matching camera by
``prnu.decision`` (``pce``, the default, or ``ncc``); both scores are written. PRNU decides per image, so only
image-level metrics exist. On a fixed split, and with ``images=DIR``, verdicts follow (:mod:`.verdicts`).
"""

from __future__ import annotations

import csv
import logging
import os
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from sci_lightning.data.build import parallel_map
from sci_lightning.data.images import SkippedImage, load_rgb
from sci_lightning.errors import SCIConfigError
from sci_lightning.prnu.core import GREY, block_ncc, crop_center, estimate_fingerprint, ncc, noise_residual, pce
from sci_lightning.reporting import plot_confusion_matrix, write_json
from sci_lightning.train import build_datamodule, run_metadata

log = logging.getLogger(__name__)

DECISIONS = ("pce", "ncc")
HEAT_BLOCK = 64  # px: tiles of the local-correlation heat map


def _decision(cfg: DictConfig) -> str:
    decision = str(cfg.prnu.get("decision", "pce")).lower()
    if decision not in DECISIONS:
        raise SCIConfigError("prnu.decision", f"is {decision!r}", f"use one of {', '.join(DECISIONS)}")
    return decision


def _fingerprint(paths: list[str], kw: dict) -> np.ndarray:
    imgs = []
    for p in paths:
        try:
            imgs.append(load_rgb(p))
        except SkippedImage as err:
            log.warning("PRNU reference %s skipped: %s", p, err)
    if not imgs:
        raise SCIConfigError("data", f"no readable reference image among {len(paths)} for a camera",
                             "check the reference photos (skip reasons above)")
    h, w = min(i.shape[0] for i in imgs), min(i.shape[1] for i in imgs)
    return estimate_fingerprint((crop_center(i, h, w) for i in imgs), **kw)


def score_image(path: str, fingerprints: dict[str, np.ndarray], kw: dict,
                heat_block: int = 0) -> dict[str, Any]:
    """PCE and NCC of one photo against every fingerprint; with ``heat_block``, the best camera's local NCC map.

    Unreadable photos come back as ``{"reason": ...}`` instead of raising (they run in worker processes).
    """
    try:
        img = load_rgb(path)
    except SkippedImage as err:
        return {"reason": str(err)}
    w, grey = noise_residual(img, **kw), img.astype(np.float32) @ GREY
    scores, crops = {}, {}
    for cam, fp in fingerprints.items():
        h, wd = min(fp.shape[0], w.shape[0]), min(fp.shape[1], w.shape[1])
        k, r, i = crop_center(fp, h, wd), crop_center(w, h, wd), crop_center(grey, h, wd)
        scores[cam] = (pce(k * i, r)[0], ncc(k * i, r))
        crops[cam] = (k * i, r, ((w.shape[0] - h) // 2, (w.shape[1] - wd) // 2))
    out: dict[str, Any] = {"scores": scores}
    if heat_block:
        best = max(scores, key=lambda c: scores[c][0])
        ki, r, origin = crops[best]
        out.update(heat_camera=best, heat_map=block_ncc(ki, r, heat_block), heat_origin=origin)
    return out


def fingerprints_of(records: list, kw: dict, workers: int, what: str) -> dict[str, np.ndarray]:
    """One fingerprint per camera of ``records`` (estimated in parallel over cameras)."""
    cameras = sorted({r.camera for r in records})
    jobs = [[str(r.path) for r in records if r.camera == cam] for cam in cameras]
    return dict(zip(cameras, parallel_map(partial(_fingerprint, kw=kw), jobs, workers, what)))


def score_images(paths: list[str], fps: dict[str, np.ndarray], kw: dict, workers: int, what: str,
                 heat_block: int = 0) -> list[dict[str, Any]]:
    return list(parallel_map(partial(score_image, fingerprints=fps, kw=kw, heat_block=heat_block), paths,
                             workers, what))


def class_scores(scored: list[dict[str, Any]], camera_class: dict[str, int], n_cls: int) -> dict[str, np.ndarray]:
    """Per statistic, an (images, classes) array: a class owning several cameras (model level) scores its best."""
    out = {k: np.full((len(scored), n_cls), -np.inf) for k in DECISIONS}
    for row, s in enumerate(scored):
        for cam, values in s["scores"].items():
            for k, value in zip(DECISIONS, values):
                col = camera_class[cam]
                out[k][row, col] = max(out[k][row, col], value)
    return out


def run_prnu(cfg: DictConfig) -> dict[str, Any]:
    """Estimate fingerprints on the references, decide on the test images, write the standard files."""
    decision = _decision(cfg)  # before any work: a typo should not cost a fingerprint estimation
    dm = build_datamodule(cfg)
    kw = {k: cfg.prnu[k] for k in ("sigma", "levels", "wavelet")}
    workers = os.cpu_count() or 1
    refs = dm.split_records("train") + dm.split_records("val")
    camera_class = {r.camera: dm.classes.index(r.label(dm.label_field)) for r in refs}
    fps = fingerprints_of(refs, kw, workers, "PRNU fingerprints")
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.get("images"):
        from sci_lightning.prnu.verdicts import questioned_folder_verdicts

        return questioned_folder_verdicts(cfg, dm, fps, camera_class, kw, out_dir)
    tests = dm.split_records("test")
    # On a fixed split the same scores feed the verdicts: compute the heat maps now, not a second residual later.
    heat = HEAT_BLOCK if dm.mode != "kfold" else 0
    scored = score_images([str(r.path) for r in tests], fps, kw, workers, "PRNU test residuals", heat_block=heat)
    n_cls = len(dm.classes)
    scores = class_scores(scored, camera_class, n_cls)
    truth, pred = dm.split_labels("test"), scores[decision].argmax(1)
    with (out_dir / "predictions.csv").open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["path", "true", "predicted", "correct", "best_camera",
                     *[f"{k}_{c}" for k in DECISIONS for c in dm.classes]])
        idx = DECISIONS.index(decision)
        for row, (r, t, p, s) in enumerate(zip(tests, truth, pred, scored)):
            best = max(s["scores"], key=lambda c: s["scores"][c][idx])
            cells = [f"{v:.4g}" for k in DECISIONS for v in scores[k][row]]
            wr.writerow([r.path, dm.classes[t], dm.classes[p], int(t == p), best, *cells])
    matrix = confusion_matrix(truth, pred, labels=list(range(n_cls)))
    write_json(out_dir / "confusion_matrices.json", {"classes": dm.classes, "patch": None, "image": matrix.tolist()})
    plot_confusion_matrix(matrix, dm.classes, out_dir / "confusion_matrix_image.png",
                          f"PRNU (best {decision.upper()}), image level")
    metrics = {**run_metadata(cfg, dm), "model": "prnu", "method": "prnu", "prnu_decision": decision,
               "test/acc_image": accuracy_score(truth, pred),
               "test/acc_macro_image": balanced_accuracy_score(truth, pred),
               "test/f1_macro_image": f1_score(truth, pred, average="macro", labels=list(range(n_cls)),
                                               zero_division=0),
               **dm.summary()}
    if dm.mode != "kfold":
        from sci_lightning.prnu.verdicts import fixed_split_verdicts

        metrics.update(fixed_split_verdicts(cfg, dm, fps, camera_class, kw, out_dir, scored))
    write_json(out_dir / "metrics.json", metrics)  # last: marks the run finished
    log.info("PRNU fold %d: image acc %.4f on %d images -> %s", cfg.fold, metrics["test/acc_image"], len(tests),
             out_dir / "metrics.json")
    return metrics
