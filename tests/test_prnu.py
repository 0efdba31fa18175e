"""The classical PRNU building blocks: a fingerprint injected into synthetic photos is found again."""

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from sci_lightning.fingerprint.core import crop_center, estimate_fingerprint, ncc, noise_residual, pce, zero_mean_total

H = W = 192
GREY = np.array([0.299, 0.587, 0.114], np.float32)
# A small units_of_one_model set: PRNU is the only difference between the 4 cameras.
SMALL_UNITS = [
    "method=prnu",
    "task=sensor_level",
    "data.profile=units_of_one_model",
    "n_folds=3",
    "data.images_per_camera=6",
    "data.image_size=96",
]


def scene(seed):
    r = np.random.default_rng(seed)
    return np.clip(gaussian_filter(r.uniform(40, 220, (H, W, 3)), (6, 6, 0)), 0, 255)


def shoot(k, seed, strength=1.0):
    """A photo of a random smooth scene through a sensor with PRNU ``k`` (multiplicative) and shot-like noise."""
    r = np.random.default_rng(seed + 1000)
    img = scene(seed) * (1 + strength * k[..., None]) + r.normal(0, 2.0, (H, W, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def sensors():
    rng = np.random.default_rng(0)
    ks = [rng.normal(0, 0.01, (H, W)).astype(np.float32) for _ in range(2)]  # 1% PRNU
    fps = [estimate_fingerprint([shoot(k, 10 * i + j) for j in range(8)]) for i, k in enumerate(ks)]
    return ks, fps


def test_injected_fingerprint_is_recovered(sensors):
    ks, fps = sensors
    query = shoot(ks[0], 999)
    w, grey = noise_residual(query), query.astype(np.float32) @ GREY
    match, _ = pce(fps[0] * grey, w)
    mismatch, _ = pce(fps[1] * grey, w)
    assert match > 60 and match > 20 * abs(mismatch), (match, mismatch)
    assert ncc(fps[0] * grey, w) > 10 * abs(ncc(fps[1] * grey, w))
    assert ncc(fps[0], ks[0]) > 0.3 > abs(ncc(fps[0], ks[1])) * 10  # the estimate resembles the true K


def test_pce_finds_the_shift_of_a_crop(sensors):
    ks, fps = sensors
    query = shoot(ks[0], 555)
    crop = query[24 : 24 + 128, 40 : 40 + 128]
    padded = np.zeros((H, W), np.float32)
    padded[:128, :128] = noise_residual(crop) * (crop.astype(np.float32) @ GREY)
    value, shift = pce(fps[0], padded, search=True)
    assert shift == (24, 40) and value > 60


def test_functions_do_not_modify_inputs(sensors):
    ks, fps = sensors
    img = shoot(ks[1], 7)
    fp = fps[0].copy()
    img_before, fp_before = img.copy(), fp.copy()
    noise_residual(img)
    estimate_fingerprint([img])
    zero_mean_total(fp)
    pce(fp, fp)
    ncc(fp, fp)
    crop_center(fp, 10, 10)
    assert np.array_equal(img, img_before) and np.array_equal(fp, fp_before)


def test_zero_mean_total_on_every_cfa_subgrid():
    x = np.random.default_rng(1).normal(5, 1, (16, 20)) + np.arange(20)
    z = zero_mean_total(x)
    for dy in (0, 1):
        for dx in (0, 1):
            sub = z[dy::2, dx::2]
            assert np.allclose(sub.mean(axis=0), 0, atol=1e-4) and np.allclose(sub.mean(axis=1), 0, atol=1e-4)


def test_evaluate_method_prnu_sweeps_folds_with_standard_outputs(tmp_path):
    """Where PRNU is the only difference between cameras (units of one model), the baseline finds it."""
    import json
    import subprocess
    import sys

    from conftest import REPO

    cmd = [
        sys.executable,
        "evaluate.py",
        "-m",
        "method=prnu",
        "fold=0,1",
        "task=sensor_level",
        "data.profile=units_of_one_model",
        "n_folds=3",
        "data.images_per_camera=9",
        "data.image_size=128",
        "logger=none",
        f"hydra.sweep.dir={tmp_path}",
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for k in (0, 1):
        job = tmp_path / str(k)
        m = json.loads((job / "metrics.json").read_text())
        assert m["method"] == "prnu" and m["fold"] == k and m["n_test_images"] == 12
        assert (job / "confusion_matrix_image.png").is_file() and (job / "predictions.csv").is_file()
    (group,) = json.loads((tmp_path / "cv_summary.json").read_text())["groups"]
    assert group["n"] == 2 and group["model"] == "prnu"
    assert group["metrics"]["test/acc_image"]["mean"] >= 0.75  # chance is 0.25; measured 0.92 on fold 0
    assert np.asarray(group["pooled_confusion_image"]["matrix"]).sum() == 24


def test_evaluate_method_prnu_ncc_decision_and_bad_decision(tmp_path):
    """prnu.decision=ncc decides by NCC, both scores are written; an unknown decision is a clear error."""
    import csv
    import json

    from sci_lightning.errors import SCIConfigError

    from conftest import run_in_process

    data = [
        "method=prnu",
        "task=sensor_level",
        "data.profile=units_of_one_model",
        "n_folds=3",
        "data.images_per_camera=9",
        "data.image_size=128",
        "logger=none",
    ]
    run_in_process("evaluate", *data, "prnu.decision=NCC", run_dir=tmp_path / "ncc")
    m = json.loads((tmp_path / "ncc" / "metrics.json").read_text())
    assert m["prnu_decision"] == "ncc" and m["test/acc_image"] >= 0.75
    rows = list(csv.DictReader((tmp_path / "ncc" / "predictions.csv").open()))
    classes = json.loads((tmp_path / "ncc" / "confusion_matrices.json").read_text())["classes"]
    for row in rows:
        ncc_scores = {c: float(row[f"ncc_{c}"]) for c in classes}
        assert row["predicted"] == max(ncc_scores, key=ncc_scores.get)
        assert all(f"pce_{c}" in row for c in classes)
    with pytest.raises(SCIConfigError) as err:
        run_in_process("evaluate", *data, "prnu.decision=peak", run_dir=tmp_path / "bad")
    assert err.value.setting == "prnu.decision" and not (tmp_path / "bad").exists()  # refused before any work


NO_TORCH_RUN = """
import sys
from pathlib import Path
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
import sci_lightning.methods.prnu
assert "torch" not in sys.modules and "lightning" not in sys.modules, "importing the PRNU package loaded torch"
from sci_lightning.run import evaluate, train
repo, out = Path(sys.argv[1]), Path(sys.argv[2])
for entry, run in (("train", train.run), ("evaluate", evaluate.run)):
    with initialize_config_dir(config_dir=str(repo / "conf"), version_base="1.3"):
        cfg = compose(config_name=entry, return_hydra_config=True, overrides=[
            "method=prnu", "task=sensor_level", "n_folds=3", "data.images_per_camera=6", "data.image_size=96",
            "logger=none", f"paths.output_dir={out / entry}"])
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    metrics = run(cfg)
    assert metrics["method"] == "prnu", metrics
    print(entry, metrics["test/acc_image"])
loaded = sorted(m for m in ("torch", "lightning", "torchmetrics") if m in sys.modules)
assert not loaded, f"a PRNU run loaded {loaded}"
"""


def test_prnu_runs_without_torch_and_without_patch_caches(tmp_path):
    """method=prnu (train.py and evaluate.py, the same run) never imports torch/Lightning and cuts no patches."""
    import os
    import subprocess
    import sys

    from conftest import REPO

    env = {**os.environ, "SCI_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-c", NO_TORCH_RUN, str(REPO), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    train, evaluate = (json.loads((tmp_path / "out" / e / "metrics.json").read_text()) for e in ("train", "evaluate"))
    assert (
        train["test/acc_image"] == evaluate["test/acc_image"]
        and train["n_test_images"] == evaluate["n_test_images"] > 0
    )
    assert (tmp_path / "cache" / "synthetic").is_dir() and not list((tmp_path / "cache").glob("patches-*"))


def test_prnu_run_is_logged_to_wandb_offline(tmp_path, monkeypatch):
    """W&B logs every run, PRNU's too (no Lightning): final metrics in the run summary, offline without a key."""
    from conftest import run_in_process, wandb_log

    monkeypatch.setenv("WANDB_MODE", "offline")
    run_in_process("evaluate", *SMALL_UNITS, "logger=wandb", run_dir=tmp_path)
    (offline,) = (tmp_path / "wandb").glob("offline-run-*")
    log = wandb_log(offline / "*.wandb", b"confusion_matrix_image_chart")
    assert b"test/acc_image" in log and b"prnu" in log and b"confusion_matrix_image_chart" in log
    run_in_process("evaluate", *SMALL_UNITS, "logger=csv", run_dir=tmp_path / "csv")
    assert (tmp_path / "csv" / "metrics.json").is_file() and not (tmp_path / "csv" / "wandb").exists()


def test_residual_store_computes_once_and_detects_damage(tmp_path, monkeypatch, caplog):
    from PIL import Image

    import sci_lightning.fingerprint.residuals as residuals_module
    from sci_lightning.fingerprint.residuals import ResidualStore

    img = shoot(np.ones((H, W), np.float32), 1)
    path = tmp_path / "photo.png"
    Image.fromarray(img).save(path)
    store = ResidualStore(tmp_path / "cache", {"sigma": 5.0, "levels": 4, "wavelet": "db4"})
    first = store.residual(path, img)
    assert np.array_equal(first, noise_residual(img))  # exactly what the denoiser gives
    (file,) = store.folder.glob("*.npz")

    def refuse(*args, **kwargs):
        raise AssertionError("denoised again")

    monkeypatch.setattr(residuals_module, "noise_residual", refuse)
    assert np.array_equal(store.residual(path, img), first)  # from disk
    monkeypatch.undo()
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the array
    file.write_bytes(bytes(data))
    assert np.array_equal(store.residual(path, img), first)  # detected (CRC), recomputed, rewritten
    assert any("damaged" in r.getMessage() for r in caplog.records)
    assert not list(store.folder.glob(".tmp-*"))  # no half-written file left
    assert ResidualStore(None, {}).folder is None


def test_prnu_numbers_are_the_same_with_and_without_the_residual_store(tmp_path):
    from conftest import run_in_process

    for name, extra in (("cold", []), ("warm", []), ("off", ["prnu.residual_cache=false"])):
        run_in_process("evaluate", *SMALL_UNITS, "logger=none", *extra, run_dir=tmp_path / name)
    csvs = {n: (tmp_path / n / "predictions.csv").read_text() for n in ("cold", "warm", "off")}
    assert csvs["cold"] == csvs["warm"] == csvs["off"]
