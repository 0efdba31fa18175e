"""The CNN's Lightning loggers: W&B (mode decided by :mod:`sci_lightning.tracking`) plus CSV."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf, open_dict

from sci_lightning.methods.wiring import multirun_identity
from sci_lightning.tracking import confusion_charts, offline_decision

log = logging.getLogger(__name__)


def build_loggers(logger_cfg: DictConfig | None, run_cfg: DictConfig | None = None) -> list[Logger]:
    """Instantiate every logger in the ``logger`` group, switching W&B offline when it cannot go online.

    Inside a multirun, W&B runs get the sweep's group and ``job_type=fold-K`` unless the config sets them.
    """
    loggers: list[Logger] = []
    if not logger_cfg:
        return loggers
    identity = multirun_identity(run_cfg) if run_cfg is not None else {}
    for cfg in logger_cfg.values():
        if not cfg or "_target_" not in cfg:
            continue
        if cfg["_target_"].endswith("WandbLogger"):
            cfg = _wandb_mode(cfg)
            if cfg is None:
                continue
            with open_dict(cfg):
                cfg.group = cfg.get("group") or identity.get("group")
                if identity and cfg.get("job_type") in (None, "train"):
                    cfg.job_type = identity["job_type"]
        loggers.append(instantiate(cfg))
    return loggers


def _wandb_mode(cfg: DictConfig) -> DictConfig | None:
    offline = offline_decision(bool(cfg.get("offline")))
    if offline is None:
        log.info("W&B disabled (WANDB_MODE=disabled)")
        return None
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    Path(cfg.save_dir).mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        cfg.offline = offline
    return cfg


def log_images(loggers: list[Logger], images: Mapping[str, Path], matrices: Path | None = None) -> None:
    """Send PNGs (confusion matrices) to the loggers that take images, and ``matrices`` (the run's
    ``confusion_matrices.json``) to W&B as its own confusion-matrix charts."""
    for lg in loggers:
        if isinstance(lg, WandbLogger):
            for key, path in images.items():
                lg.log_image(key=key, images=[str(path)])
            if matrices is not None and (charts := confusion_charts(matrices)):
                lg.experiment.log(charts)


def log_summary(loggers: list[Logger], metrics: Mapping[str, Any]) -> None:
    """Put the final numbers in the W&B run summary (the row the runs table shows)."""
    for lg in loggers:
        if isinstance(lg, WandbLogger):
            lg.experiment.summary.update({k: v for k, v in metrics.items() if isinstance(v, (int, float, str))})


def finish_wandb(loggers: list[Logger]) -> None:
    """Close the W&B run (always: called from ``finally``) and say how to upload an offline run."""
    import wandb

    offline_dirs = []
    for lg in loggers:
        if isinstance(lg, WandbLogger) and lg._experiment is not None:  # noqa: SLF001 (do not create a run)
            run = lg._experiment  # noqa: SLF001
            if getattr(run, "offline", False):
                offline_dirs.append(str(Path(run.dir).parent))
    if wandb.run is not None:
        wandb.finish()
    for d in offline_dirs:
        log.info("W&B run saved offline. Upload it later with:\n    wandb sync %s", d)
