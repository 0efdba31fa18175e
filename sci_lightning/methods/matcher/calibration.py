"""The matcher's calibrated P(match) and open-set threshold, fitted on validation photos.

Validation photos are scored against fingerprints estimated from the *training* references only (the final
fingerprints use all references; see the PRNU verdicts for the same choice). Two Platt fits: one on every
(crop, camera) logit — the crop-level P(match) shown in heat maps — and one on every (photo, camera) mean logit,
the P(match) verdicts rank by. The open-set threshold is the smallest photo-level P(match) that at most
``verdict.target_false_attribution`` of validation photos reach with a camera that is *not* theirs (their best
impostor): below it the verdict is *unknown*.
"""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np

from sci_lightning.forensic.calibration import fit_platt, open_set_threshold, platt_probability
from sci_lightning.forensic.rules import PlattRule

FALLBACK_THRESHOLD = 0.5  # uncalibrated: the network's own sigmoid, when there are no validation photos


class MatcherRule(TypedDict):
    """The matcher's calibration (``calibration.json``): Platt fits per photo and per crop, and the open-set bar."""

    photo: PlattRule
    crop: PlattRule
    threshold: float
    target_false_attribution: float
    n_images: int


def match_matrix(scored: list[dict[str, Any]], own: list[set[str]]) -> np.ndarray:
    """``(photos, cameras)`` booleans: is the camera one of the photo's own (``own[i]``)?"""
    return np.array([[c in o for c in s["cameras"]] for s, o in zip(scored, own)])


def fit(scored: list[dict[str, Any]], own: list[set[str]], target: float) -> MatcherRule | None:
    """Both Platt fits and the threshold from validation ``scored`` photos; None without both kinds of pair."""
    if not scored:
        return None
    match = match_matrix(scored, own)
    photo = np.array([[s["scores"][c] for c in s["cameras"]] for s in scored])
    crop_scores = np.concatenate([s["crop_scores"].ravel() for s in scored])
    crop_match = np.concatenate([np.broadcast_to(m, s["crop_scores"].shape).ravel() for s, m in zip(scored, match)])
    photo_fit, crop_fit = fit_platt(photo.ravel(), match.ravel()), fit_platt(crop_scores, crop_match)
    if photo_fit is None or crop_fit is None:
        return None
    p = platt_probability(photo, photo_fit["a"], photo_fit["b"])
    impostor = np.where(match, -np.inf, p).max(1)
    threshold = open_set_threshold(impostor[np.isfinite(impostor)], target)
    return MatcherRule(
        photo=photo_fit,
        crop=crop_fit,
        threshold=threshold if threshold is not None else FALLBACK_THRESHOLD,
        target_false_attribution=target,
        n_images=len(scored),
    )


def probability(logits: np.ndarray, cal: MatcherRule | None, level: str = "photo") -> np.ndarray:
    """P(match) of logits: Platt-calibrated at ``level`` (``photo`` or ``crop``), else the plain sigmoid."""
    logits = np.asarray(logits, dtype=np.float64)
    if cal is None:
        return 1 / (1 + np.exp(-logits))
    return platt_probability(logits, cal[level]["a"], cal[level]["b"])


def threshold_of(cal: MatcherRule | None) -> float:
    return float(cal["threshold"]) if cal else FALLBACK_THRESHOLD
