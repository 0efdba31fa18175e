"""Experiment loggers: W&B (online when it can be, offline by itself when not) plus CSV.

``WANDB_MODE`` is honoured as set. When it is not set and no API key can be found (``WANDB_API_KEY`` or a
``~/.netrc`` entry for the W&B host), the run goes offline without touching the network, and the command that
uploads it later is printed when the run ends.
"""

from __future__ import annotations

import logging
import netrc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)


def wandb_api_key_available() -> bool:
    """True if W&B could authenticate: an API key in the environment or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def build_loggers(logger_cfg: DictConfig | None) -> list[Logger]:
    """Instantiate every logger in the ``logger`` group, switching W&B offline when it cannot go online."""
    loggers: list[Logger] = []
    if not logger_cfg:
        return loggers
    for name, cfg in logger_cfg.items():
        if not cfg or "_target_" not in cfg:
            continue
        if cfg["_target_"].endswith("WandbLogger"):
            cfg = _wandb_mode(cfg)
            if cfg is None:
                continue
        loggers.append(instantiate(cfg))
    return loggers


def _wandb_mode(cfg: DictConfig) -> DictConfig | None:
    mode = os.environ.get("WANDB_MODE", "").lower()
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    Path(cfg.save_dir).mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        if mode == "disabled":
            log.info("W&B disabled (WANDB_MODE=disabled)")
            return None
        if mode in ("offline", "dryrun"):
            cfg.offline = True
        elif mode != "online" and not cfg.get("offline") and not wandb_api_key_available():
            log.warning("W&B: no API key found (WANDB_API_KEY or `wandb login`), logging offline instead")
            cfg.offline = True
    return cfg


def log_images(loggers: list[Logger], images: Mapping[str, Path]) -> None:
    """Send PNGs (confusion matrices) to the loggers that take images."""
    for lg in loggers:
        if isinstance(lg, WandbLogger):
            for key, path in images.items():
                lg.log_image(key=key, images=[str(path)])


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
