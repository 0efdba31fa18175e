"""``python train.py``: validate the config, skip a fold that already finished, train and test with the method.

Returns the metrics; :func:`optimized_value` is what a Hydra sweeper (e.g. ``hparams_search=cnn_optuna``)
optimises: a *validation* metric of the selected checkpoint (``optimized_metric``), never a test metric.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sci_lightning.outputs import Metrics, finished_metrics
from sci_lightning.run.config import validate
from sci_lightning.run.registry import get_method

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> Metrics:
    """Train and test one fold with ``cfg.method``; returns the metrics written to ``metrics.json``."""
    validate(cfg, "train")
    out_dir = Path(cfg.paths.output_dir)
    done = finished_metrics(out_dir, cfg.fold) if cfg.skip_complete else None
    if done is not None:
        log.info("fold %d already finished in %s: skipped (skip_complete=false runs it again)", cfg.fold, out_dir)
        return done
    return get_method(cfg.method).train()(cfg)


def optimized_value(cfg: DictConfig, metrics: dict[str, Any]) -> float:
    """``metrics[optimized_metric]``, or NaN (with a warning) when the method does not produce it."""
    value = metrics.get(cfg.optimized_metric)
    if value is None:
        log.warning(
            "optimized_metric=%s is not among this run's metrics (method %s): returning NaN",
            cfg.optimized_metric,
            cfg.method,
        )
        return math.nan
    return float(value)
