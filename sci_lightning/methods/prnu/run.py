"""``method=prnu``: the classical PRNU baseline on the same folds and with the same outputs as the CNN.

Per camera, a fingerprint is estimated from the references: the fold's training and validation images (or, on
a fixed split, the reference photos). Each test image's residual is correlated with every fingerprint (PCE and
NCC, images centre-cropped to a common size) and takes the class of the best-matching camera by
``prnu.decision`` (``pce``, the default, or ``ncc``); both scores are written. PRNU decides per image, so only
image-level metrics exist. On a fixed split, and with ``images=DIR``, verdicts follow (:mod:`.verdicts`).

Images are chosen by :mod:`sci_lightning.data.selection` exactly as for the CNN (same folds, same skipped
files), without cutting patches: this path imports no torch and no Lightning.
"""

from __future__ import annotations

import csv
import logging
import os
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from omegaconf import DictConfig, OmegaConf
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from sci_lightning.data.build import parallel_map
from sci_lightning.data.images import SkippedImage, load_rgb
from sci_lightning.data.selection import Selection, select_images
from sci_lightning.errors import SCIConfigError
from sci_lightning.methods.prnu.core import GREY, block_ncc, crop_center, estimate_fingerprint, ncc, noise_residual, pce
from sci_lightning.outputs import plot_confusion_matrix, run_metadata, write_json, write_skipped

log = logging.getLogger(__name__)

DECISIONS = ("pce", "ncc")
HEAT_BLOCK = 64  # px: tiles of the local-correlation heat map


def _fingerprint(paths: list[str], kw: dict) -> np.ndarray:
    imgs = []
    for p in paths:
        try:
            imgs.append(load_rgb(p))
        except SkippedImage as err:
            log.warning("PRNU reference %s skipped: %s", p, err)
    if not imgs:
        raise SCIConfigError(
            "data",
            f"no readable reference image among {len(paths)} for a camera",
            "check the reference photos (skip reasons above)",
        )
    h, w = min(i.shape[0] for i in imgs), min(i.shape[1] for i in imgs)
    return estimate_fingerprint((crop_center(i, h, w) for i in imgs), **kw)


def score_image(path: str, fingerprints: dict[str, np.ndarray], kw: dict, heat_block: int = 0) -> dict[str, Any]:
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


def score_images(
    paths: list[str], fps: dict[str, np.ndarray], kw: dict, workers: int, what: str, heat_block: int = 0
) -> list[dict[str, Any]]:
    return list(
        parallel_map(partial(score_image, fingerprints=fps, kw=kw, heat_block=heat_block), paths, workers, what)
    )


def class_scores(scored: list[dict[str, Any]], camera_class: dict[str, int], n_cls: int) -> dict[str, np.ndarray]:
    """Per statistic, an (images, classes) array: a class owning several cameras (model level) scores its best."""
    out = {k: np.full((len(scored), n_cls), -np.inf) for k in DECISIONS}
    for row, s in enumerate(scored):
        for cam, values in s["scores"].items():
            for k, value in zip(DECISIONS, values):
                col = camera_class[cam]
                out[k][row, col] = max(out[k][row, col], value)
    return out


def residual_settings(cfg: DictConfig) -> dict[str, Any]:
    """The residual's settings (``prnu.sigma``, ``levels``, ``wavelet``) as keyword arguments."""
    return {k: cfg.prnu[k] for k in ("sigma", "levels", "wavelet")}


def selection_of(cfg: DictConfig, workers: int) -> Selection:
    """The run's images, chosen exactly as for the CNN (no patches are cut)."""
    data = OmegaConf.to_container(cfg.data, resolve=True)
    return select_images(
        data, cfg.task.name, cfg.fold, cfg.n_folds, cfg.seed, label_field=cfg.task.get("label_field"), workers=workers
    )


class References(NamedTuple):
    """What every PRNU run starts from: its images, residual settings and one fingerprint per reference camera."""

    sel: Selection
    kw: dict[str, Any]
    camera_class: dict[str, int]
    fingerprints: dict[str, np.ndarray]
    out_dir: Path


