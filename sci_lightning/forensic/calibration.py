"""Scores that mean something: temperature scaling, calibration error, and the open-set ("unknown") threshold.

Everything is fitted on the validation images, which are never trained on and never tested on:

* **Temperature scaling** (Guo et al. 2017) of the image-level scores: calibrated probabilities are
  ``softmax(log(mean patch probability) / T)``. One parameter, so the decision (argmax) never changes; ``T`` is
  set so that the validation images' mean top-1 score equals their accuracy, smoothed by Laplace's rule (see
  :func:`fit_temperature` for why not the usual log-loss fit).
* **Expected calibration error** (ECE, 10 equal-width confidence bins) before and after, and the reliability
  diagram: how often a top-1 score of 0.8 is right.
* **Open-set threshold.** A verdict names a camera only if its calibrated probability reaches ``threshold``;
  otherwise it is "unknown". Validation images are all from known cameras, so an unknown camera is imitated by
  scoring each validation image *as if its own camera were not a candidate* (its class removed, the rest
  renormalised): the threshold is set so that at most ``target_false_attribution`` of these impostor scores would
  still name a camera. The leave-one-camera-out experiment measures how well that carries over to a camera the
  network never saw (README "Forensic protocol"). With only two candidate cameras that imitation is impossible
  (one candidate is left, with probability 1); the threshold then rejects at most that share of the *correctly*
  attributed validation images instead (``threshold_rule = "genuine"``).
* **Platt scaling** of a match score (PRNU's PCE) into P(match), fitted on validation image x camera pairs: for
  methods that score one photo against one camera rather than over a closed set of classes.

Pure NumPy / SciPy / scikit-learn: every method's scores go through the same maths.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import brentq

from sci_lightning.forensic.rules import PlattRule
from sci_lightning.outputs import Metrics

EPS = 1e-12


def calibrated_probs(mean_probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(p) / T)`` row-wise; ``T = 1`` returns the (renormalised) input."""
    z = np.log(np.clip(np.asarray(mean_probs, dtype=np.float64), EPS, None)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(mean_probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature at which the validation images' mean top-1 score equals their smoothed accuracy.

    Accuracy is smoothed by Laplace's rule of succession, ``(k + 1) / (n + 2)`` for ``k`` of ``n`` images
    right. Why not the usual log-loss fit: forensic validation sets are small, and there (measured on the
    real photos of ``../shared/realdata``) one confidently wrong image drove the log-loss fit to T = 43
    (every score near uniform), while a set with every image right drives log-loss or Brier fits to T -> 0
    (every future verdict "certain", so a camera never seen could never come out "unknown"). Matching the mean
    confidence to what ``n`` images can support is one equation in one unknown, monotone in T, and states
    exactly what an examiner can check: "on validation, a score of 0.9 was right 9 times in 10 on average".
    Searched over T in [e^-4, e^4].
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    if n == 0:
        return 1.0
    target = (int((np.asarray(mean_probs).argmax(1) == labels).sum()) + 1) / (n + 2)

    def gap(log_t: float) -> float:  # mean confidence minus target; decreasing in T
        return float(calibrated_probs(mean_probs, math.exp(log_t)).max(1).mean() - target)

    lo, hi = -4.0, 4.0
    if gap(lo) <= 0:
        return math.exp(lo)
    if gap(hi) >= 0:
        return math.exp(hi)
    return float(math.exp(brentq(gap, lo, hi, xtol=1e-6)))


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> tuple[float, list[dict[str, float]]]:
    """ECE of the top-1 scores and the per-bin (confidence, accuracy, count) table."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    if len(labels) == 0:
        return float("nan"), []
    conf, correct = probs.max(1), (probs.argmax(1) == labels).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        m = which == b
        if m.any():
            bins.append(
                {
                    "lo": float(edges[b]),
                    "hi": float(edges[b + 1]),
                    "confidence": float(conf[m].mean()),
                    "accuracy": float(correct[m].mean()),
                    "count": int(m.sum()),
                }
            )
            ece += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(ece), bins


def impostor_scores(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each image's best score once its own class is removed and the rest renormalised."""
    probs = np.asarray(probs, dtype=np.float64).copy()
    rows = np.arange(len(labels))
    probs[rows, labels] = 0.0
    return probs.max(1) / np.clip(probs.sum(1), EPS, None)


def open_set_threshold(scores: np.ndarray, target: float) -> float | None:
    """Smallest threshold at which at most ``target`` of ``scores`` (impostor scores) reach it."""
    scores = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    if len(scores) == 0:
        return None
    allowed = int(math.floor(target * len(scores)))
    if allowed >= len(scores):
        return 0.0
    return float(min(1.0, np.nextafter(scores[allowed], np.inf)))


@dataclass
class Calibration:
    """What a verdict needs to turn image scores into calibrated probabilities and a decision."""

    method: str = "temperature"
    temperature: float = 1.0
    threshold: float | None = None  # calibrated top-1 probability needed to name a camera
    threshold_rule: str = "impostor"  # impostor (at most the target of imitated unknowns pass) | genuine
    target_false_attribution: float = 0.05
    n_images: int = 0
    ece_before: float = float("nan")
    ece_after: float = float("nan")
    bins_before: list[dict[str, float]] = field(default_factory=list)
    bins_after: list[dict[str, float]] = field(default_factory=list)
    # the frame sizes (height, width) of each class's reference photos: a verdict says when a questioned photo
    # is of none of them (turned, cropped, resized: a method that reads pixels as stored cannot tell)
    frames: dict[str, list[list[int]]] = field(default_factory=dict)

    def to_dict(self) -> Metrics:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Calibration | None:
        if not data:
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def calibrate(mean_probs: np.ndarray, labels: np.ndarray, target_false_attribution: float = 0.05) -> Calibration:
    """Fit the temperature and the open-set threshold on validation images' mean patch probabilities."""
    mean_probs, labels = np.asarray(mean_probs, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    t = fit_temperature(mean_probs, labels)
    after = calibrated_probs(mean_probs, t)
    ece_b, bins_b = reliability(calibrated_probs(mean_probs, 1.0), labels)
    ece_a, bins_a = reliability(after, labels)
    if mean_probs.shape[1] >= 3:
        rule, threshold = "impostor", open_set_threshold(impostor_scores(after, labels), target_false_attribution)
    else:
        rule, threshold = "genuine", genuine_threshold(after, labels, target_false_attribution)
    return Calibration(
        "temperature", t, threshold, rule, target_false_attribution, len(labels), ece_b, ece_a, bins_b, bins_a
    )


def genuine_threshold(probs: np.ndarray, labels: np.ndarray, target: float) -> float | None:
    """Largest threshold that rejects at most ``target`` of the correctly attributed images."""
    right = probs.argmax(1) == labels
    scores = np.sort(probs.max(1)[right])
    if len(scores) == 0:
        return None
    return float(scores[int(math.floor(target * len(scores)))])


def signed_log(x: np.ndarray) -> np.ndarray:
    """``sign(x) * log(1 + |x|)``: a score spanning orders of magnitude (PCE) on a scale a logistic fit can use."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.log1p(np.abs(x))


def platt_probability(scores: np.ndarray, a: float, b: float) -> np.ndarray:
    """P(match | score) = ``1 / (1 + exp(-(a * signed_log(score) + b)))``."""
    return 1 / (1 + np.exp(-(a * signed_log(scores) + b)))


def fit_platt(scores: np.ndarray, is_match: np.ndarray) -> PlattRule | None:
    """Platt scaling (logistic regression on :func:`signed_log` of the score) of labelled pairs.

    Returns ``a``, ``b``, the number of pairs and the reliability (ECE and bins) of the fitted probabilities on
    those pairs, or None when the pairs hold only matches or only non-matches.
    """
    from sklearn.linear_model import LogisticRegression

    scores, y = np.asarray(scores, dtype=np.float64), np.asarray(is_match, dtype=np.int64)
    if len(set(y.tolist())) < 2:
        return None
    # C=100: nearly unregularised; the pairs of a validation set are few and the two parameters need no prior.
    model = LogisticRegression(C=100.0).fit(signed_log(scores)[:, None], y)
    a, b = float(model.coef_[0, 0]), float(model.intercept_[0])
    prob = platt_probability(scores, a, b)
    ece, bins = reliability(np.stack([1 - prob, prob], axis=1), y)
    return {"method": "platt", "a": a, "b": b, "n_pairs": len(y), "ece_after": ece, "bins_after": bins}
