"""``python evaluate.py method=prnu``: the classical PRNU baseline on the same folds and with the same outputs.

Per camera, a fingerprint is estimated from the fold's training and validation images (the references); each
test image's residual is correlated with every fingerprint (PCE, images centre-cropped to a common size) and
takes the class of the best-matching camera by ``prnu.decision`` (``pce``, the default, or ``ncc``); both scores
are written. PRNU decides per image, so only image-level metrics exist.
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
from sci_lightning.errors import SCIConfigError
from sci_lightning.data.images import SkippedImage, load_rgb
from sci_lightning.prnu.core import GREY, crop_center, estimate_fingerprint, ncc, noise_residual, pce
from sci_lightning.reporting import plot_confusion_matrix, write_json
from sci_lightning.train import build_datamodule, run_metadata

log = logging.getLogger(__name__)

DECISIONS = ("pce", "ncc")


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
    h, w = min(i.shape[0] for i in imgs), min(i.shape[1] for i in imgs)
    return estimate_fingerprint((crop_center(i, h, w) for i in imgs), **kw)


def _scores(path: str, fingerprints: dict[str, np.ndarray], kw: dict) -> dict[str, tuple[float, float]]:
    img = load_rgb(path)
    w, grey = noise_residual(img, **kw), img.astype(np.float32) @ GREY
    out = {}
    for cam, fp in fingerprints.items():
        h, wd = min(fp.shape[0], w.shape[0]), min(fp.shape[1], w.shape[1])
        k, r, i = crop_center(fp, h, wd), crop_center(w, h, wd), crop_center(grey, h, wd)
        out[cam] = (pce(k * i, r)[0], ncc(k * i, r))
    return out


def run_prnu(cfg: DictConfig) -> dict[str, Any]:
    """Estimate fingerprints on the fold's references, decide on its test images, write the standard files."""
    decision = _decision(cfg)  # before any work: a typo should not cost a fingerprint estimation
    dm = build_datamodule(cfg)
    kw = {k: cfg.prnu[k] for k in ("sigma", "levels", "wavelet")}
    refs = dm.split_records("train") + dm.split_records("val")
    cameras = sorted({r.camera for r in refs})
    camera_class = {r.camera: dm.classes.index(r.label(dm.label_field)) for r in refs}
    workers = os.cpu_count() or 1
    jobs = [[str(r.path) for r in refs if r.camera == cam] for cam in cameras]
    fps = dict(zip(cameras, parallel_map(partial(_fingerprint, kw=kw), jobs, workers, "PRNU fingerprints")))
    tests = dm.split_records("test")
    scored = list(parallel_map(partial(_scores, fingerprints=fps, kw=kw), [str(r.path) for r in tests], workers,
                               "PRNU test residuals"))
    n_cls = len(dm.classes)
    # A class may own several cameras (model level): its score is its best camera's.
    class_scores = {k: np.full((len(tests), n_cls), -np.inf) for k in DECISIONS}
    for row, s in enumerate(scored):
        for cam, values in s.items():
            for k, value in zip(DECISIONS, values):
                col = camera_class[cam]
                class_scores[k][row, col] = max(class_scores[k][row, col], value)
    truth, pred = dm.split_labels("test"), class_scores[decision].argmax(1)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "predictions.csv").open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["path", "true", "predicted", "correct", "best_camera",
                     *[f"{k}_{c}" for k in DECISIONS for c in dm.classes]])
        idx = DECISIONS.index(decision)
        for row, (r, t, p, s) in enumerate(zip(tests, truth, pred, scored)):
            best = max(s, key=lambda c: s[c][idx])
            scores = [f"{v:.4g}" for k in DECISIONS for v in class_scores[k][row]]
            wr.writerow([r.path, dm.classes[t], dm.classes[p], int(t == p), best, *scores])
    matrix = confusion_matrix(truth, pred, labels=list(range(n_cls)))
    write_json(out_dir / "confusion_matrices.json", {"classes": dm.classes, "patch": None, "image": matrix.tolist()})
    plot_confusion_matrix(matrix, dm.classes, out_dir / "confusion_matrix_image.png", "PRNU (best PCE), image level")
    metrics = {**run_metadata(cfg, dm), "model": "prnu", "method": "prnu", "prnu_decision": decision,
               "test/acc_image": accuracy_score(truth, pred),
               "test/acc_macro_image": balanced_accuracy_score(truth, pred),
               "test/f1_macro_image": f1_score(truth, pred, average="macro", labels=list(range(n_cls)),
                                               zero_division=0),
               **dm.summary()}
    write_json(out_dir / "metrics.json", metrics)  # last: marks the run finished
    log.info("PRNU fold %d: image acc %.4f on %d images -> %s", cfg.fold, metrics["test/acc_image"], len(tests),
             out_dir / "metrics.json")
    return metrics