def references(cfg: DictConfig, workers: int) -> References:
    """Select the images and estimate the fingerprints of the reference cameras."""
    sel = selection_of(cfg, workers)
    kw = residual_settings(cfg)
    refs = sel.references()
    camera_class = {r.camera: sel.classes.index(r.label(sel.label_field)) for r in refs}
    fps = fingerprints_of(refs, kw, workers, "PRNU fingerprints")
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return References(sel, kw, camera_class, fps, out_dir)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """``images=DIR``: verdicts for unlabelled photos against the references; otherwise :func:`train`."""
    if not cfg.images:
        return train(cfg)
    from sci_lightning.methods.prnu.verdicts import questioned_folder_verdicts

    refs = references(cfg, os.cpu_count() or 1)
    return questioned_folder_verdicts(cfg, refs.sel, refs.fingerprints, refs.camera_class, refs.kw, refs.out_dir)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Estimate fingerprints on the references, decide on the test images, write the standard files.

    PRNU has nothing to fit beyond the fingerprints, which every run estimates from its references, so
    ``train.py method=prnu`` and ``evaluate.py method=prnu`` are the same run (and ``-m fold=...`` sweeps it).
    """
    decision = str(cfg.prnu.decision)
    workers = os.cpu_count() or 1
    sel, kw, camera_class, fps, out_dir = references(cfg, workers)
    tests = sel.split_records("test")
    # On a fixed split the same scores feed the verdicts: compute the heat maps now, not a second residual later.
    heat = HEAT_BLOCK if sel.mode != "kfold" else 0
    scored = score_images([str(r.path) for r in tests], fps, kw, workers, "PRNU test residuals", heat_block=heat)
    n_cls = len(sel.classes)
    scores = class_scores(scored, camera_class, n_cls)
    truth, pred = sel.split_labels("test"), scores[decision].argmax(1)
    with (out_dir / "predictions.csv").open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(
            [
                "path",
                "true",
                "predicted",
                "correct",
                "best_camera",
                *[f"{k}_{c}" for k in DECISIONS for c in sel.classes],
            ]
        )
        idx = DECISIONS.index(decision)
        for row, (r, t, p, s) in enumerate(zip(tests, truth, pred, scored)):
            best = max(s["scores"], key=lambda c: s["scores"][c][idx])
            cells = [f"{v:.4g}" for k in DECISIONS for v in scores[k][row]]
            wr.writerow([r.path, sel.classes[t], sel.classes[p], int(t == p), best, *cells])
    matrix = confusion_matrix(truth, pred, labels=list(range(n_cls)))
    write_json(out_dir / "confusion_matrices.json", {"classes": sel.classes, "patch": None, "image": matrix.tolist()})
    plot_confusion_matrix(
        matrix, sel.classes, out_dir / "confusion_matrix_image.png", f"PRNU (best {decision.upper()}), image level"
    )
    metrics = {
        **run_metadata(cfg, sel.classes, "prnu"),
        "model": "prnu",
        "prnu_decision": decision,
        "test/acc_image": accuracy_score(truth, pred),
        "test/acc_macro_image": balanced_accuracy_score(truth, pred),
        "test/f1_macro_image": f1_score(truth, pred, average="macro", labels=list(range(n_cls)), zero_division=0),
        **sel.summary(),
    }
    if sel.skipped:
        write_skipped(out_dir / "skipped_images.csv", sel.skipped)
    if sel.mode != "kfold":
        from sci_lightning.methods.prnu.verdicts import fixed_split_verdicts

        metrics.update(fixed_split_verdicts(cfg, sel, fps, camera_class, kw, out_dir, scored))
    write_json(out_dir / "metrics.json", metrics)  # last: marks the run finished
    log.info(
        "PRNU fold %d: image acc %.4f on %d images -> %s",
        cfg.fold,
        metrics["test/acc_image"],
        len(tests),
        out_dir / "metrics.json",
    )
    return metrics
