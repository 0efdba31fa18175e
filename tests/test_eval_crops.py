"""Evaluation at a crop size (eval.crop / eval.crops_per_image) and the verification view (ROC over pairs)."""

import json

import numpy as np
import pytest

from sci_lightning.data.patches import centred_grid
from sci_lightning.errors import SCIConfigError
from sci_lightning.forensic.verification import equal_error_rate, verification_metrics

from conftest import run_in_process

UNITS = [
    "method=prnu",
    "task=sensor_level",
    "data.profile=units_of_one_model",
    "n_folds=3",
    "data.images_per_camera=6",
    "data.image_size=128",
    "logger=none",
]


def test_centred_grid_gives_the_most_central_non_overlapping_cells():
    pos = centred_grid(100, 130, 32, 4)
    assert len(pos) == 4 and len({tuple(p) for p in pos}) == 4
    assert (pos >= 0).all() and (pos[:, 0] + 32 <= 100).all() and (pos[:, 1] + 32 <= 130).all()
    centre = pos.mean(0) + 16
    assert abs(centre[0] - 50) <= 16 and abs(centre[1] - 65) <= 16  # the block sits in the middle (within half a cell)
    ys, xs = np.unique(pos[:, 0]), np.unique(pos[:, 1])
    assert np.diff(ys).min() >= 32 and np.diff(xs).min() >= 32  # no overlap
    assert len(centred_grid(20, 20, 32, 1)) == 0


def test_verification_metrics():
    perfect = verification_metrics(np.array([5.0, 4.0, 1.0, 0.5, 0.2]), np.array([1, 1, 0, 0, 0]))
    assert perfect["roc_auc"] == 1.0 and perfect["tpr_at_fpr"] == 1.0
    rng = np.random.default_rng(0)
    match = rng.random(4000) < 0.2
    noise = verification_metrics(rng.normal(size=4000), match)
    assert abs(noise["roc_auc"] - 0.5) < 0.05 and noise["tpr_at_fpr"] < 0.1
    shifted = verification_metrics(rng.normal(size=4000) + 3 * match, match)
    assert shifted["roc_auc"] > 0.95 and shifted["tpr_at_fpr"] > noise["tpr_at_fpr"]
    assert np.isnan(verification_metrics(np.ones(3), np.ones(3, bool))["roc_auc"])
    # EER: 0 when separable, ~0.5 for noise, and between for two unit Gaussians 3 apart: Phi(-1.5) = 0.0668
    assert perfect["eer"] == 0.0 and abs(noise["eer"] - 0.5) < 0.05 and abs(shifted["eer"] - 0.0668) < 0.02
    assert np.isnan(verification_metrics(np.ones(3), np.ones(3, bool))["eer"])


def test_equal_error_rate_interpolates_where_misses_meet_false_matches():
    # two of four non-matches above the last match: the ROC goes (0,0) (0,.5) (.5,.5) (.5,1) (1,1)
    m = verification_metrics(np.array([9.0, 8.0, 7.0, 6.0, 5.0, 4.0]), np.array([1, 0, 0, 1, 0, 0]))
    assert m["eer"] == pytest.approx(0.5)  # FPR = FNR = 0.5 on the segment (0, .5) -> (.5, .5)
    fpr, tpr = np.array([0.0, 0.0, 0.25, 1.0]), np.array([0.0, 0.6, 0.9, 1.0])
    # on the segment (0, .6) -> (.25, .9): FPR = .25 t, FNR = .4 - .3 t, equal at t = .4 / .55
    assert equal_error_rate(fpr, tpr) == pytest.approx(0.25 * 0.4 / 0.55)


def test_prnu_at_a_crop_size_reports_crop_image_and_verification_metrics(tmp_path):
    run_in_process("evaluate", *UNITS, "eval.crop=full", run_dir=tmp_path / "whole")  # full = null: the whole photo
    run_in_process("evaluate", *UNITS, "eval.crop=32", "eval.crops_per_image=4", run_dir=tmp_path / "crops")
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    crops = json.loads((tmp_path / "crops" / "metrics.json").read_text())
    assert whole["test/acc_crop"] == whole["test/acc_image"] and whole["n_test_crops"] == whole["n_test_images"]
    assert crops["n_test_crops"] == 4 * crops["n_test_images"]
    for m in (whole, crops):
        assert 0 <= m["test/acc_crop"] <= 1 and 0.5 < m["test/roc_auc"] <= 1 and 0 <= m["test/tpr_at_fpr_0.01"] <= 1
        assert 0 <= m["test/eer"] < 0.5
    # 32 px crops carry far less of the fingerprint than 128 px photos: the verification view shows it
    assert crops["test/roc_auc"] < whole["test/roc_auc"] or whole["test/roc_auc"] == 1.0
    assert (tmp_path / "crops" / "roc.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "overrides,setting",
    [
        (["eval.crop=4096"], "eval.crop"),  # larger than the photos
        (["eval.crop=8"], "eval.crop"),  # too small to mean anything
        (["eval.crops_per_image=0"], "eval.crops_per_image"),
    ],
)
def test_bad_crop_settings_name_the_setting(overrides, setting, tmp_path):
    with pytest.raises(SCIConfigError) as err:
        run_in_process("evaluate", *UNITS, *overrides, run_dir=tmp_path)
    assert err.value.setting == setting


def test_a_method_without_crop_evaluation_says_so(tmp_path):
    with pytest.raises(SCIConfigError, match="does not evaluate at a crop size") as err:
        run_in_process("train", "eval.crop=64", "logger=none", run_dir=tmp_path)
    assert err.value.setting == "eval.crop"
