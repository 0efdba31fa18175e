"""The composed config turned into the objects the floors below take, once, by the methods' wiring modules and
the run layer: the run's photos, its residual store, its geometry search, its W&B run and the keys that open its
metrics. Nothing below this floor reads a config (import-linter keeps omegaconf and hydra out of it)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sci_lightning.data.selection import Selection, select_images
from sci_lightning.data.transforms import questioned_paths, transform_selection
from sci_lightning.fingerprint.geometry import GeometrySettings
from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.fingerprint.scoring import Search
from sci_lightning.fingerprint.settings import PrnuSettings
from sci_lightning.outputs import Metrics
from sci_lightning.settings import settings_from
from sci_lightning.tracking import RunLog, sweep_group, wandb_settings


def prnu_settings(cfg: DictConfig) -> PrnuSettings:
    """The run's ``prnu`` group, typed."""
    return settings_from(PrnuSettings, cfg.prnu)


def cache_dir(cfg: DictConfig) -> Path | None:
    """Where residuals are kept (``paths.cache_dir``), or None with ``prnu.residual_cache=false``."""
    return Path(str(cfg.paths.cache_dir)) if cfg.prnu.residual_cache else None


def residual_store(cfg: DictConfig) -> ResidualStore:
    """Residuals with ``prnu.sigma`` / ``levels`` / ``wavelet`` / ``grey_first``, kept under ``paths.cache_dir`` unless
    ``prnu.residual_cache=false``. The matcher uses the same settings: one residual per photo serves both."""
    return ResidualStore(cache_dir(cfg), prnu_settings(cfg).residual)


def selection_of(cfg: DictConfig, workers: int) -> Selection:
    """The run's images, chosen exactly as for the CNN (no patches are cut); with ``eval.transform``, the test and
    questioned photos replaced by their transformed copies."""
    data = OmegaConf.to_container(cfg.data, resolve=True)
    sel = select_images(
        data, cfg.task.name, cfg.fold, cfg.n_folds, cfg.seed, label_field=cfg.task.get("label_field"), workers=workers
    )
    transform = OmegaConf.select(cfg, "eval.transform", default="none")
    return transform_selection(sel, transform, cfg.paths.cache_dir, int(cfg.seed))


def questioned_of(cfg: DictConfig) -> list[str]:
    """``images=DIR``'s photos (their ``eval.transform`` copies)."""
    return questioned_paths(cfg.images, cfg.image_extensions, cfg.eval.transform, cfg.paths.cache_dir, int(cfg.seed))


def search_of(cfg: DictConfig, log10_bar: float | None = None) -> Search:
    """The run's :class:`Search`: ``cfg.geometry``, stopping at ``log10_bar`` (default ``prnu.false_alarm``)."""
    bar = math.log10(float(cfg.prnu.false_alarm)) if log10_bar is None else log10_bar
    return Search(settings_from(GeometrySettings, cfg.geometry), bar)


def multirun_identity(cfg: DictConfig, model: str | None = None) -> dict[str, str]:
    """Group and job type for a fold run inside a Hydra multirun; empty for a single run.

    ``model`` names the method's model where it is not ``cfg.model.name`` (PRNU has no network)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return {}
    hc = HydraConfig.get()
    return {
        "group": sweep_group(hc.sweep.dir, cfg.task.name, cfg.data.name, model or cfg.model.name),
        "job_type": f"fold-{cfg.fold}",
    }


def run_log_of(cfg: DictConfig, model: str) -> RunLog | None:
    """The W&B run of a method without Lightning, from ``logger.wandb`` (project, save dir, group, job type; in a
    multirun the sweep's group and ``job_type=fold-K``, like the CNN's runs); None when W&B is disabled or the
    run logs elsewhere (``logger=csv`` / ``none``: evaluate.yaml's job_type/name block alone is no logger)."""
    wandb_cfg = (cfg.get("logger") or {}).get("wandb")
    if not wandb_cfg or "_target_" not in wandb_cfg:
        return None
    settings = wandb_settings(bool(wandb_cfg.get("offline")), wandb_cfg.get("project"))
    if settings is None:
        return None
    identity = multirun_identity(cfg, model)
    return RunLog(
        project=settings["project"],
        mode=settings["mode"],
        save_dir=Path(str(wandb_cfg.save_dir)),
        name=f"{model}-{cfg.task.name}-{cfg.data.name}-fold{cfg.fold}",
        group=wandb_cfg.get("group") or identity.get("group"),
        job_type=identity.get("job_type") or wandb_cfg.get("job_type"),
        config=OmegaConf.to_container(cfg, resolve=True),
    )


def run_metadata(cfg: DictConfig, classes: Sequence[str], method: str) -> Metrics:
    """The descriptive keys that open every metrics.json (any method)."""
    return {
        "task": cfg.task.name,
        "data": cfg.data.name,
        "model": cfg.model.name,
        "method": method,
        "fold": int(cfg.fold),
        "n_folds": int(cfg.n_folds),
        "seed": int(cfg.seed),
        "classes": list(classes),
    }
