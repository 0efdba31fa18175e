"""Shared fixtures: tiny generated photo trees, an isolated cache, and a helper to run the entry points."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hypothesis import settings as hypothesis_settings
from omegaconf import DictConfig, open_dict

import sci_lightning.run.schema  # noqa: F401 (the settings' schemas, before any config is composed)

sys.path.insert(0, str(Path(__file__).parent))
from fakedata import make_dresden_tree, make_folder_tree, make_miche_tree  # noqa: E402

# CI replays the same fuzz examples every time (a failure there is reproducible); locally they vary.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
VISION3 = REPO.parent / "shared" / "realdata" / "vision-3"

# Small, fast training settings for end-to-end runs: conf/debug/fast.yaml (documented for people too).
FAST = ["debug=fast"]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SCI_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("WANDB_MODE", os.environ.get("SCI_TEST_WANDB_MODE", "disabled"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


@pytest.fixture(scope="session")
def folder_tree(tmp_path_factory) -> Path:
    """3 cameras of 2 devices, 12 images each, 96x128 px (12 patches per image)."""
    return make_folder_tree(tmp_path_factory.mktemp("folder"), [("A", "A1"), ("A", "A2"), ("B", "B1")], per_camera=12)


@pytest.fixture(scope="session")
def miche_tree(tmp_path_factory) -> Path:
    return make_miche_tree(tmp_path_factory.mktemp("miche"))


@pytest.fixture(scope="session")
def dresden_tree(tmp_path_factory) -> Path:
    return make_dresden_tree(tmp_path_factory.mktemp("dresden"))


def compose_config(entry: str, *overrides: str, run_dir: Path) -> DictConfig:
    """The config ``python {entry}.py overrides`` would run with, composed in-process (Hydra's compose API).

    ``HydraConfig`` is set as a real run sets it (the evaluation reads its command-line overrides from there);
    the output folder is ``run_dir``.
    """
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            config_name=entry,
            return_hydra_config=True,
            overrides=[*overrides, f"paths.output_dir={run_dir}", f"paths.root_dir={REPO}"],
        )
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):  # a real run's task function never sees the hydra node either
        del cfg["hydra"]
    return cfg


def run_in_process(entry: str, *overrides: str, run_dir: Path) -> dict:
    """Run ``train``/``evaluate`` the way the entry point does, without a new interpreter; returns the metrics.

    A user error raises :class:`SCIConfigError` (the entry point turns it into exit code 2, tested with
    :func:`run_entry`).
    """
    from sci_lightning.run import evaluate, train

    cfg = compose_config(entry, *overrides, run_dir=run_dir)
    return (train if entry == "train" else evaluate).run(cfg)


def run_entry(
    script: str, *overrides: str, run_dir: Path, env: dict | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    """Run ``train.py``/``evaluate.py`` in a subprocess with its output in ``run_dir``."""
    full_env = {**os.environ, **(env or {})}
    cmd = [sys.executable, script, f"hydra.run.dir={run_dir}", *overrides]
    return subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout)


def wandb_log(pattern: Path, needle: bytes, timeout: float = 60.0) -> bytes:
    """The offline W&B transaction log matching the glob ``pattern`` once it holds ``needle``: wandb-core's writer
    may still be flushing it after ``run.finish()`` returns (measured: a 7-byte file read, 11 kB a moment later)."""
    import time

    end = time.time() + timeout
    while True:
        files = sorted(Path(pattern.anchor).glob(str(pattern.relative_to(pattern.anchor))))
        data = files[0].read_bytes() if files else b""
        if needle in data or time.time() > end:
            return data
        time.sleep(0.2)
