"""Hostile and odd inputs: each file is used correctly or skipped with a one-line reason, never a crash."""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from sci_lightning.data.datamodule import SCIDataModule
from sci_lightning.data.images import SkippedImage, load_rgb
from sci_lightning.data.patches import extract_patches

from badcorpus import make_bad_corpus
from conftest import FAST, run_in_process

EXTS = [".jpg", ".jpeg", ".png", ".tif", ".tiff"]


def _dm(root: Path, cache: Path) -> SCIDataModule:
    data = {
        "layout": "folder",
        "root": str(root),
        "cache_dir": str(cache),
        "cache_workers": 2,
        "extensions": EXTS,
        "loader": {"batch_size": 16},
        "split": {"val_fraction": 0.2},
    }
    dm = SCIDataModule(data, task_name="sensor_level", n_folds=3, seed=0)
    dm.prepare_data()
    dm.setup("fit")
    return dm


@pytest.fixture(scope="module")
def corpus_tree(folder_tree, tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus") / "data"
    shutil.copytree(folder_tree, root)
    expected = make_bad_corpus(root / "A" / "A1")
    return root, expected


def test_each_bad_file_is_used_or_skipped_with_its_reason(corpus_tree, tmp_path):
    root, expected = corpus_tree
    dm = _dm(root, tmp_path)
    skipped = {Path(p).name: reason for p, reason in dm.skipped}
    used = {r.path.name for r in dm.records}
    for name, (outcome, note) in expected.items():
        if outcome == "skipped":
            assert name in skipped and note in skipped[name], (name, skipped.get(name))
            assert "\n" not in skipped[name]
        else:
            assert name in used, (name, skipped.get(name))
    assert dm.summary()["n_skipped_images"] == sum(o == "skipped" for o, _ in expected.values())
    assert len(dm.records) == 36 + sum(o == "used" for o, _ in expected.values())


def test_used_odd_formats_are_decoded_as_documented(corpus_tree):
    root, _ = corpus_tree
    folder = root / "A" / "A1"
    grey16 = np.asarray(Image.open(folder / "grey16.png"), dtype=np.int64)
    for name in ("grey16.png", "grey16.tif"):  # 16-bit scaled by 1/257 to 8 bits, grey repeated to RGB
        arr = load_rgb(folder / name)
        assert arr.dtype == np.uint8 and np.array_equal(arr[..., 0], np.rint(grey16 / 257).astype(np.uint8))
        assert np.array_equal(arr[..., 0], arr[..., 2])
    rgba = np.asarray(Image.open(folder / "rgba.png"))
    assert np.array_equal(load_rgb(folder / "rgba.png"), rgba[..., :3])  # alpha dropped, colours kept
    assert load_rgb(folder / "cmyk.jpg").shape == (96, 128, 3)


def test_permission_denied_is_a_skip(tmp_path, monkeypatch):
    """(As root the corpus's chmod-000 file is readable; the reason is checked here by refusing the open.)"""
    path = tmp_path / "x.jpg"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(path)

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Image, "open", refuse)
    with pytest.raises(SkippedImage, match="permission denied"):
        load_rgb(path)


def test_skipped_files_leave_the_other_images_results_unchanged(folder_tree, tmp_path):
    """Same folds and the same patches for the good images with and without the unusable files beside them."""
    clean = _dm(folder_tree, tmp_path / "c1")
    root = tmp_path / "data"
    shutil.copytree(folder_tree, root)
    expected = make_bad_corpus(root / "A" / "A1")
    for name, (outcome, _) in expected.items():
        if outcome == "used":
            (root / "A" / "A1" / name).unlink()
    dirty = _dm(root, tmp_path / "c2")
    assert dirty.summary()["n_skipped_images"] == sum(o == "skipped" for o, _ in expected.values())
    for stage in ("train", "val", "test"):
        assert [r.path.relative_to(clean.cfg["root"]) for r in clean.split_records(stage)] == [
            r.path.relative_to(dirty.cfg["root"]) for r in dirty.split_records(stage)
        ]
        a, b = clean.datasets[stage], dirty.datasets[stage]
        xa, ya, _ = a.__getitems__(list(range(len(a))))
        xb, yb, _ = b.__getitems__(list(range(len(b))))
        assert np.array_equal(xa.numpy(), xb.numpy()) and np.array_equal(ya.numpy(), yb.numpy())


