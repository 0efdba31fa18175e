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
from typing import Any

from omegaconf import DictConfig
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from sci_lightning.fingerprint.references import require_scored
from sci_lightning.fingerprint.scoring import HEAT_BLOCK, score_images, search_of
from sci_lightning.forensic.figures import plot_roc
from sci_lightning.forensic.verification import crop_metrics
from sci_lightning.methods.prnu.scoring import DECISIONS, class_scores, references
from sci_lightning.methods.prnu.verdicts import (
    calibration,
    fixed_split_verdicts,
    questioned_folder_verdicts,
    searched,
    verdict_search,
)
from sci_lightning.outputs import plot_confusion_matrix, run_metadata, write_json, write_skipped
from sci_lightning.tracking import log_run

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """``images=DIR``: verdicts for unlabelled photos against the references; otherwise :func:`train`."""
    if not cfg.images:
        return train(cfg)
    return questioned_folder_verdicts(cfg, references(cfg, os.cpu_count() or 1))


def train(cfg: DictConfig) -> dict[str, Any]:
    """Estimate fingerprints on the references, decide on the test images, write the standard files.

    PRNU has nothing to fit beyond the fingerprints, which every run estimates from its references, so
    ``train.py method=prnu`` and ``evaluate.py method=prnu`` are the same run (and ``-m fold=...`` sweeps it).
    """
    decision = str(cfg.prnu.decision)
    workers = os.cpu_count() or 1
    refs = references(cfg, workers)
    sel, residuals, camera_class, fps, out_dir, _ = refs
    tests = sel.split_records("test")
    # On a fixed split the same scores feed the verdicts: compute the heat maps now, not a second residual later,
    # and calibrate first, so test photos are searched up to the verdicts' bar.
    fixed = sel.mode != "kfold"
    heat = HEAT_BLOCK if fixed else 0
    cal = calibration(cfg, refs) if fixed else None
    search = verdict_search(cfg, refs, cal) if fixed else (search_of(cfg) if searched(cfg, refs) else None)
    paths = [str(r.path) for r in tests]
    scored = score_images(paths, fps, residuals, workers, "PRNU test residuals", heat, refs.window, search)
    require_scored(scored, paths)
    n_cls = len(sel.classes)
    scores = class_scores(scored, camera_class, n_cls)
    rank = scores["evidence"] if decision == "pce" and "evidence" in scores else scores[decision]
    truth, pred = sel.split_labels("test"), rank.argmax(1)
    stat = DECISIONS.index(decision)
    per_crop = [s["crop_scores"][:, :, stat] for s in scored]
    crops = crop_metrics(per_crop, scored[0]["cameras"], truth, camera_class, n_cls)
    plot_roc(
        crops.pop("fpr"),
        crops.pop("tpr"),
        out_dir / "roc.png",
        f"PRNU ({decision.upper()}), {crops['n_test_crops']} crops x cameras",
    )
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
        **crops,
        "test/acc_macro_image": balanced_accuracy_score(truth, pred),
        "test/f1_macro_image": f1_score(truth, pred, average="macro", labels=list(range(n_cls)), zero_division=0),
        **sel.summary(),
    }
    if sel.skipped:
        write_skipped(out_dir / "skipped_images.csv", sel.skipped)
    if sel.mode != "kfold":
        metrics.update(fixed_split_verdicts(cfg, refs, scored, cal))
    write_json(out_dir / "metrics.json", metrics)  # last: marks the run finished
    log_run(
        cfg,
        "prnu",
        metrics,
        {"confusion_matrix_image": out_dir / "confusion_matrix_image.png", "roc": out_dir / "roc.png"},
    )
    log.info(
        "PRNU fold %d: image acc %.4f on %d images -> %s",
        cfg.fold,
        metrics["test/acc_image"],
        len(tests),
        out_dir / "metrics.json",
    )
    return metrics
