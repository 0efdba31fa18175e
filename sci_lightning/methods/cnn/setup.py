"""Building the CNN's pieces from the config: datamodule, LightningModule, CPU threads."""

from __future__ import annotations

import logging
import os

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sci_lightning.data.datamodule import SCIDataModule
from sci_lightning.methods.cnn.module import SCIClassifier

log = logging.getLogger(__name__)


def build_datamodule(cfg: DictConfig) -> SCIDataModule:
    """The datamodule for ``cfg.data`` / ``cfg.task`` / ``cfg.fold``, indexed, cached and split.

    A network that needs its own patch size (``model.patch_size``, e.g. 64 for Bondi) gets patches of that size:
    the data's patch setting follows the model, never a silent resize of 32 px patches.
    """
    data = OmegaConf.to_container(cfg.data, resolve=True)
    wanted = cfg.model.get("patch_size")
    if wanted and int(wanted) != int(data["patches"]["size"]):
        log.info(
            "model %s takes %d px patches: cutting those instead of data.patches.size=%d",
            cfg.model.name,
            wanted,
            data["patches"]["size"],
        )
        data["patches"]["size"] = int(wanted)
    dm = SCIDataModule(
        data,
        task_name=cfg.task.name,
        fold=cfg.fold,
        n_folds=cfg.n_folds,
        seed=cfg.seed,
        label_field=cfg.task.get("label_field"),
    )
    dm.prepare_data()
    dm.setup("fit")
    return dm


def build_module(cfg: DictConfig, classes: list[str], patch_size: int, run_config: dict | None = None) -> SCIClassifier:
    """The LightningModule for ``cfg.model`` with ``classes`` outputs."""
    net = instantiate(cfg.model.net, num_classes=len(classes), patch_size=patch_size)
    return SCIClassifier(
        net=net,
        classes=classes,
        optimizer=instantiate(cfg.model.optimizer),
        scheduler=instantiate(cfg.model.scheduler) if cfg.model.get("scheduler") else None,
        input_norm=cfg.model.input_norm,
        run_config=run_config,
    )


def set_torch_threads(cfg: DictConfig) -> None:
    """``torch_threads`` if set; under a launcher running jobs in parallel (joblib ``n_jobs``), the cores divided
    between the jobs so they do not oversubscribe the CPU; else torch's default."""
    threads = cfg.torch_threads
    if not threads:
        from hydra.core.hydra_config import HydraConfig

        n_jobs = (
            OmegaConf.select(HydraConfig.get(), "launcher.n_jobs", default=None) if HydraConfig.initialized() else None
        )
        if n_jobs is not None and n_jobs != 1:
            cores = os.cpu_count() or 1
            threads = max(1, cores // (cores if n_jobs < 0 else min(int(n_jobs), cores)))
    if threads:
        torch.set_num_threads(int(threads))
