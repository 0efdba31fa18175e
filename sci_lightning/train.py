"""``python train.py``: fit on a fold's training images, select on validation, test the best checkpoint."""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sci_lightning.data.datamodule import SCIDataModule
from sci_lightning.forensic import after_test
from sci_lightning.loggers import build_loggers, finish_wandb, log_images, log_summary
from sci_lightning.module import SCIClassifier
from sci_lightning.reporting import write_test_outputs

log = logging.getLogger(__name__)

# The module, not the datamodule, converts batches on the device by design; Lightning warns about that pairing.
warnings.filterwarnings("ignore", message=".*overridden `on_after_batch_transfer`.*")


def build_datamodule(cfg: DictConfig) -> SCIDataModule:
    """The datamodule for ``cfg.data`` / ``cfg.task`` / ``cfg.fold``, indexed, cached and split.

    A network that needs its own patch size (``model.patch_size``, e.g. 64 for Bondi) gets patches of that size:
    the data's patch setting follows the model, never a silent resize of 32 px patches.
    """
    data = OmegaConf.to_container(cfg.data, resolve=True)
    wanted = cfg.model.get("patch_size")
    if wanted and int(wanted) != int(data["patches"]["size"]):
        log.info("model %s takes %d px patches: cutting those instead of data.patches.size=%d", cfg.model.name,
                 wanted, data["patches"]["size"])
        data["patches"]["size"] = int(wanted)
    dm = SCIDataModule(data, task_name=cfg.task.name, fold=cfg.fold,
                       n_folds=cfg.n_folds, seed=cfg.seed, label_field=cfg.task.get("label_field"))
    dm.prepare_data()
    dm.setup("fit")
    return dm


def build_module(cfg: DictConfig, classes: list[str], patch_size: int, run_config: dict | None = None) -> SCIClassifier:
    """The LightningModule for ``cfg.model`` with ``classes`` outputs."""
    net = instantiate(cfg.model.net, num_classes=len(classes), patch_size=patch_size)
    return SCIClassifier(
        net=net, classes=classes, optimizer=instantiate(cfg.model.optimizer),
        scheduler=instantiate(cfg.model.scheduler) if cfg.model.get("scheduler") else None,
        input_norm=cfg.model.get("input_norm", "centered"), run_config=run_config,
    )


def run_metadata(cfg: DictConfig, dm: SCIDataModule) -> dict[str, Any]:
    """The descriptive keys that open every metrics.json."""
    return {"task": cfg.task.name, "data": cfg.data.name, "model": cfg.model.name, "fold": int(cfg.fold),
            "n_folds": int(cfg.n_folds), "seed": int(cfg.seed), "classes": list(dm.classes)}


def test_and_report(trainer: pl.Trainer, module: SCIClassifier, dm: SCIDataModule, out_dir: Path,
                    meta: dict[str, Any], ckpt_path: str | None = None,
                    after: Callable[[], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run the test loop and write metrics.json, predictions.csv and the confusion matrices.

    ``after`` runs once the module holds the tested weights (calibration, verdicts); its metrics join the rest.
    """
    tested = trainer.test(module, datamodule=dm, ckpt_path=ckpt_path, verbose=False)
    metrics = {**meta, **dict(sorted(tested[0].items())), **dm.summary()}
    if not trainer.is_global_zero:  # under DDP the metrics are already gathered; one process writes the files
        return metrics
    if after is not None:
        metrics.update(after())
    pngs = write_test_outputs(out_dir, dm.classes, [str(r.path) for r in dm.split_records("test")],
                              module.test_results, metrics, dm.skipped)
    log_images(trainer.loggers, pngs)
    log_summary(trainer.loggers, metrics)
    log.info("test fold %d: patch acc %.4f, image acc %.4f (vote %.4f) on %d images -> %s", meta["fold"],
             metrics["test/acc_patch"], metrics["test/acc_image"], metrics["test/acc_image_vote"],
             metrics["n_test_images"], out_dir / "metrics.json")
    return metrics


def finished_metrics(out_dir: Path, fold: int) -> dict[str, Any] | None:
    """The metrics of a run dir whose fold already finished (metrics.json is written last), else None."""
    try:
        metrics = json.loads((out_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return metrics if metrics.get("fold") == fold and "test/acc_image" in metrics else None


def resume_checkpoint(cfg: DictConfig, out_dir: Path) -> str | None:
    """``ckpt_path`` as given, or this run dir's ``last.ckpt`` when resuming an interrupted fold."""
    ckpt, last = cfg.get("ckpt_path"), out_dir / "checkpoints" / "last.ckpt"
    if ckpt == "last" or (ckpt is None and cfg.get("resume", True)):
        if last.is_file():
            log.info("resuming the interrupted run from %s", last)
            return str(last)
        if ckpt == "last":
            log.warning("ckpt_path=last but %s does not exist: starting from scratch", last)
        return None
    return ckpt


def torch_threads(cfg: DictConfig) -> int | None:
    """``torch_threads`` if set; under a launcher running jobs in parallel (joblib ``n_jobs``), the cores divided
    between the jobs so they do not oversubscribe the CPU; else None (torch's default)."""
    if cfg.get("torch_threads"):
        return int(cfg.torch_threads)
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    n_jobs = OmegaConf.select(HydraConfig.get(), "launcher.n_jobs", default=None)
    cores = os.cpu_count() or 1
    if n_jobs is None or n_jobs == 1:
        return None
    parallel = cores if n_jobs < 0 else min(int(n_jobs), cores)
    return max(1, cores // parallel)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train and test one fold; returns the metrics written to ``metrics.json``."""
    out_dir = Path(cfg.paths.output_dir)
    done = finished_metrics(out_dir, cfg.fold) if cfg.get("skip_complete", True) else None
    if done is not None:
        log.info("fold %d already finished in %s: skipped (skip_complete=false runs it again)", cfg.fold, out_dir)
        return done
    pl.seed_everything(cfg.seed, workers=True)
    threads = torch_threads(cfg)
    if threads:
        torch.set_num_threads(threads)
    dm = build_datamodule(cfg)
    run_config = OmegaConf.to_container(cfg, resolve=True)
    module = build_module(cfg, dm.classes, dm.settings.size, run_config=run_config)
    loggers = build_loggers(cfg.get("logger"), cfg)
    try:
        callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c and "_target_" in c]
        trainer: pl.Trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
        for lg in loggers:
            lg.log_hyperparams(run_config)
        trainer.fit(module, datamodule=dm, ckpt_path=resume_checkpoint(cfg, out_dir))
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        meta = {**run_metadata(cfg, dm), "best_checkpoint": best or None}
        last = Path(trainer.checkpoint_callback.last_model_path or "") if trainer.checkpoint_callback else None

        def after() -> dict[str, Any]:
            return after_test(module, dm, out_dir, cfg.get("verdict") or {}, [best, last],
                              f"the {cfg.model.name} CNN trained in this run")

        return test_and_report(trainer, module, dm, out_dir, meta, ckpt_path="best" if best else None, after=after)
    finally:
        finish_wandb(loggers)
