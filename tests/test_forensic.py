"""The forensic protocol end to end: references -> questioned photos -> verdicts, calibration, open set."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import FAST, run_in_process
from fakedata import camera_image, make_folder_tree, write_jpeg

# X1 gets no references: its photos should come out 'unknown'. The fake cameras differ mostly by a colour cast,
# and X's is unlike A, B and C's. (A left-out camera whose cast is close to a known one -- device "D" is
# close to "A" -- is attributed to it with high confidence by the CNN: a closed-set network has no notion of
# "none of these" beyond its scores, which is why PRNU's PCE threshold is the stronger open-set test.)
CAMERAS = [("A", "A1"), ("B", "B1"), ("C", "C1"), ("X", "X1")]


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("forensic")
    make_folder_tree(root / "refs", CAMERAS, per_camera=10)
    for device, camera in CAMERAS:
        for k in range(4):  # other scenes than the references
            write_jpeg(root / "questioned" / device / camera / f"q_{k:03d}.jpg", camera_image(device, camera, 500 + k))
    return root


def _fixed(case):
    return [
        "data=folder",
        "data.split.mode=roots",
        f"data.reference_root={case / 'refs'}",
        f"data.questioned_root={case / 'questioned'}",
        "data.split.exclude_reference=[X/X1]",
        "data.split.val_fraction=0.3",
        "task=sensor_level",
        "logger=none",
    ]


def _rows(path):
    return list(csv.DictReader(path.open()))


@pytest.fixture(scope="module")
def cnn_run(case, tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn")
    run_in_process(
        "train",
        *_fixed(case),
        *FAST,
        "n_folds=10",  # debug=fast's other settings; a fixed split has no folds, n_folds as the default
        "trainer.max_epochs=8",
        "trainer.deterministic=true",
        "torch_threads=1",
        run_dir=out,
    )
    return out


def test_cnn_fixed_split_writes_calibrated_verdicts_and_finds_the_unknown_camera(cnn_run):
    m = json.loads((cnn_run / "metrics.json").read_text())
    assert m["split_mode"] == "roots" and m["n_test_images"] == 12 and m["n_unknown_camera_images"] == 4
    assert m["n_known_camera_images"] == 12
    cal = json.loads((cnn_run / "calibration.json").read_text())
    assert cal["temperature"] > 0 and 0 < cal["threshold"] <= 1 and cal["n_images"] > 0
    assert (cnn_run / "reliability.png").stat().st_size > 1000
    rows = _rows(cnn_run / "verdicts.csv")
    assert len(rows) == 16
    known = [r for r in rows if r["true"] != "unknown"]
    assert sum(r["camera1"] == r["true"] for r in known) >= 11  # the true camera ranked first (easy data)
    unknown = [r for r in rows if r["true"] == "unknown"]
    assert len(unknown) == 4 and m["open/unknown_rate_unknown"] >= 0.75  # the left-out camera: mostly unknown
    assert m["open/unknown_rate_unknown"] == sum(r["decision"] == "unknown" for r in unknown) / 4
    report = (cnn_run / "verdict_report.md").read_text()
    assert "calibrated by temperature scaling" in report and report.count("![heat map") == 16
    assert len(list((cnn_run / "verdicts").glob("*.png"))) == 16


def test_evaluate_images_dir_gives_calibrated_verdicts(cnn_run, case, tmp_path):
    ckpt = next((cnn_run / "checkpoints").glob("best-*.ckpt"))
    out = tmp_path / "eval"
    run_in_process("evaluate", f"ckpt_path={ckpt}", f"images={case / 'questioned' / 'B'}", "logger=none", run_dir=out)
    m = json.loads((out / "metrics.json").read_text())
    assert m["calibrated"] is True and m["n_images"] == 4
    rows = _rows(out / "verdicts.csv")
    assert [r["camera1"] for r in rows] == ["B/B1"] * 4
    cal = json.loads((cnn_run / "calibration.json").read_text())
    for r in rows:  # the decision follows the stored threshold
        assert (r["decision"] == "B/B1") == (float(r["score1"]) >= cal["threshold"] - 1e-4)
    assert len(list((out / "verdicts").glob("*.png"))) == 4 and (out / "verdict_report.md").is_file()
    assert (out / "reliability.png").stat().st_size > 1000


@pytest.mark.slow
def test_prnu_fixed_split_and_questioned_folder(case, tmp_path):
    run_in_process("evaluate", "method=prnu", *_fixed(case), "verdict.max_heatmaps=3", run_dir=tmp_path / "fixed")
    m = json.loads((tmp_path / "fixed" / "metrics.json").read_text())
    assert m["test/acc_image"] == 1.0 and m["open/correct_attribution_known"] == 1.0
    assert m["open/unknown_rate_unknown"] == 1.0  # nothing clears the bar for the camera without references
    report = (tmp_path / "fixed" / "verdict_report.md").read_text()
    assert len(list((tmp_path / "fixed" / "verdicts").glob("*.png"))) == 3  # verdict.max_heatmaps
    assert "heat maps drawn for the first 3 of 16 images" in report and report.count("## ") == 16
    cal = json.loads((tmp_path / "fixed" / "calibration.json").read_text())
    assert cal["method"] == "false_alarm" and cal["impostor_false_attribution"] <= cal["target_false_attribution"]
    rows = _rows(tmp_path / "fixed" / "verdicts.csv")
    named = [r for r in rows if r["decision"] != "unknown"]
    assert named and all(float(r["score1"]) >= 0.5 for r in named)  # a named camera never below P(match) 0.5
    assert all(float(r["log10_p_false_alarm"]) <= cal["log10_bar"] for r in named)
    assert {r["transform"] for r in named} == {"aligned"}  # as-stored photos: the fast path, nothing searched
    assert all(int(r["hypotheses_searched"]) > 3 for r in rows if r["true"] == "unknown")  # nothing cleared: searched
    run_in_process("evaluate", "method=prnu", "geometry=none", *_fixed(case), run_dir=tmp_path / "none")
    assert json.loads((tmp_path / "none" / "calibration.json").read_text())["method"] == "platt"  # as before
    run_in_process(
        "evaluate", "method=prnu", *_fixed(case), f"images={case / 'questioned' / 'X'}", run_dir=tmp_path / "dir"
    )
    rows = _rows(tmp_path / "dir" / "verdicts.csv")
    assert len(rows) == 4 and all(r["decision"] == "unknown" for r in rows)


@pytest.mark.parametrize("model", ["baroffio", "tuama", "bondi", "mislnet"])
def test_every_peer_runs_the_fixed_split(model, tmp_path, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"big-{model}")
    cams = [("A", "A1"), ("B", "B1"), ("C", "C1")]
    make_folder_tree(root / "refs", cams, per_camera=6, size=(256, 256))
    make_folder_tree(root / "questioned", cams, per_camera=2, size=(256, 256))
    args = [
        "data=folder",
        "data.split.mode=roots",
        f"data.reference_root={root / 'refs'}",
        f"data.questioned_root={root / 'questioned'}",
        "data.split.val_fraction=0.34",
        "task=sensor_level",
        "logger=none",
        f"model={model}",
        "trainer.max_epochs=1",
        "+trainer.enable_progress_bar=false",
        "verdict.max_heatmaps=0",
    ]
    run_in_process("train", *args, run_dir=tmp_path)
    assert len(_rows(tmp_path / "verdicts.csv")) == 6 and (tmp_path / "calibration.json").is_file()
    assert json.loads((tmp_path / "metrics.json").read_text())["model"] == model


@pytest.mark.slow
def test_every_method_is_measured_on_the_same_transformed_copies(cnn_run, case, tmp_path):
    """eval.transform: the CNN (evaluate.py ckpt_path=...) and PRNU score the same deterministic copies."""
    ckpt = next((cnn_run / "checkpoints").glob("best-*.ckpt"))
    m = run_in_process("evaluate", f"ckpt_path={ckpt}", "eval.transform=rot90", "logger=none", run_dir=tmp_path / "cnn")
    assert m["eval_transform"] == "rot90" and m["n_test_images"] == 12 and 0 <= m["test/acc_image"] <= 1
    assert 0 <= m["test/eer"] <= 1 and 0 <= m["test/roc_auc"] <= 1
    cnn_paths = {r["path"] for r in _rows(tmp_path / "cnn" / "predictions.csv")}
    assert all(p.endswith("-rot90.png") for p in cnn_paths)
    folder = f"images={case / 'questioned' / 'A'}"
    run_in_process("evaluate", f"ckpt_path={ckpt}", folder, "eval.transform=rot90", run_dir=tmp_path / "cnn_dir")
    turned = _rows(tmp_path / "cnn_dir" / "verdicts.csv")  # the CNN cannot tell: its verdicts say so
    assert len(turned) == 4 and all(r["size_matches_camera"] == "no" for r in turned)
    assert "turned (its sides swapped)" in (tmp_path / "cnn_dir" / "verdict_report.md").read_text()
    run_in_process("evaluate", "method=prnu", *_fixed(case), "eval.transform=rot90", run_dir=tmp_path / "prnu")
    rows = _rows(tmp_path / "prnu" / "verdicts.csv")
    assert {r["path"] for r in rows if r["true"] != "unknown"} == cnn_paths  # the very same files
    named = [r for r in rows if r["decision"] != "unknown"]
    assert all(r["decision"] == r["true"] for r in named)  # no false attribution, X1 included
    known = [r for r in rows if r["true"] != "unknown"]
    assert sum(r["decision"] == r["true"] for r in known) == 12  # turned: the same decisions as untransformed
    assert all((r["transform"], r["rotation"]) == ("whole", "90") for r in named)


def test_a_size_mismatch_is_said_in_words():
    from sci_lightning.forensic.decisions import size_mismatch

    assert size_mismatch((3000, 4000), (3000, 4000)) is None
    assert "turned" in size_mismatch((4000, 3000), (3000, 4000))
    note = size_mismatch((1200, 1600), (3000, 4000))
    assert "1600x1200" in note and "cropped, resized" in note and "method=prnu" in note
