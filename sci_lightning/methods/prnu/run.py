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

import logging
import os

from omegaconf import DictConfig

from sci_lightning.fingerprint.core import HEAT_BLOCK
from sci_lightning.fingerprint.references import require_scored
from sci_lightning.fingerprint.scoring import score_images
from sci_lightning.forensic.report import finish_test
from sci_lightning.forensic.verification import crop_metrics
from sci_lightning.methods.prnu.scoring import DECISIONS, class_scores, references
from sci_lightning.methods.prnu.verdicts import (
    calibration,
    fixed_split_verdicts,
    questioned_folder_verdicts,
    searched,
    verdict_search,
)
from sci_lightning.methods.wiring import run_log_of, run_metadata, search_of
from sci_lightning.outputs import Metrics, write_image_results

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> Metrics:
    """``images=DIR``: verdicts for unlabelled photos against the references; otherwise :func:`train`."""
    if not cfg.images:
        return train(cfg)
    return questioned_folder_verdicts(cfg, references(cfg, os.cpu_count() or 1))


def train(cfg: DictConfig) -> Metrics:
    """Estimate fingerprints on the references, decide on the test images, write the standard files.

    PRNU has nothing to fit beyond the fingerprints, which every run estimates from its references, so
    ``train.py method=prnu`` and ``evaluate.py method=prnu`` are the same run (and ``-m fold=...`` sweeps it).
    """
    decision = str(cfg.prnu.decision)
    workers = os.cpu_count() or 1
    refs = references(cfg, workers)
    sel, residuals, camera_class, fps, out_dir = refs[:5]
    tests = sel.split_records("test")
    # On a fixed split the same scores feed the verdicts: compute the heat maps now, not a second residual later,
    # and calibrate first, so test photos are searched up to the verdicts' bar.
    fixed = sel.mode != "kfold"
    heat = HEAT_BLOCK if fixed else 0
    cal = calibration(cfg, refs) if fixed else None
    search = (
        verdict_search(cfg, refs, cal)
        if fixed
        else (search_of(cfg).for_fingerprints(refs.quality) if searched(cfg, refs) else None)
    )
    paths = [str(r.path) for r in tests]
    scored = score_images(paths, fps, residuals, workers, "PRNU test residuals", heat, refs.window, search)
    require_scored(scored, paths)
    n_cls = len(sel.classes)
    scores = class_scores(scored, camera_class, n_cls)
    rank = scores["evidence"] if decision == "pce" and "evidence" in scores else scores[decision]
    truth, pred = sel.split_labels("test"), rank.argmax(1)
    stat = DECISIONS.index(decision)
    per_crop = [s["crop_scores"][:, :, stat] for s in scored]
    roc = (out_dir / "roc.png", f"PRNU ({decision.upper()})")
    crops = crop_metrics(per_crop, scored[0]["cameras"], truth, camera_class, n_cls, roc)
    columns = ["best_camera", *[f"{k}_{c}" for k in DECISIONS for c in sel.classes]]
    cells = [
        (
            str(r.path),
            [
                max(s["scores"], key=lambda c: s["scores"][c][stat]),
                *[f"{v:.4g}" for k in DECISIONS for v in scores[k][row]],
            ],
        )
        for row, (r, s) in enumerate(zip(tests, scored))
    ]
    title = f"PRNU (best {decision.upper()}), image level"
    metrics = {
        **run_metadata(cfg, sel.classes, "prnu"),
        "model": "prnu",
        "prnu_decision": decision,
        **write_image_results(out_dir, sel.classes, truth, pred, title, (columns, cells)),
        **crops,
        **sel.summary(),
    }
    if sel.mode != "kfold":
        metrics.update(fixed_split_verdicts(cfg, refs, scored, cal))
    return finish_test(int(cfg.fold), "prnu", out_dir, metrics, sel.skipped, run_log_of(cfg, "prnu"))
