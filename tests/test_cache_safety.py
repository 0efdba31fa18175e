"""Cache safety: SIGKILLed builds, concurrent builders, and caches altered after they were built."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sci_lightning.data.cache import PatchSettings, cache_key, load_or_build
from sci_lightning.data.layouts import list_images

BUILD = """
import os, sys, time, numpy as np
from pathlib import Path
import sci_lightning.data.build as build_mod
import sci_lightning.data.cache as cache_mod
progress = Path(sys.argv[2])
real_patch, real_rename = cache_mod._patch_one, os.rename

def patch_one(args):  # slowed down and reporting, so the test can kill the build at a known point
    out = real_patch(args)
    with progress.open("a") as fh:
        fh.write("image\\n")
    time.sleep(0.02)
    return out

def rename(src, dst):
    with progress.open("a") as fh:
        fh.write("rename\\n")
    time.sleep(0.5)
    return real_rename(src, dst)

cache_mod._patch_one, build_mod.os.rename = patch_one, rename
paths = [Path(p) for p in sys.argv[3:]]
c = cache_mod.load_or_build(paths, cache_mod.PatchSettings(), sys.argv[1], num_workers=1)
print(len(c.patches), int(np.asarray(c.patches, dtype=np.int64).sum()))
"""


@pytest.fixture
def paths(folder_tree):
    return list_images(folder_tree)


def _reference(paths, tmp_path) -> tuple[int, int]:
    c = load_or_build(paths, PatchSettings(), tmp_path / "reference")
    return len(c.patches), int(np.asarray(c.patches, dtype=np.int64).sum())


def _build_proc(cache_dir: Path, paths, progress: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", BUILD, str(cache_dir), str(progress), *map(str, paths)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(progress: Path, stage: str, count: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        lines = progress.read_text().split() if progress.exists() else []
        if lines.count(stage) >= count:
            return
        time.sleep(0.005)
    raise AssertionError(f"build never reached {stage} x{count}")


@pytest.mark.parametrize("stage,count", [("image", 1), ("image", 12), ("image", 35), ("rename", 1)])
def test_sigkilled_build_is_never_reused(paths, tmp_path, stage, count):
    """Killed with SIGKILL after the first, a middle and the last image, and just before the commit (rename)."""
    cache_dir, progress = tmp_path / "cache", tmp_path / "progress.txt"
    proc = _build_proc(cache_dir, paths, progress)
    _wait_for(progress, stage, count, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    final = cache_dir / f"patches-{cache_key(paths, PatchSettings())}"
    assert not final.exists()  # the rename is the commit point: nothing was committed
    assert [p for p in os.listdir(cache_dir) if p.startswith(".tmp")]  # the killed build's leftovers
    c = load_or_build(paths, PatchSettings(), cache_dir)
    assert (len(c.patches), int(np.asarray(c.patches, dtype=np.int64).sum())) == _reference(paths, tmp_path)
    assert [p for p in os.listdir(cache_dir) if p.startswith(".tmp")] == []  # the dead builder's temp is swept


def test_two_processes_building_the_same_cache(paths, tmp_path):
    """Parallel folds building the same cache at once: both succeed with the same patches, one folder remains."""
    cache_dir = tmp_path / "cache"
    procs = [_build_proc(cache_dir, paths, tmp_path / f"progress{i}.txt") for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    expected = _reference(paths, tmp_path)
    assert [tuple(map(int, o[0].split())) for o in outs] == [expected, expected]
    assert sorted(os.listdir(cache_dir)) == [f"patches-{cache_key(paths, PatchSettings())}"]


@pytest.mark.parametrize("damage", ["truncate_patches", "flip_patch_byte", "alter_index", "delete_meta"])
def test_damaged_cache_is_detected_and_rebuilt(paths, tmp_path, damage, caplog):
    cache_dir = tmp_path / "cache"
    first = load_or_build(paths, PatchSettings(), cache_dir)
    expected = np.array(first.patches)
    folder = first.path
    del first
    patches = folder / "patches.u8"
    if damage == "truncate_patches":
        os.truncate(patches, patches.stat().st_size - 3 * 32 * 32)
    elif damage == "flip_patch_byte":  # same size, one byte changed at the start of a sampled block
        with open(patches, "r+b") as fh:
            fh.seek(0)
            b = fh.read(1)
            fh.seek(0)
            fh.write(bytes([b[0] ^ 0xFF]))
    elif damage == "alter_index":
        with np.load(folder / "index.npz") as idx:
            arrays = dict(idx)
        arrays["positions"] = arrays["positions"] + 2
        np.savez(folder / "index.npz", **arrays)
    else:
        (folder / "meta.json").unlink()
    caplog.set_level("WARNING")
    again = load_or_build(paths, PatchSettings(), cache_dir)
    assert np.array_equal(np.asarray(again.patches), expected)
    assert "rebuilding" in caplog.text
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["index_sha256"] and meta["patches_sampled_sha256"]
