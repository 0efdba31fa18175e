"""``method=cnn`` training: fit on a fold's training images, select on validation, test the selected checkpoint."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sci_lightning.data.datamodule import SCIDataModule
from sci_lightning.forensic.verification import class_pair_metrics
from sci_lightning.methods.cnn.loggers import build_loggers, finish_wandb, log_images, log_summary
from sci_lightning.methods.cnn.module import SCIClassifier
from sci_lightning.methods.cnn.setup import build_datamodule, build_module, set_torch_threads
from sci_lightning.methods.cnn.verdicts import after_test
from sci_lightning.methods.wiring import run_metadata
from sci_lightning.outputs import Metrics, write_test_outputs

log = logging.getLogger(__name__)


def test_and_report(
    trainer: pl.Trainer,
    module: SCIClassifier,
    dm: SCIDataModule,
    out_dir: Path,
    meta: dict[str, Any],
    ckpt_path: str | None = None,
    after: Callable[[], Metrics] | None = None,
) -> Metrics:
    """Run the test loop and write metrics.json, predictions.csv and the confusion matrices.

    ``after`` runs once the module holds the tested weights (calibration, verdicts); its metrics join the rest.
    """
    tested = trainer.test(module, datamodule=dm, ckpt_path=ckpt_path, verbose=False)
    metrics = {**meta, **dict(sorted(tested[0].items())), **dm.summary()}
    if not trainer.is_global_zero:  # under DDP the metrics are already gathered; one process writes the files
        return metrics
    # The verification view (ROC AUC, TPR at 1 % FPR, EER) over (test photo, class) pairs, as for every method.
    probs, target = module.test_results["mean_probs"].numpy(), module.test_results["target"].numpy()
    out_dir.mkdir(parents=True, exist_ok=True)
    roc = (out_dir / "roc.png", "CNN (mean patch probability)")
    metrics.update(class_pair_metrics(probs, target, len(dm.classes), roc))
    if after is not None:
        metrics.update(after())
    pngs = write_test_outputs(
        out_dir, dm.classes, [str(r.path) for r in dm.split_records("test")], module.test_results, metrics, dm.skipped
    )
    log_images(trainer.loggers, {**pngs, "roc": out_dir / "roc.png"}, out_dir / "confusion_matrices.json")
    log_summary(trainer.loggers, metrics)
    log.info(
        "test fold %d: patch acc %.4f, image acc %.4f (vote %.4f) on %d images -> %s",
        meta["fold"],
        metrics["test/acc_patch"],
        metrics["test/acc_image"],
        metrics["test/acc_image_vote"],
        metrics["n_test_images"],
        out_dir / "metrics.json",
    )
    return metrics


def resume_from(cfg: DictConfig) -> str | None:
    """``ckpt_path`` as given; else, when resuming is on and an interrupted run left this run dir's ``last.ckpt``,
    Lightning's ``"last"`` (asked for "last" where there is none, Lightning warns on every fresh run)."""
    if cfg.ckpt_path is not None:
        return str(cfg.ckpt_path)
    saver = (cfg.get("callbacks") or {}).get("model_checkpoint") or {}
    last = Path(str(saver["dirpath"])) / "last.ckpt" if saver.get("dirpath") else None
    return "last" if cfg.resume and last is not None and last.is_file() else None


def validate_selected(
    trainer: pl.Trainer, module: SCIClassifier, dm: SCIDataModule, ckpt: str | None
) -> dict[str, float]:
    """Validation metrics of the selected checkpoint: what a hyper-parameter search may optimise (never test)."""
    if not len(dm.splits["val"]):
        return {}
    values = trainer.validate(module, datamodule=dm, ckpt_path=ckpt, verbose=False)
    return {k: float(v) for k, v in sorted(values[0].items())}


def train(cfg: DictConfig) -> Metrics:
    """Train and test one fold; returns the metrics written to ``metrics.json``."""
    out_dir = Path(cfg.paths.output_dir)
    pl.seed_everything(cfg.seed, workers=True)
    set_torch_threads(cfg)
    dm = build_datamodule(cfg)
    run_config = OmegaConf.to_container(cfg, resolve=True)
    module = build_module(cfg, dm.classes, dm.settings.size, run_config=run_config)
    loggers = build_loggers(cfg.logger, cfg)
    try:
        callbacks = [instantiate(c) for c in (cfg.callbacks or {}).values() if c and "_target_" in c]
        trainer: pl.Trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
        for lg in loggers:
            lg.log_hyperparams(run_config)
        trainer.fit(module, datamodule=dm, ckpt_path=resume_from(cfg))
        ckpt_cb = trainer.checkpoint_callback
        best = ckpt_cb.best_model_path if ckpt_cb else ""
        selected = "best" if best else None
        meta = {
            **run_metadata(cfg, dm.classes, "cnn"),
            "best_checkpoint": best or None,
            **validate_selected(trainer, module, dm, selected),
        }
        last = Path(ckpt_cb.last_model_path or "") if ckpt_cb else None

        def after() -> Metrics:
            return after_test(
                module, dm, out_dir, cfg.verdict, [best, last], f"the {cfg.model.name} CNN trained in this run"
            )

        return test_and_report(trainer, module, dm, out_dir, meta, ckpt_path=selected, after=after)
    finally:
        finish_wandb(loggers)
