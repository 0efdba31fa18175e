import numpy as np

from sci_lightning.forensic.calibration import (
    calibrate,
    calibrated_probs,
    fit_temperature,
    impostor_scores,
    open_set_threshold,
    reliability,
)


def _overconfident(n=400, c=3, seed=0):
    """Scores that are right 70% of the time but claim ~97%: temperature scaling must soften them."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    pred = np.where(rng.random(n) < 0.7, labels, (labels + rng.integers(1, c, n)) % c)
    p = np.full((n, c), 0.015)
    p[np.arange(n), pred] = 0.97
    return p / p.sum(1, keepdims=True), labels


def test_temperature_scaling_reduces_calibration_error_and_keeps_decisions():
    p, y = _overconfident()
    t = fit_temperature(p, y)
    assert t > 1.5  # overconfident scores are softened
    after = calibrated_probs(p, t)
    assert np.array_equal(after.argmax(1), p.argmax(1))
    ece_before, _ = reliability(p, y)
    ece_after, bins = reliability(after, y)
    assert ece_before > 0.2 and ece_after < 0.05 and sum(b["count"] for b in bins) == len(y)
    assert abs(after.max(1).mean() - 0.7) < 0.05


def test_open_set_threshold_bounds_the_impostor_attribution_rate():
    p, y = _overconfident(seed=1)
    cal = calibrate(p, y, target_false_attribution=0.1)
    imp = impostor_scores(calibrated_probs(p, cal.temperature), y)
    assert (imp >= cal.threshold).mean() <= 0.1
    assert open_set_threshold(np.array([0.9, 0.8, 0.7, 0.6]), 0.25) > 0.8  # one of four may pass: 0.9
    assert open_set_threshold(np.array([]), 0.1) is None


def test_calibration_does_not_modify_its_inputs():
    p, y = _overconfident(seed=2)
    p0, y0 = p.copy(), y.copy()
    calibrate(p, y)
    impostor_scores(p, y)
    assert np.array_equal(p, p0) and np.array_equal(y, y0)


def test_separable_validation_does_not_make_every_score_certain():
    """All validation images right: T stays finite and confidence near (n+1)/(n+2), not 1."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 12)
    p = np.full((12, 3), 0.2)
    p[np.arange(12), y] = 0.6
    t = fit_temperature(p, y)
    conf = calibrated_probs(p, t).max(1).mean()
    assert 0.05 < t and abs(conf - 13 / 14) < 0.03


def test_one_confidently_wrong_image_does_not_flatten_every_score():
    """Brier fit: 9 of 10 right at 0.95, one wrong at 0.999 -> confidence stays near 0.8-0.95, not 0.5."""
    p = np.tile([0.95, 0.05], (10, 1))
    p[9] = [0.999, 0.001]
    y = np.array([0] * 9 + [1])
    conf = calibrated_probs(p, fit_temperature(p, y)).max(1)[:9].mean()
    assert 0.75 < conf < 0.97


def test_two_classes_use_the_genuine_rule():
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4]])
    y = np.array([0, 0, 1, 1, 1])
    cal = calibrate(p, y, target_false_attribution=0.25)
    assert cal.threshold_rule == "genuine" and cal.threshold is not None and cal.threshold < 1
    right = calibrated_probs(p, cal.temperature)[[0, 1, 2, 3]].max(1)
    assert (right < cal.threshold).mean() <= 0.25
