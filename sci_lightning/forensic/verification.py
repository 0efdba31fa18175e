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
