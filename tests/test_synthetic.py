"""The virtual cameras: determinism, labels, a real PRNU fingerprint, valid JPEGs, and the default train path."""

import csv
import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image
from scipy.ndimage import gaussian_filter

from sci_lightning.data.layouts import build_index
from sci_lightning.data.records import class_names
from sci_lightning.data.synthetic import SyntheticSettings, generate
from sci_lightning.data.synthetic.camera import cfa_masks, demosaic, sensor_patterns
from sci_lightning.errors import SCIConfigError

from conftest import REPO, run_in_process

SMALL = dict(images_per_camera=4, image_size=96)


def digest(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.jpg"))
    }


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    a = digest(generate(tmp_path / "a", SyntheticSettings(seed=3, **SMALL), workers=1))
    b = digest(generate(tmp_path / "b", SyntheticSettings(seed=3, **SMALL), workers=2))
    c = digest(generate(tmp_path / "c", SyntheticSettings(seed=4, **SMALL), workers=1))
    assert a == b and len(a) == 5 * 4
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)


@pytest.mark.parametrize(
    "profile,devices,cameras",
    [
        (
            "miche_like",
            ["SYN-A", "SYN-B", "SYN-C"],
            ["SYN-A_front", "SYN-A_rear", "SYN-B_front", "SYN-B_rear", "SYN-C"],
        ),
        ("units_of_one_model", ["SYN-U"], ["SYN-U_unit1", "SYN-U_unit2", "SYN-U_unit3", "SYN-U_unit4"]),
        (
            "many_units",
            ["SYN-M1", "SYN-M2", "SYN-M3"],
            [f"SYN-M{m}_unit{k:03d}" for m in (1, 2, 3) for k in (1, 2)],
        ),
    ],
)
def test_profiles_labels_and_counts(tmp_path, profile, devices, cameras):
    units = {"units": 2} if profile == "many_units" else {}
    index = build_index({"layout": "synthetic", "root": str(tmp_path), "profile": profile, **SMALL, **units})
    assert class_names(index.records, "device") == devices
    assert class_names(index.records, "camera") == cameras
    per_camera = {c: sum(r.camera == c for r in index.records) for c in cameras}
    assert set(per_camera.values()) == {4}
    # every camera photographs the same scenes, so content cannot give a camera away
    scenes = {c: sorted(r.scene for r in index.records if r.camera == c) for c in cameras}
    assert len({tuple(s) for s in scenes.values()}) == 1


def test_generated_once_then_reused(tmp_path):
    cfg = {"layout": "synthetic", "root": str(tmp_path), **SMALL}
    first = build_index(cfg).records[0].path
    mtime = first.stat().st_mtime_ns
    assert build_index(cfg).records[0].path == first and first.stat().st_mtime_ns == mtime
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 1


def test_valid_jpegs_with_exif_model(tmp_path):
    out = generate(tmp_path, SyntheticSettings(images_per_camera=2, image_size=128), workers=1)
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    for row in rows:
        with Image.open(out / row["path"]) as img:
            assert img.format == "JPEG"
            img.load()
            exif = img.getexif()
        assert exif[0x010F] == "sci-lightning (synthetic)" and exif[0x0110].startswith(row["device"])
        assert img.size == ((96, 96) if row["camera"].endswith("front") else (128, 128))
    assert json.loads((out / "settings.json").read_text())["image_size"] == 128


def _fingerprint(paths):
    """Intensity-weighted average of noise residuals (Lukas et al.): K = sum(W*I) / sum(I^2)."""
    num = den = 0
    for p in paths:
        img = np.asarray(Image.open(p), np.float32).mean(axis=2)
        w = img - gaussian_filter(img, 1.0)
        w -= w.mean(axis=0, keepdims=True)
        w -= w.mean(axis=1, keepdims=True)
        num, den = num + w * img, den + img * img
    return num / den


