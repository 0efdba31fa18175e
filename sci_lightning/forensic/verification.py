"""The verification view of any method: does this (crop or photo, camera) pair match? ROC AUC, TPR at low FPR.

Identification asks "which camera?"; a forensic examiner just as often asks "did *this* camera take it?", with a
false-match rate fixed in advance. Every (item, candidate camera) pair is one trial, a match when the camera is
the item's own (at model level: when the camera's class is the item's class).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

FPR_TARGET = 0.01


def verification_metrics(scores: np.ndarray, is_match: np.ndarray, fpr_target: float = FPR_TARGET) -> dict[str, Any]:
    """``roc_auc``, ``tpr_at_fpr`` (the highest true-match rate with a false-match rate <= ``fpr_target``) and the
    ROC curve (``fpr``, ``tpr``); NaN when the trials hold only matches or only non-matches."""
    scores, is_match = np.asarray(scores, dtype=np.float64), np.asarray(is_match, dtype=bool)
    if is_match.all() or not is_match.any():
        return {"roc_auc": float("nan"), "tpr_at_fpr": float("nan"), "fpr": [], "tpr": []}
    fpr, tpr, _ = roc_curve(is_match, scores)
    return {
        "roc_auc": float(roc_auc_score(is_match, scores)),
        "tpr_at_fpr": float(tpr[fpr <= fpr_target].max()),
        "fpr": fpr.tolist(),
        "tpr": tpr.tolist(),
    }


def crop_metrics(
    crop_scores: list[np.ndarray], cameras: list[str], truth: np.ndarray, camera_class: dict[str, int], n_cls: int
) -> dict[str, Any]:
    """Every crop decided on its own (``test/acc_crop``) and the verification view over (crop, camera) pairs.

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
    return {
        "test/acc_crop": float(np.mean(right)),
        "test/roc_auc": ver["roc_auc"],
        "test/tpr_at_fpr_0.01": ver["tpr_at_fpr"],
        "n_test_crops": len(right),
        "fpr": ver["fpr"],
        "tpr": ver["tpr"],
    }
