"""The verification view of any method: does this (crop or photo, camera) pair match? ROC AUC, TPR at low FPR,
equal error rate.

Identification asks "which camera?"; a forensic examiner just as often asks "did *this* camera take it?", with a
false-match rate fixed in advance. Every (item, candidate camera) pair is one trial, a match when the camera is
the item's own (at model level: when the camera's class is the item's class).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from sci_lightning.forensic.figures import plot_roc
from sci_lightning.outputs import Metrics

FPR_TARGET = 0.01


def equal_error_rate(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """The rate at which false matches and missed matches are equally frequent (FPR = 1 - TPR), linearly
    interpolated on the ROC segment where the two cross (the curve of :func:`sklearn.metrics.roc_curve`, which
    starts at (0, 0) and ends at (1, 1), so they always do)."""
    fnr = 1.0 - np.asarray(tpr, dtype=np.float64)
    fpr = np.asarray(fpr, dtype=np.float64)
    i = int(np.argmax(fnr <= fpr))  # first point where misses no longer outnumber false matches
    if i == 0:
        return float(fpr[0])
    # on the segment (i-1, i): fpr and fnr are linear in t; solve fpr(t) = fnr(t)
    d_prev, d_next = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
    t = d_prev / (d_prev - d_next)
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def verification_metrics(scores: np.ndarray, is_match: np.ndarray, fpr_target: float = FPR_TARGET) -> Metrics:
    """``roc_auc``, ``tpr_at_fpr`` (the highest true-match rate with a false-match rate <= ``fpr_target``), ``eer``
    (:func:`equal_error_rate`) and the ROC curve (``fpr``, ``tpr``); NaN when the trials hold only matches or only
    non-matches."""
    scores, is_match = np.asarray(scores, dtype=np.float64), np.asarray(is_match, dtype=bool)
    if is_match.all() or not is_match.any():
        return {"roc_auc": float("nan"), "tpr_at_fpr": float("nan"), "eer": float("nan"), "fpr": [], "tpr": []}
    fpr, tpr, _ = roc_curve(is_match, scores)
    return {
        "roc_auc": float(roc_auc_score(is_match, scores)),
        "tpr_at_fpr": float(tpr[fpr <= fpr_target].max()),
        "eer": equal_error_rate(fpr, tpr),
        "fpr": fpr.tolist(),
        "tpr": tpr.tolist(),
    }


def test_metrics(ver: dict[str, Any]) -> dict[str, float]:
    """The ``test/*`` keys of :func:`verification_metrics`' result."""
    return {"test/roc_auc": ver["roc_auc"], "test/tpr_at_fpr_0.01": ver["tpr_at_fpr"], "test/eer": ver["eer"]}


def crop_metrics(
    crop_scores: list[np.ndarray],
    cameras: list[str],
    truth: np.ndarray,
    camera_class: dict[str, int],
    n_cls: int,
    roc: tuple[Path, str] | None = None,
) -> Metrics:
    """Every crop decided on its own (``test/acc_crop``) and the verification view over (crop, camera) pairs
    (``test/roc_auc``, ``test/tpr_at_fpr_0.01``, ``test/eer``); ``roc`` = (PNG, title): the ROC curve drawn there.

    ``crop_scores[i]`` is photo ``i``'s ``(crops, cameras)`` score array (higher = better match), cameras in
    ``cameras`` order; a class owning several cameras (model level) scores its best camera. Without
    ``eval.crop`` the crop is the whole photo, so ``test/acc_crop`` equals ``test/acc_image``.
    """
    cam_cls = np.array([camera_class[c] for c in cameras])
    right, pair_scores, pair_match = [], [], []
    for per, t in zip(crop_scores, truth):
        by_class = np.full((len(per), n_cls), -np.inf)
        for j, c in enumerate(cam_cls):
            by_class[:, c] = np.maximum(by_class[:, c], per[:, j])
        right.extend(by_class.argmax(1) == t)
        pair_scores.append(np.ravel(per))
        pair_match.append(np.broadcast_to(cam_cls == t, per.shape).ravel())
    ver = verification_metrics(np.concatenate(pair_scores), np.concatenate(pair_match))
    if roc is not None:
        plot_roc(ver["fpr"], ver["tpr"], roc[0], f"{roc[1]}, {len(right)} crops x {len(cameras)} cameras")
    return {"test/acc_crop": float(np.mean(right)), **test_metrics(ver), "n_test_crops": len(right)}


def class_pair_metrics(
    scores: np.ndarray, truth: np.ndarray, n_cls: int, roc: tuple[Path, str] | None = None
) -> dict[str, float]:
    """The verification view of a classifier (the CNN): every (photo, class) pair one trial, ``scores`` the
    ``(photos, classes)`` probabilities; ``test/roc_auc``, ``test/tpr_at_fpr_0.01``, ``test/eer``."""
    scores = np.asarray(scores, dtype=np.float64)
    ver = verification_metrics(scores.ravel(), (np.arange(n_cls)[None, :] == np.asarray(truth)[:, None]).ravel())
    if roc is not None:
        plot_roc(ver["fpr"], ver["tpr"], roc[0], f"{roc[1]}, {len(scores)} photos x {n_cls} classes")
    return test_metrics(ver)
