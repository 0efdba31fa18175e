import numpy as np

from sci_lightning.calibration import (calibrate, calibrated_probs, fit_temperature, impostor_scores,
                                       open_set_threshold, reliability)


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
