"""End to end: train.py as a user runs it (one subprocess), evaluate.py and the errors in-process."""

import csv
import json
import pickle
import shutil

import pytest
import torch

from sci_lightning.errors import SCIConfigError

from conftest import FAST, run_entry, run_in_process, wandb_log

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def trained(miche_tree, tmp_path_factory):
    """One 2-epoch sensor-level run on the MICHE-named tree, logged to W&B offline."""
    run_dir = tmp_path_factory.mktemp("train_run")
    proc = run_entry(
        "train.py",
        "data=miche",
        f"data.root={miche_tree}",
        "task=sensor_level",
        *FAST,
        run_dir=run_dir,
        env={"WANDB_MODE": "offline"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir, proc


@pytest.mark.xdist_group("trained")  # one worker: the model is trained once
def test_train_writes_every_output(trained):
    run_dir, _ = trained
    for name in (
        "metrics.json",
        "predictions.csv",
        "confusion_matrix_patch.png",
        "confusion_matrix_image.png",
        ".hydra/config.yaml",
        "checkpoints/last.ckpt",
        "train.log",
    ):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "checkpoints").glob("best-*.ckpt"))
    m = json.loads((run_dir / "metrics.json").read_text())
    for key in (
        "task",
        "fold",
        "n_folds",
        "classes",
        "test/acc_patch",
        "test/acc_image",
        "test/acc_image_vote",
        "test/f1_macro_image",
        "test/roc_auc",  # the verification view over (photo, class) pairs, as every method reports it
        "test/eer",
        "n_train_images",
        "n_val_images",
        "n_test_images",
        "n_test_patches",
        "n_skipped_images",
        "n_unmatched_files",
    ):
        assert key in m, key
    assert m["task"] == "sensor_level" and m["classes"] == ["GS4_F", "GS4_R", "GT2", "IP5_F", "IP5_R"]
    assert m["n_unmatched_files"] == 1 and m["n_skipped_images"] == 0
    assert m["n_train_images"] + m["n_val_images"] + m["n_test_images"] == 40
    assert m["n_test_patches"] == 12 * m["n_test_images"]
    assert all(0 <= m[k] <= 1 for k in m if k.startswith("test/acc"))
    rows = list(csv.DictReader((run_dir / "predictions.csv").open()))
    assert len(rows) == m["n_test_images"]
    assert set(rows[0]) >= {"path", "true", "predicted", "prob_GT2"}
    acc = sum(r["true"] == r["predicted"] for r in rows) / len(rows)
    assert acc == pytest.approx(m["test/acc_image"])


@pytest.mark.xdist_group("trained")  # one worker: the model is trained once
def test_wandb_offline_run_has_metrics_and_confusion_matrices(trained):
    run_dir, proc = trained
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    images = [p.name for p in (offline / "files" / "media" / "images").glob("*.png")]
    assert any(n.startswith("confusion_matrix_patch") for n in images)
    assert any(n.startswith("confusion_matrix_image") for n in images)
    log = wandb_log(offline / "*.wandb", b"wandb/confusion_matrix/v1")
    # and as W&B's own charts (a table per level), which the dashboard can filter and compare
    tables = [p.name for p in (offline / "files" / "media" / "table").rglob("*.table.json")]
    assert any(n.startswith("confusion_matrix_image_chart") for n in tables), tables
    assert any(n.startswith("confusion_matrix_patch_chart") for n in tables), tables
    for key in (
        b"test/acc_image",
        b"val/acc_image",
        b"train/loss_epoch",
        b"sensor_level",
        b"wandb/confusion_matrix/v1",
    ):
        assert key in log, key
    assert f"wandb sync {offline}" in proc.stderr + proc.stdout


@pytest.mark.xdist_group("trained")  # one worker: the model is trained once
def test_evaluate_reproduces_test_metrics(trained, tmp_path):
    run_dir, _ = trained
    best = next((run_dir / "checkpoints").glob("best-*.ckpt"))
    run_in_process("evaluate", f"ckpt_path={best}", "logger=none", run_dir=tmp_path)
    train_m = json.loads((run_dir / "metrics.json").read_text())
    eval_m = json.loads((tmp_path / "metrics.json").read_text())
    for key in train_m:
        if key.startswith("test/") or key.startswith("n_"):
            assert eval_m[key] == train_m[key], key
    assert (tmp_path / "predictions.csv").read_text() == (run_dir / "predictions.csv").read_text()
    assert (tmp_path / "confusion_matrix_image.png").is_file()


@pytest.mark.xdist_group("trained")  # one worker: the model is trained once
def test_evaluate_scores_a_folder_of_questioned_images(trained, miche_tree, tmp_path):
    run_dir, _ = trained
    questioned = tmp_path / "questioned"
    questioned.mkdir()
    for src in sorted(miche_tree.rglob("00[12]_GS4_*_R_*"))[:3]:
        shutil.copy(src, questioned / src.name)
    (questioned / "broken.jpg").write_bytes(b"not a jpeg")
    run_in_process(
        "evaluate",
        f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
        f"images={questioned}",
        "logger=none",
        run_dir=tmp_path / "out",
    )
    rows = list(csv.DictReader((tmp_path / "out" / "predictions.csv").open()))
    assert len(rows) == 4
    broken = next(r for r in rows if r["path"].endswith("broken.jpg"))
    assert broken["skipped_reason"] and not broken["predicted"]
    ok = [r for r in rows if not r["skipped_reason"]]
    assert all(r["ranking"].count(">") == 4 and r["ranking"].startswith(r["predicted"]) for r in ok)
    assert all(
        abs(sum(float(r[f"prob_{c}"]) for c in ("GS4_F", "GS4_R", "GT2", "IP5_F", "IP5_R")) - 1) < 1e-4 for r in ok
    )
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["n_images"] == 3 and m["n_skipped_images"] == 1


