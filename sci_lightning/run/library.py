"""``python library.py action=...``: validate the config (``LibrarySchema``), then run the action
(:mod:`sci_lightning.library.actions`, usable from Python the same way)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from sci_lightning.library.actions import ACTIONS
from sci_lightning.run.config import validate


def run(cfg: DictConfig) -> dict[str, Any]:
    """The action ``cfg.action`` of conf/library.yaml; returns what its ``metrics.json`` holds."""
    validate(cfg, "library")
    return ACTIONS[str(cfg.action)](cfg)
