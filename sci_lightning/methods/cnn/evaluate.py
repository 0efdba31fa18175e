"""``method=cnn`` evaluation: reproduce a checkpoint's test metrics, or give verdicts on a folder of photos."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from sci_lightning.data.transforms import questioned_paths
from sci_lightning.errors import SCIConfigError
from sci_lightning.forensic.report import finish_folder_verdicts
from sci_lightning.methods.cnn.checkpoint import Loaded, load_module
from sci_lightning.methods.cnn.crops import evaluate_crops
from sci_lightning.methods.cnn.loggers import build_loggers, finish_wandb, log_summary
from sci_lightning.methods.cnn.setup import build_datamodule
from sci_lightning.methods.cnn.train import test_and_report
from sci_lightning.methods.cnn.transformed import evaluate_transformed
from sci_lightning.methods.cnn.verdicts import cnn_verdicts, questioned_verdicts, score_rows_for_csv, write_cnn_verdicts
from sci_lightning.methods.wiring import run_metadata
from sci_lightning.outputs import Metrics, write_json, write_ranked_predictions

log = logging.getLogger(__name__)


def _verdicts_for_folder(cfg: DictConfig, loaded: Loaded, out_dir: Path, what: str) -> Metrics:
    """``images=DIR``: ranked cameras, calibrated verdicts and heat maps for unlabelled photos."""
    module, run_cfg, classes, settings, cal = loaded
    paths = questioned_paths(cfg.images, cfg.image_extensions, cfg.eval.transform, cfg.paths.cache_dir, int(cfg.seed))
    verdicts, skipped = cnn_verdicts(module, paths, settings, classes, cal)
    write_cnn_verdicts(out_dir, verdicts, classes, settings, cal, what, int(cfg.verdict.max_heatmaps))
    return finish_folder_verdicts(
        out_dir,
        "cnn",
        {"ckpt_path": str(cfg.ckpt_path), "task": run_cfg.task.name, "classes": classes},
        verdicts,
        skipped,
        tail={"calibrated": cal is not None},
        predictions=lambda file, vs: write_ranked_predictions(file, classes, score_rows_for_csv(vs, skipped)),
    )


def evaluate(cfg: DictConfig) -> Metrics:
    """Evaluate ``cfg.ckpt_path`` on its test fold (or ``images=DIR``); returns what ``metrics.json`` holds."""
    loaded = load_module(cfg.ckpt_path, cfg)
    module, run_cfg, classes, settings, cal = loaded
    size = settings.size
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    what = f"the {run_cfg.model.name} CNN of checkpoint {cfg.ckpt_path}"
    if cal is None:
        log.warning(
            "checkpoint %s holds no calibration (written before it existed): scores are raw mean patch "
            "probabilities and no 'unknown' verdicts are given",
            cfg.ckpt_path,
        )
    loggers = build_loggers(cfg.logger)
    try:
        if cfg.images:
            if cfg.eval.crop:
                raise SCIConfigError(
                    "eval.crop",
                    "the CNN's verdicts for images=DIR use the photo's patch grid, not a crop size",
                    "drop eval.crop (or evaluate the test photos at a crop size without images=)",
                )
            metrics = _verdicts_for_folder(cfg, loaded, out_dir, what)
            log_summary(loggers, metrics)
            return metrics
        dm = build_datamodule(run_cfg)
        if dm.classes != classes:
            raise SCIConfigError(
                "data",
                f"the data has classes {dm.classes} but the checkpoint was trained on {classes}",
                "evaluate on data with the same cameras and task as the training run",
            )
        if cfg.eval.transform != "none" or cfg.eval.crop:  # photo by photo, not the cached patches' test loop
            tests = dm.split_records("test")
            result = (
                evaluate_transformed(module, tests, classes, dm.label_field, settings, cal, cfg, out_dir)
                if cfg.eval.transform != "none"
                else evaluate_crops(module, tests, classes, dm.label_field, cfg, out_dir, size)
            )
            metrics = {**run_metadata(run_cfg, dm.classes, "cnn"), "ckpt_path": str(cfg.ckpt_path), **result}
            write_json(out_dir / "metrics.json", metrics)
            log_summary(loggers, metrics)
            return metrics
        trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=[], enable_checkpointing=False)
        meta = {**run_metadata(run_cfg, dm.classes, "cnn"), "ckpt_path": str(cfg.ckpt_path)}

        def after() -> Metrics:  # fixed splits: verdicts with the checkpoint's own calibration
            if dm.mode == "kfold":
                return {}
            return questioned_verdicts(module, dm, out_dir, cal, what, int(cfg.verdict.max_heatmaps))

        return test_and_report(trainer, module, dm, out_dir, meta, after=after)
    finally:
        finish_wandb(loggers)
