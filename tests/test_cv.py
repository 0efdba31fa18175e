"""Cross-validation sweeps: self-aggregating multiruns, W&B grouping, skipping finished folds."""

import json
import logging
import statistics
import subprocess
import sys

import numpy as np
import pytest
import yaml

from sci_lightning.sweep.summary import collect, summarise

from conftest import REPO, wandb_log

# one torch thread everywhere, so the basic and joblib launchers compute bit-identical folds
TINY = [
    "n_folds=3",
    "data.images_per_camera=6",
    "data.image_size=96",
    "trainer.max_epochs=1",
    "+trainer.enable_progress_bar=false",
    "torch_threads=1",
    "trainer.deterministic=true",
]


def sweep(sweep_dir, *overrides, env_mode="offline"):
    cmd = [sys.executable, "train.py", "-m", f"hydra.sweep.dir={sweep_dir}", *TINY, *overrides]
    import os

    env = {**os.environ, "WANDB_MODE": env_mode}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def cv_sweep(tmp_path_factory):
    sweep_dir = tmp_path_factory.mktemp("sweep") / "cv"
    proc = sweep(sweep_dir, "+sweep=cv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep_dir, proc


@pytest.mark.xdist_group("cv_sweep")  # one worker: the sweep is run once
def test_summary_matches_the_folds(cv_sweep):
    sweep_dir, _ = cv_sweep
    summary = json.loads((sweep_dir / "cv_summary.json").read_text())
    (group,) = summary["groups"]
    assert group["n"] == 3 and group["folds"] == [0, 1, 2] and group["missing_folds"] == []
    folds = [json.loads((sweep_dir / str(k) / "metrics.json").read_text()) for k in range(3)]
    assert sorted(m["fold"] for m in folds) == [0, 1, 2]
    for key in ("test/acc_image", "test/acc_patch", "test/f1_macro_image"):
        assert group["metrics"][key]["mean"] == pytest.approx(statistics.fmean(m[key] for m in folds))
        assert group["metrics"][key]["std"] == pytest.approx(statistics.stdev(m[key] for m in folds))
    pooled = np.asarray(group["pooled_confusion_image"]["matrix"])
    assert pooled.sum() == sum(m["n_test_images"] for m in folds) == 30  # every image tested exactly once
    assert np.asarray(group["pooled_confusion_patch"]["matrix"]).sum() == sum(m["n_test_patches"] for m in folds)
    assert (sweep_dir / "cv_confusion_matrix_image.png").is_file()
    md = (sweep_dir / "cv_summary.md").read_text()
    assert "mean ± std" in md and "3 of 3 folds finished" in md


@pytest.mark.xdist_group("cv_sweep")  # one worker: the sweep is run once
def test_wandb_runs_grouped_with_fold_job_types(cv_sweep):
    sweep_dir, proc = cv_sweep
    group = f"model_level-synthetic-sci_cnn-{sweep_dir.name}".encode()
    for k in range(3):
        log = wandb_log(sweep_dir / str(k) / "wandb" / "offline-run-*" / "*.wandb", f"fold-{k}".encode())
        assert group in log and f"fold-{k}".encode() in log
    summary_log = wandb_log(sweep_dir / "wandb" / "offline-run-*" / "*.wandb", b"cv/image_confusion_chart")
    assert group in summary_log and b"cv-summary" in summary_log and b"cv/test/acc_image_mean" in summary_log
    assert b"cv/image_confusion_chart" in summary_log  # the pooled matrix as a W&B chart too
    assert f"wandb sync {sweep_dir}/wandb/offline-run-* {sweep_dir}/*/wandb/offline-run-*" in proc.stderr + proc.stdout


@pytest.mark.xdist_group("cv_sweep")  # one worker: the sweep is run once
def test_relaunch_runs_only_unfinished_folds(cv_sweep, caplog):
    """Every job of a sweep relaunched into the same sweep dir: finished folds are skipped, the rest run."""
    from conftest import run_in_process

    sweep_dir, _ = cv_sweep
    before = {k: (sweep_dir / str(k) / "metrics.json").read_text() for k in range(3)}
    (sweep_dir / "2" / "metrics.json").unlink()  # fold 2 was killed before it finished
    caplog.set_level(logging.INFO)
    for k in range(3):  # what the relaunched multirun runs in each job dir
        run_in_process("train", *TINY, f"fold={k}", "logger=none", run_dir=sweep_dir / str(k))
    out = "\n".join(r.getMessage() for r in caplog.records)
    assert "fold 0 already finished" in out and "fold 1 already finished" in out
    assert "fold 2 already finished" not in out
    assert all((sweep_dir / str(k) / "metrics.json").read_text() == before[k] for k in (0, 1))
    assert json.loads((sweep_dir / "2" / "metrics.json").read_text())["fold"] == 2


@pytest.mark.xdist_group("cv_sweep")  # one worker: the sweep is run once
@pytest.mark.slow
def test_joblib_launcher_gives_the_same_summary(cv_sweep, tmp_path):
    sweep_dir, _ = cv_sweep
    proc = sweep(
        tmp_path / "joblib", "+sweep=cv", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", env_mode="disabled"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ours = json.loads((tmp_path / "joblib" / "cv_summary.json").read_text())["groups"][0]
    basic = json.loads((sweep_dir / "cv_summary.json").read_text())["groups"][0]
    assert ours["per_fold"] == basic["per_fold"]
    assert ours["pooled_confusion_image"]["matrix"] == basic["pooled_confusion_image"]["matrix"]


def _fake_job(sweep_dir, num, overrides, metrics=None):
    job = sweep_dir / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if metrics:
        (job / "metrics.json").write_text(json.dumps(metrics))


def test_settings_are_never_averaged_together_and_failures_are_listed(tmp_path):
    num = 0
    for task, accs in (("model_level", [0.9, 0.8, None]), ("sensor_level", [0.5, 0.7, 0.6])):
        for fold, acc in enumerate(accs):
            m = (
                None
                if acc is None
                else {
                    "task": task,
                    "data": "d",
                    "model": "m",
                    "fold": fold,
                    "n_folds": 3,
                    "test/acc_image": acc,
                    "n_test_images": 10,
                }
            )
            _fake_job(tmp_path, num, [f"task={task}", f"fold={fold}"], m)
            num += 1
    summary = summarise(tmp_path)
    by_task = {g["task"]: g for g in summary["groups"]}
    assert by_task["sensor_level"]["metrics"]["test/acc_image"]["mean"] == pytest.approx(0.6)
    assert by_task["model_level"]["metrics"]["test/acc_image"]["mean"] == pytest.approx(0.85)
    assert by_task["model_level"]["missing_folds"] == [2]
    assert by_task["model_level"]["failed_jobs"][0]["fold"] == 2
    assert "Failed job" in (tmp_path / "cv_summary.md").read_text()
    assert len(collect(tmp_path)) == 2


def test_cv_module_cli(tmp_path):
    _fake_job(
        tmp_path,
        0,
        ["fold=0"],
        {"task": "t", "data": "d", "model": "m", "fold": 0, "n_folds": 2, "test/acc_image": 1.0, "n_test_images": 3},
    )
    proc = subprocess.run(
        [sys.executable, "-m", "sci_lightning.sweep", "summary", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "1 of 2 folds finished" in proc.stdout and "folds [1]" in proc.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "sci_lightning.sweep", "summary", str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "no job folders" in bad.stderr


def test_interrupted_fold_resumes_from_last_checkpoint(tmp_path, caplog):
    from conftest import run_in_process

    args = [*TINY, "logger=csv"]
    run_in_process("train", *args, run_dir=tmp_path)
    (tmp_path / "metrics.json").unlink()  # killed after the epoch's checkpoint, before the test
    caplog.set_level(logging.INFO)
    run_in_process("train", *[a for a in args if "max_epochs" not in a], "trainer.max_epochs=2", run_dir=tmp_path)
    restored = [r.getMessage() for r in caplog.records if "Restored all states from the checkpoint" in r.getMessage()]
    assert restored and "last.ckpt" in restored[0]  # trainer.fit(ckpt_path="last") found the interrupted run's
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["fold"] == 0 and "val/acc_image" in m


@pytest.mark.slow
def test_ddp_two_cpu_processes_count_every_test_patch_once(tmp_path):
    from conftest import run_entry

    proc = run_entry(
        "train.py",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "logger=csv",
        "n_folds=3",
        "data.images_per_camera=7",
        "data.image_size=96",
        "trainer.max_epochs=1",
        "+trainer.enable_progress_bar=false",
        run_dir=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MEMBER: 2/2" in proc.stdout + proc.stderr
    m = json.loads((tmp_path / "metrics.json").read_text())
    c = json.loads((tmp_path / "confusion_matrices.json").read_text())
    assert m["n_test_patches"] % 2 == 1  # odd: a padding sampler would have counted one patch twice
    assert np.sum(c["patch"]) == m["n_test_patches"] and np.sum(c["image"]) == m["n_test_images"]
    assert m["test/acc_patch"] == pytest.approx(np.trace(c["patch"]) / np.sum(c["patch"]))
    assert m["test/acc_image"] == pytest.approx(np.trace(c["image"]) / np.sum(c["image"]))


@pytest.mark.slow
def test_submitit_local_runs_a_fold(tmp_path):
    proc = sweep(
        tmp_path / "sub",
        "fold=0",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        env_mode="disabled",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "sub" / "0" / "metrics.json").read_text())["fold"] == 0
    assert json.loads((tmp_path / "sub" / "cv_summary.json").read_text())["groups"][0]["n"] == 1


@pytest.mark.slow
def test_run_killed_mid_epoch_resumes_to_the_same_test_metrics(tmp_path, caplog):
    """SIGKILL in the middle of epoch 2 of 3, relaunch into the same run dir: same test metrics as no kill."""
    from conftest import run_entry, run_in_process

    args = [
        *[a for a in TINY if "max_epochs" not in a],
        "trainer.max_epochs=3",
        "logger=none",
        "data.loader.batch_size=32",
    ]
    run_in_process("train", *args, run_dir=tmp_path / "whole")
    steps_per_epoch = json.loads((tmp_path / "whole" / "metrics.json").read_text())["n_train_patches"] // 32 + 1
    env = {"PYTHONPATH": str(REPO / "tests")}
    killed = run_entry(
        "train.py",
        *args,
        "+callbacks.killer._target_=killer.KillAtStep",
        f"+callbacks.killer.step={steps_per_epoch + steps_per_epoch // 2}",
        run_dir=tmp_path / "killed",
        env=env,
    )
    assert killed.returncode == -9 and not (tmp_path / "killed" / "metrics.json").exists()
    assert (tmp_path / "killed" / "checkpoints" / "last.ckpt").is_file()
    caplog.set_level(logging.INFO)
    run_in_process("train", *args, run_dir=tmp_path / "killed")
    assert any("Restored all states from the checkpoint" in r.getMessage() for r in caplog.records)
    a = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    b = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    test_keys = sorted(k for k in a if k.startswith("test/"))
    assert test_keys and {k: a[k] for k in test_keys} == {k: b[k] for k in test_keys}


@pytest.mark.slow
def test_optuna_search_optimises_validation_never_test(tmp_path):
    """hparams_search=cnn_optuna: every trial returns its selected checkpoint's val/acc_image; the study's best
    value is the best of those, and no test metric reaches the sweeper."""
    proc = sweep(
        tmp_path / "optuna",
        "hparams_search=cnn_optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
        "logger=none",
        env_mode="disabled",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = [json.loads((tmp_path / "optuna" / str(k) / "metrics.json").read_text()) for k in range(2)]
    overrides = [
        yaml.safe_load((tmp_path / "optuna" / str(k) / ".hydra" / "overrides.yaml").read_text()) for k in range(2)
    ]
    assert all(any(o.startswith("model.optimizer.lr=") for o in ov) for ov in overrides)  # the space was searched
    assert all(any(o.startswith("model.net.filters=") for o in ov) for ov in overrides)
    best = yaml.safe_load((tmp_path / "optuna" / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(t["val/acc_image"] for t in trials))
    assert {"model.optimizer.lr", "model.net.dropout_keep", "model.net.filters"} <= set(best["best_params"])
