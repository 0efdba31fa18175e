import shutil

import numpy as np
import pytest
import torch

from sci_lightning.data.datamodule import SCIDataModule
from sci_lightning.errors import SCIConfigError


def make_dm(root, cache, **kw):
    data = {
        "layout": "folder",
        "root": str(root),
        "cache_dir": str(cache),
        "cache_workers": 1,
        "loader": {"batch_size": 16},
        "split": {"val_fraction": 0.2},
    }
    dm = SCIDataModule(data, task_name=kw.pop("task", "sensor_level"), n_folds=3, seed=0, **kw)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_splits_and_batches(folder_tree, tmp_path):
    dm = make_dm(folder_tree, tmp_path)
    assert dm.classes == ["A/A1", "A/A2", "B/B1"]
    paths = {s: {r.path for r in dm.split_records(s)} for s in ("train", "val", "test")}
    assert not (paths["train"] & paths["test"] or paths["val"] & paths["test"] or paths["train"] & paths["val"])
    x, y, img = next(iter(dm.train_dataloader()))
    assert x.dtype == torch.uint8 and x.shape == (16, 32, 32, 3) and y.dtype == torch.int64
    # every test patch comes from the image its index says, with that image's label
    test = dm.datasets["test"]
    xs, ys, owners = test.__getitems__(list(range(len(test))))
    labels = dm.split_labels("test")
    assert np.array_equal(ys.numpy(), labels[owners.numpy()])
    assert len(test) == 12 * len(dm.splits["test"])
    summary = dm.summary()
    assert summary["n_test_images"] == len(dm.splits["test"]) and summary["n_skipped_images"] == 0


def test_model_level_has_device_classes(folder_tree, tmp_path):
    assert make_dm(folder_tree, tmp_path, task="model_level").classes == ["A", "B"]


