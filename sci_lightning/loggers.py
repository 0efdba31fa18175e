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


def sweep_group(sweep_dir: str, task: str, data: str, model: str) -> str:
    """The W&B group of a sweep: its settings and the sweep's time stamp (the sweep dir's name)."""
    return f"{task}-{data}-{model}-{Path(sweep_dir).name}"


def _multirun_identity(cfg: DictConfig) -> dict[str, str]:
    """Group and job type for a fold run inside a Hydra multirun; empty for a single run."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return {}
    hc = HydraConfig.get()
    return {"group": sweep_group(hc.sweep.dir, cfg.task.name, cfg.data.name, cfg.model.name),
            "job_type": f"fold-{cfg.fold}"}


def build_loggers(logger_cfg: DictConfig | None, run_cfg: DictConfig | None = None) -> list[Logger]:
    """Instantiate every logger in the ``logger`` group, switching W&B offline when it cannot go online.

    Inside a multirun, W&B runs get the sweep's group and ``job_type=fold-K`` unless the config sets them.
    """
    loggers: list[Logger] = []
    if not logger_cfg:
        return loggers
    identity = _multirun_identity(run_cfg) if run_cfg is not None else {}
    for name, cfg in logger_cfg.items():
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


def wandb_settings(cfg: DictConfig) -> dict[str, str] | None:
    """Project and mode (online/offline) a W&B logger config resolves to here, or None when disabled."""
    offline = _offline_decision(bool(cfg.get("offline")))
    if offline is None:
        return None
    return {"project": cfg.get("project") or "sci-lightning", "mode": "offline" if offline else "online"}


def _offline_decision(configured_offline: bool) -> bool | None:
    """Offline (True), online (False) or disabled (None), from WANDB_MODE, the config and the API key."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode == "disabled":
        return None
    if mode in ("offline", "dryrun"):
        return True
    if mode != "online" and not configured_offline and not wandb_api_key_available():
        log.warning("W&B: no API key found (WANDB_API_KEY or `wandb login`), logging offline instead")
        return True
    return configured_offline


def _wandb_mode(cfg: DictConfig) -> DictConfig | None:
    offline = _offline_decision(bool(cfg.get("offline")))
    if offline is None:
        log.info("W&B disabled (WANDB_MODE=disabled)")
        return None
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    Path(cfg.save_dir).mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        cfg.offline = offline
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