@pytest.mark.xdist_group("trained")  # one worker: the model is trained once
def test_checkpoint_loads_weights_only(trained):
    run_dir, _ = trained
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["classes"] == ["GS4_F", "GS4_R", "GT2", "IP5_F", "IP5_R"]


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED_BY_CHECKPOINT",))


def test_evaluate_refuses_code_executing_checkpoint(tmp_path):
    bad = tmp_path / "evil.ckpt"
    with bad.open("wb") as fh:
        pickle.dump({"state_dict": {}, "x": _Exploit()}, fh)
    with pytest.raises(SCIConfigError, match="refused"):
        run_in_process("evaluate", f"ckpt_path={bad}", "logger=none", run_dir=tmp_path / "out")
    assert not list(tmp_path.rglob("PWNED_BY_CHECKPOINT"))


@pytest.mark.parametrize(
    "overrides,setting",
    [
        (["data=folder"], "data.root"),
        (["data=folder", "data.root=/no/such/dir"], "data.root"),
        (["data=folder", "data.root={folder}", "fold=7", "n_folds=3"], "fold"),
        (["data=folder", "data.root={folder}", "data.layout=flickr"], "data.layout"),
        (["data=folder", "data.root={folder}", "n_folds=50"], "n_folds"),
        (["fold=abc"], "fold"),
        (["method=svm"], "method"),
        (["optimized_metric=test/acc_image"], "optimized_metric"),
        (["prnu.decision=peak"], "prnu.decision"),
    ],
)
def test_clear_errors_name_the_setting(overrides, setting, folder_tree, tmp_path):
    with pytest.raises(SCIConfigError) as err:
        run_in_process("train", *[o.format(folder=folder_tree) for o in overrides], "logger=none", run_dir=tmp_path)
    assert err.value.setting == setting and err.value.fix


def test_user_error_exits_2_without_traceback(folder_tree, tmp_path):
    proc = run_entry(
        "train.py", "data=folder", f"data.root={folder_tree}", "fold=7", "n_folds=3", "logger=none", run_dir=tmp_path
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "error: fold" in proc.stderr and "fix:" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.xdist_group("trained")  # one worker: the model is trained once
def test_evaluate_cnn_at_a_crop_size(trained, tmp_path):
    """The CNN accepts the evaluation keys PRNU and the matcher take: the patches inside each co-located crop."""
    run_dir, _ = trained
    best = next((run_dir / "checkpoints").glob("best-*.ckpt"))
    m = run_in_process(
        "evaluate", f"ckpt_path={best}", "eval.crop=64", "eval.crops_per_image=2", "logger=none", run_dir=tmp_path
    )
    assert m["eval_crop"] == 64 and m["n_test_crops"] == 2 * m["n_test_images"]
    for key in ("test/acc_crop", "test/acc_image", "test/roc_auc", "test/tpr_at_fpr_0.01", "test/eer"):
        assert 0 <= m[key] <= 1, key
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    assert len(rows) == m["n_test_images"] and (tmp_path / "roc.png").is_file()
    with pytest.raises(SCIConfigError, match="holds no 32 px patch") as err:
        run_in_process("evaluate", f"ckpt_path={best}", "eval.crop=16", "logger=none", run_dir=tmp_path / "small")
    assert err.value.setting == "eval.crop"


def test_evaluate_cnn_needs_a_checkpoint(tmp_path):
    with pytest.raises(SCIConfigError, match="not set") as err:
        run_in_process("evaluate", "logger=none", run_dir=tmp_path)
    assert err.value.setting == "ckpt_path"


def test_evaluation_overrides_are_read_by_hydras_parser(tmp_path):
    from sci_lightning.methods.cnn.checkpoint import merge_overrides

    from conftest import compose_config

    saved = {
        "fold": 0,
        "data": {"root": "a", "loader": {"pin_memory": False, "batch_size": 32}},
        "model": {"name": "sci_cnn", "net": {"filters": [64, 128]}},
    }
    cfg = compose_config(
        "evaluate",
        "fold=2",
        "~data.loader.pin_memory",
        "data.loader.batch_size=7",
        "model.net.filters=[1]",
        run_dir=tmp_path,
    )
    merged = merge_overrides(saved, cfg)
    assert merged.fold == 2 and merged.data.loader.batch_size == 7 and merged.data.root == "a"
    assert "pin_memory" not in merged.data.loader  # ~key deletes the key (it used to become key=None)
    assert list(merged.model.net.filters) == [64, 128]  # the network is fixed by the checkpoint