def _ncc(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def _cross_half_correlations(root, prnu):
    out = generate(
        root, SyntheticSettings(profile="units_of_one_model", images_per_camera=20, image_size=256, prnu_strength=prnu)
    )
    cams = sorted(p for p in out.glob("*/*") if p.is_dir())
    halves = [(_fingerprint(sorted(c.glob("*.jpg"))[:10]), _fingerprint(sorted(c.glob("*.jpg"))[10:])) for c in cams]
    return np.array([[_ncc(a[0], b[1]) for b in halves] for a in halves])


def test_units_of_a_model_differ_only_in_their_sensor_patterns():
    from sci_lightning.data.synthetic.profiles import many_units

    cams = many_units(size=64, units=3)
    m1 = [c for c in cams if c.device == "SYN-M1"]
    assert len(cams) == 9 and len(m1) == 3
    assert all(c.sensor == m1[0].sensor and c.pipeline == m1[0].pipeline for c in m1)  # same model, same everything
    patterns = [sensor_patterns(0, c.camera, 64, 64)[0] for c in m1]
    assert all(abs(_ncc(a, b)) < 0.1 for i, a in enumerate(patterns) for b in patterns[i + 1 :])  # but the PRNU


@pytest.mark.slow
def test_prnu_fingerprint_is_there_and_vanishes_at_zero(tmp_path):
    corr = _cross_half_correlations(tmp_path / "on", 0.01)
    same, other = np.diag(corr), corr[~np.eye(len(corr), dtype=bool)]
    assert same.min() > 0.03 and same.min() > 5 * other.max(), corr
    off = _cross_half_correlations(tmp_path / "off", 0.0)
    assert np.abs(off).max() < 0.02, off  # no fingerprint: same sensor no longer stands out


def test_sensor_patterns_fixed_per_sensor():
    k1, _ = sensor_patterns(0, "cam1", 64, 64)
    k1b, _ = sensor_patterns(0, "cam1", 64, 64)
    k2, _ = sensor_patterns(0, "cam2", 64, 64)
    assert np.array_equal(k1, k1b) and not np.allclose(k1, k2) and abs(k1.std() - 1) < 0.05


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
@pytest.mark.parametrize("method", ["bilinear", "mhc"])
def test_cfa_and_demosaicing_keep_flat_colour(pattern, method):
    masks = cfa_masks(pattern, 16, 16)
    assert masks.sum(axis=(1, 2)).tolist() == [64, 128, 64] and (masks.sum(axis=0) == 1).all()
    colour = np.array([0.2, 0.5, 0.8], np.float32)
    mosaic = (masks * colour[:, None, None]).sum(axis=0)
    assert np.allclose(demosaic(mosaic, masks, method), colour, atol=1e-5)


@pytest.mark.parametrize(
    "cfg,setting",
    [
        ({"profile": "dslr"}, "data.profile"),
        ({"image_size": 10}, "data.image_size"),
        ({"jpeg_quality": [50, 120]}, "data.jpeg_quality"),
        ({"units": 5}, "data.units"),  # miche_like has no units to set
        ({"profile": "many_units", "units": 1}, "data.units"),
    ],
)
def test_bad_settings(cfg, setting):
    with pytest.raises(SCIConfigError) as err:
        SyntheticSettings.from_mapping(cfg)
    assert err.value.setting == setting


def test_cli_writes_a_folder_layout(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sci_lightning.data.synthetic",
            f"out={tmp_path}",
            "images_per_camera=2",
            "image_size=64",
            "jpeg_quality=[80,80]",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(list(tmp_path.rglob("*.jpg"))) == 10 and (tmp_path / "manifest.csv").is_file()
    assert {r["jpeg_quality"] for r in csv.DictReader((tmp_path / "manifest.csv").open())} == {"80"}
    bad = subprocess.run(
        [sys.executable, "-m", "sci_lightning.data.synthetic", f"out={tmp_path}", "colour=red"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert bad.returncode == 2 and "unknown option" in bad.stderr


def test_default_config_uses_the_synthetic_set():
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    assert cfg.data.layout == "synthetic" and cfg.data.profile == "miche_like"


def test_default_train_runs_on_virtual_cameras(tmp_path):
    """`python train.py` with no data settings: generates the set (no download) and trains on it."""
    run_in_process(
        "train",
        "data.images_per_camera=6",
        "data.image_size=96",
        "n_folds=3",
        "logger=none",
        "trainer.max_epochs=1",
        "+trainer.enable_progress_bar=false",
        run_dir=tmp_path,
    )
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["data"] == "synthetic" and m["classes"] == ["SYN-A", "SYN-B", "SYN-C"]
    assert m["n_train_images"] + m["n_val_images"] + m["n_test_images"] == 30
