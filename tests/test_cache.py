import os

import numpy as np
import pytest

import sci_lightning.data.cache as cache_mod
from sci_lightning.data.cache import PatchSettings, cache_key, load_or_build
from sci_lightning.data.layouts import list_images


@pytest.fixture
def paths(folder_tree):
    return list_images(folder_tree)[:9]


@pytest.fixture
def count_builds(monkeypatch):
    calls = []
    real = cache_mod._build

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(cache_mod, "_build", counting)
    return calls


def test_build_then_reuse(tmp_path, paths, count_builds):
    s = PatchSettings()
    a = load_or_build(paths, s, tmp_path)
    b = load_or_build(paths, s, tmp_path)
    assert len(count_builds) == 1 and a.path == b.path
    assert a.patches.dtype == np.uint8 and a.patches.shape[1:] == (32, 32, 3)
    assert len(a.patches) == a.offsets[-1] == 9 * 12 and np.array_equal(np.asarray(a.patches), np.asarray(b.patches))
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp")] == []


def test_invalidated_by_settings_and_file_change(tmp_path, paths, count_builds):
    load_or_build(paths, PatchSettings(), tmp_path)
    load_or_build(paths, PatchSettings(per_image=4), tmp_path)
    assert len(count_builds) == 2
    os.utime(paths[0], ns=(1, 1))  # same bytes, different mtime -> a different file list signature
    load_or_build(paths, PatchSettings(), tmp_path)
    assert len(count_builds) == 3


def test_interrupted_build_is_not_reused(tmp_path, paths, monkeypatch, count_builds):
    s = PatchSettings()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_mod, "patches_from_file", boom)
    with pytest.raises(KeyboardInterrupt):
        load_or_build(paths, s, tmp_path)
    assert os.listdir(tmp_path) == []  # no partial cache, no temp folder
    monkeypatch.undo()


def test_incomplete_folder_is_rebuilt(tmp_path, paths):
    s = PatchSettings()
    final = tmp_path / f"patches-{cache_key(paths, s)}"
    final.mkdir()
    (final / "patches.u8").write_bytes(b"\0" * 100)  # a killed build's leftovers, no meta.json
    cache = load_or_build(paths, s, tmp_path)
    assert len(cache.patches) == 9 * 12
    (final / "patches.u8").write_bytes(b"\0" * 100)  # truncated after the fact
    assert len(load_or_build(paths, s, tmp_path).patches) == 9 * 12


def test_parallel_build_equals_serial(tmp_path, paths):
    a = load_or_build(paths, PatchSettings(), tmp_path / "a", num_workers=1)
    b = load_or_build(paths, PatchSettings(), tmp_path / "b", num_workers=2)
    assert np.array_equal(np.asarray(a.patches), np.asarray(b.patches)) and np.array_equal(a.offsets, b.offsets)


def test_skipped_images_recorded(tmp_path, paths):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"garbage")
    cache = load_or_build([*paths[:2], bad], PatchSettings(), tmp_path / "c")
    assert list(cache.skipped) == [2] and "Pillow" in cache.skipped[2]
    assert cache.counts.tolist() == [12, 12, 0]


def test_patch_rows(tmp_path, paths):
    cache = load_or_build(paths, PatchSettings(), tmp_path)
    rows, owner = cache.patch_rows(np.array([4, 1]))
    assert rows.tolist() == list(range(48, 60)) + list(range(12, 24))
    assert owner.tolist() == [0] * 12 + [1] * 12