def test_training_run_finishes_on_the_corpus_and_reports_skips(corpus_tree, tmp_path, caplog):
    root, expected = corpus_tree
    caplog.set_level(logging.WARNING)
    run_in_process(
        "train",
        "data=folder",
        f"data.root={root}",
        f"data.extensions=[{','.join(EXTS)}]",
        "task=sensor_level",
        "logger=none",
        *FAST,
        "trainer.max_epochs=1",
        run_dir=tmp_path,
    )
    n_skipped = sum(o == "skipped" for o, _ in expected.values())
    assert json.loads((tmp_path / "metrics.json").read_text())["n_skipped_images"] == n_skipped
    rows = list(csv.DictReader((tmp_path / "skipped_images.csv").open()))
    assert len(rows) == n_skipped and all(r["reason"] for r in rows)
    assert any("broken_link.jpg" in r.getMessage() and "skipped" in r.getMessage() for r in caplog.records)


def test_byte_identical_duplicates_share_a_fold(folder_tree, tmp_path, caplog):
    root = tmp_path / "data"
    shutil.copytree(folder_tree, root)
    dup_pairs = [("A/A1/img_000.jpg", "A/A1/copy of img_000.jpg"), ("B/B1/img_005.jpg", "B/B1/zz_renamed.jpg")]
    for src, dst in dup_pairs:
        shutil.copyfile(root / src, root / dst)
    shutil.copyfile(root / "A/A2/img_003.jpg", root / "B/B1/mislabelled.jpg")  # same photo under another camera
    caplog.set_level("WARNING")
    for fold in range(3):
        data = {
            "layout": "folder",
            "root": str(root),
            "cache_dir": str(tmp_path / "cache"),
            "cache_workers": 1,
            "split": {"val_fraction": 0.2},
        }
        dm = SCIDataModule(data, task_name="sensor_level", fold=fold, n_folds=3, seed=0)
        dm.prepare_data()
        dm.setup("fit")
        side = {str(r.path.relative_to(root)): s for s in ("train", "val", "test") for r in dm.split_records(s)}
        for src, dst in [*dup_pairs, ("A/A2/img_003.jpg", "B/B1/mislabelled.jpg")]:
            assert side[src] == side[dst], (fold, src, dst)
        assert dm.summary()["n_duplicate_images"] == 3
    assert "byte-identical images, kept in the same fold" in caplog.text and "LABELLED DIFFERENTLY" in caplog.text


# -- fuzzing the decode + patch path ---------------------------------------------------------------------------
FORMATS = ["JPEG", "PNG", "TIFF", "BMP", "GIF", "WEBP"]
MODES = ["RGB", "L", "RGBA", "P", "1", "I;16", "CMYK", "LA", "I", "F"]


def _check(path: Path) -> None:
    """The only two allowed outcomes: SkippedImage with a one-line reason, or a valid patch set."""
    try:
        img = load_rgb(path, min_size=8)
    except SkippedImage as err:
        assert str(err) and "\n" not in str(err)
        return
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 8
    patches, pos = extract_patches(img, 8, 16, "grid")
    assert patches.dtype == np.uint8 and patches.shape[1:] == (8, 8, 3) and 1 <= len(patches) <= 16
    assert (pos >= 0).all() and (pos[:, 0] + 8 <= img.shape[0]).all() and (pos[:, 1] + 8 <= img.shape[1]).all()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096), st.sampled_from([".jpg", ".png", ".tif", ".bmp", ""]))
def test_fuzz_random_bytes(data, ext):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"f{ext}"
        path.write_bytes(data)
        _check(path)


@st.composite
def small_images(draw):
    h, w = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    mode, fmt = draw(st.sampled_from(MODES)), draw(st.sampled_from(FORMATS))
    seed = draw(st.integers(0, 2**16))
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    img = Image.fromarray(arr)
    try:
        img = img.convert(mode) if mode not in ("I;16",) else Image.fromarray(arr[..., 0].astype(np.uint16) * 257)
        buf = io.BytesIO()
        img.save(buf, format=fmt)
    except (OSError, ValueError, KeyError):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")  # a format that cannot hold the mode: plain PNG
    data = bytearray(buf.getvalue())
    damage = draw(st.sampled_from(["none", "truncate", "flip"]))
    if damage == "truncate" and len(data) > 2:
        data = data[: draw(st.integers(1, len(data) - 1))]
    elif damage == "flip":
        for pos in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
            data[pos] ^= 0xFF
    return bytes(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_images())
def test_fuzz_random_small_images(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "img.bin"
        path.write_bytes(data)
        _check(path)