def test_bad_image_is_skipped_and_counted(folder_tree, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(folder_tree, root)
    (root / "A" / "A1" / "zz_broken.jpg").write_bytes(b"\xff\xd8\xff truncated")
    dm = make_dm(root, tmp_path / "cache")
    assert dm.summary()["n_skipped_images"] == 1 and "zz_broken.jpg" in dm.skipped[0][0]
    assert sum(len(v) for v in dm.splits.values()) == 36


def test_class_with_only_bad_images_is_a_clear_error(folder_tree, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(folder_tree, root)
    (root / "C" / "C1").mkdir(parents=True)
    (root / "C" / "C1" / "x.jpg").write_text("nope")
    with pytest.raises(SCIConfigError, match="no usable images"):
        make_dm(root, tmp_path / "cache")


def _fixed_dm(tmp_path, data, **kw):
    dm = SCIDataModule(
        {"cache_dir": str(tmp_path / "cache"), "cache_workers": 1, **data},
        seed=0,
        task_name=kw.pop("task", "sensor_level"),
        **kw,
    )
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_fixed_split_from_two_roots(tmp_path):
    from fakedata import make_folder_tree

    cams = [("A", "A1"), ("A", "A2"), ("B", "B1")]
    make_folder_tree(tmp_path / "refs", cams, per_camera=8)
    make_folder_tree(tmp_path / "questioned", cams, per_camera=3)
    dm = _fixed_dm(
        tmp_path,
        {
            "layout": "folder",
            "reference_root": str(tmp_path / "refs"),
            "questioned_root": str(tmp_path / "questioned"),
            "split": {"mode": "roots", "val_fraction": 0.25},
        },
    )
    sides = {s: {r.path.parent.parent.parent.name for r in dm.split_records(s)} for s in ("train", "val", "test")}
    assert sides == {"train": {"refs"}, "val": {"refs"}, "test": {"questioned"}}
    assert len(dm.splits["test"]) == 9 and len(dm.splits["train"]) + len(dm.splits["val"]) == 24
    assert len(dm.splits["val"]) >= 3 and dm.summary()["split_mode"] == "roots"


def test_fixed_split_from_a_manifest_column_with_a_camera_left_out(tmp_path):
    import csv

    from fakedata import make_folder_tree

    root = make_folder_tree(tmp_path / "data", [("A", "A1"), ("B", "B1"), ("C", "C1")], per_camera=8)
    with (root / "manifest.csv").open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["path", "device", "camera", "content"])
        for cam in ("A", "B", "C"):
            for k in range(8):
                wr.writerow([f"{cam}/{cam}1/img_{k:03d}.jpg", cam, f"{cam}1", "flat" if k < 6 else "natural"])
    data = {
        "layout": "manifest",
        "root": str(root),
        "split": {
            "mode": "column",
            "column": "content",
            "reference_values": ["flat"],
            "questioned_values": ["natural"],
            "exclude_reference": ["C1"],
            "val_fraction": 0.2,
        },
    }
    dm = _fixed_dm(tmp_path, data)
    assert dm.classes == ["A1", "B1"]
    assert {r.extra["content"] for s in ("train", "val") for r in dm.split_records(s)} == {"flat"}
    assert {r.camera for r in dm.split_records("test")} == {"A1", "B1"} and len(dm.splits["test"]) == 4
    assert [r.camera for r in dm.unknown_records()] == ["C1", "C1"]
    assert dm.summary()["n_unknown_camera_images"] == 2
    bad = {**data, "split": {**data["split"], "exclude_reference": ["Z9"]}}
    with pytest.raises(SCIConfigError, match="exclude_reference"):
        _fixed_dm(tmp_path, bad)
    bad = {**data, "split": {**data["split"], "questioned_values": ["outdoor"]}}
    with pytest.raises(SCIConfigError, match="neither"):
        _fixed_dm(tmp_path, bad)


def test_python_callers_get_the_yaml_defaults_for_keys_they_leave_out(folder_tree, tmp_path):
    from omegaconf import OmegaConf

    from sci_lightning.data.defaults import BASE_YAML

    dm = make_dm(folder_tree, tmp_path)  # sets loader.batch_size and split.val_fraction only
    base = OmegaConf.load(BASE_YAML)
    assert dm.settings.size == base.patches.size and dm.settings.per_image == base.patches.per_image
    assert dm.cfg["split"]["group_by"] == base.split.group_by and dm.cfg["split"]["val_fraction"] == 0.2
    assert dm.cfg["loader"]["batch_size"] == 16 and dm.cfg["loader"]["num_workers"] == base.loader.num_workers


def test_calibration_reuses_the_validation_loop_scores(folder_tree, tmp_path):
    """The CNN's calibration takes the validation images' scores from the validation pass training runs on the
    selected weights anyway: the same numbers as scoring them again (float32 sums vs float64)."""
    import lightning.pytorch as pl

    from sci_lightning.forensic.calibration import calibrate
    from sci_lightning.methods.cnn.inference import split_image_probs, validation_probs
    from sci_lightning.methods.cnn.setup import build_module

    from conftest import compose_config

    dm = make_dm(folder_tree, tmp_path / "cache")
    cfg = compose_config("train", "task=sensor_level", run_dir=tmp_path / "run")
    module = build_module(cfg, dm.classes, dm.settings.size)
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False, max_epochs=1
    )
    trainer.fit(module, datamodule=dm)
    trainer.validate(module, datamodule=dm, verbose=False)
    reused, again = validation_probs(module, dm), split_image_probs(module, dm, "val")
    assert len(reused) == len(dm.splits["val"]) and np.allclose(reused, again, atol=1e-6)
    labels = dm.split_labels("val")
    a, b = calibrate(reused, labels, 0.05), calibrate(again, labels, 0.05)
    assert a.temperature == pytest.approx(b.temperature, rel=1e-4) and a.threshold == pytest.approx(
        b.threshold, abs=1e-4
    )
    module.val_results = {}  # nothing kept (e.g. validation never ran): scored again
    assert np.array_equal(validation_probs(module, dm), again)
