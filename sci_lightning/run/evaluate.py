"""``python evaluate.py``: validate the config and evaluate with the method (a checkpoint, or PRNU)."""

from __future__ import annotations

from omegaconf import DictConfig

from sci_lightning.outputs import Metrics
from sci_lightning.run.config import validate
from sci_lightning.run.registry import get_method


def run(cfg: DictConfig) -> Metrics:
    """Evaluate ``cfg.method`` on its test fold or on ``images=DIR``; returns what ``metrics.json`` holds."""
    validate(cfg, "evaluate")
    return get_method(cfg.method).evaluate()(cfg)
