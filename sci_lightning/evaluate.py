"""``python evaluate.py ckpt_path=...``: reproduce a run's test metrics, or score a folder of questioned images.

The checkpoint carries the training run's composed config and class list, so ``ckpt_path`` alone rebuilds the
same data, fold and network. Overrides typed on the command line (``fold=3``, ``data.root=...``,
``data=miche``) are applied on top of that saved config.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any, NamedTuple

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate, to_absolute_path
from omegaconf import DictConfig, OmegaConf

from sci_lightning.calibration import Calibration
from sci_lightning.data.cache import PatchSettings
from sci_lightning.data.layouts import list_images
from sci_lightning.errors import SCIConfigError
from sci_lightning.forensic import CKPT_KEY, cnn_verdicts, questioned_verdicts, score_rows_for_csv, write_cnn_verdicts
from sci_lightning.loggers import build_loggers, finish_wandb, log_summary
from sci_lightning.reporting import write_json, write_ranked_predictions, write_skipped
from sci_lightning.train import build_datamodule, build_module, run_metadata, test_and_report
from sci_lightning.verdict import UNKNOWN

log = logging.getLogger(__name__)

# Keys that belong to the evaluation run itself, never copied into the training config.
EVAL_KEYS = ("ckpt_path", "method", "prnu", "images", "image_extensions", "verdict", "logger", "trainer", "paths", "hydra",
             "callbacks")


def load_checkpoint(path: str) -> dict[str, Any]:
    """Load a checkpoint without executing code from it (``weights_only=True``)."""
    if not path or path == "???":
        raise SCIConfigError("ckpt_path", "is not set", "pass ckpt_path=outputs/.../checkpoints/<name>.ckpt")
    file = Path(to_absolute_path(str(path)))
    if not file.is_file():
        raise SCIConfigError("ckpt_path", f"{file} does not exist", "point ckpt_path at a .ckpt file of a train.py run")
    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise SCIConfigError(
            "ckpt_path", f"{file} was refused: it holds objects that would execute code when loaded ({err})".split("\n")[0],
            "only load checkpoints written by sci-lightning; never disable this check for files from strangers",
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise SCIConfigError("ckpt_path", f"{file} is not a readable checkpoint ({err})", "re-copy the file") from None
    hp = ckpt.get("hyper_parameters") or {}
    if "run_config" not in hp or "classes" not in hp:
        raise SCIConfigError("ckpt_path", f"{file} is not a sci-lightning checkpoint (no run config inside)",
                             "use a checkpoint written by train.py")
    return ckpt


def merge_overrides(saved: dict, cfg: DictConfig) -> DictConfig:
    """The training config from the checkpoint, with the command-line overrides of this evaluation on top."""
    merged = OmegaConf.create(saved)
    if not HydraConfig.initialized():
        return merged
    hc = HydraConfig.get()
    for override in hc.overrides.task:
        key = override.split("=", 1)[0].lstrip("+~")
        top = key.split(".")[0].split("/")[0]
        if top in EVAL_KEYS:
            continue
        if top == "model":
            log.warning("ignoring override %r: the network is fixed by the checkpoint's weights", override)
            continue
        value = OmegaConf.select(cfg, key)
        value = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        OmegaConf.update(merged, key, value, merge=False, force_add=True)
    return merged


class Loaded(NamedTuple):
    """A checkpoint ready for inference."""

    module: Any
    run_cfg: DictConfig
    classes: list[str]
    settings: PatchSettings
    calibration: Calibration | None  # None for checkpoints written before calibration existed


def load_module(ckpt_path: str, cfg: DictConfig | None = None) -> Loaded:
    """The trained network of a checkpoint, its run config, classes, patch settings and calibration.

    ``cfg`` (this evaluation's config) supplies command-line overrides applied on top of the saved run config.
    """
    ckpt = load_checkpoint(ckpt_path)
    hp = ckpt["hyper_parameters"]
    run_cfg = merge_overrides(hp["run_config"], cfg) if cfg is not None else OmegaConf.create(hp["run_config"])
    classes = list(hp["classes"])
    settings = PatchSettings.from_cfg(run_cfg.data.patches, seed=run_cfg.seed)
    module = build_module(run_cfg, classes, settings.size)
    module.load_state_dict(ckpt["state_dict"])
    module.eval()
    return Loaded(module, run_cfg, classes, settings, Calibration.from_dict(ckpt.get(CKPT_KEY)))


def questioned_paths(images: str, extensions: list[str]) -> list[Path]:
    """The photos named by ``images=`` (a folder, searched recursively, or one file)."""
    target = Path(to_absolute_path(str(images)))
    if target.is_file():
        return [target]
    if not target.is_dir():
        raise SCIConfigError("images", f"{target} does not exist", "pass images=DIR (a folder of photos) or a file")
    paths = list_images(target, extensions)
    if not paths:
        raise SCIConfigError("images", f"no images with extensions {extensions} under {target}",
                             "check the folder or set image_extensions")
    return paths


def run(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.ckpt_path`` (or, with ``method=prnu``, the PRNU baseline); returns ``metrics.json``."""
    method = cfg.get("method", "cnn")
    if method == "prnu":
        from sci_lightning.prnu.evaluate import run_prnu

        return run_prnu(cfg)
    if method != "cnn":
        raise SCIConfigError("method", f"unknown method {method!r}", "use method=cnn (a checkpoint) or method=prnu")
    module, run_cfg, classes, settings, cal = load_module(cfg.get("ckpt_path"), cfg)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    what = f"the {run_cfg.model.name} CNN of checkpoint {cfg.ckpt_path}"
    max_heatmaps = int((cfg.get("verdict") or {}).get("max_heatmaps", 200))
    if cal is None:
        log.warning("checkpoint %s holds no calibration (written before it existed): scores are raw mean patch "
                    "probabilities and no 'unknown' verdicts are given", cfg.ckpt_path)
    loggers = build_loggers(cfg.get("logger"))
    try:
        if cfg.get("images"):
            paths = questioned_paths(cfg.images, list(cfg.image_extensions))
            verdicts, skipped = cnn_verdicts(module, paths, settings, classes, cal)
            write_ranked_predictions(out_dir / "predictions.csv", classes,
                                     score_rows_for_csv(verdicts, skipped))
            write_cnn_verdicts(out_dir, verdicts, classes, settings, cal, what, max_heatmaps)
            if skipped:
                write_skipped(out_dir / "skipped_images.csv", [(r["path"], r["reason"]) for r in skipped])
            metrics = {"ckpt_path": str(cfg.ckpt_path), "task": run_cfg.task.name, "classes": classes,
                       "n_images": len(verdicts), "n_skipped_images": len(skipped),
                       "n_unknown_verdicts": sum(v["decision"] == UNKNOWN for v in verdicts),
                       "calibrated": cal is not None}
            write_json(out_dir / "metrics.json", metrics)
            log_summary(loggers, metrics)
            log.info("verdicts for %d questioned images (%d skipped, %d unknown) -> %s", len(verdicts),
                     len(skipped), metrics["n_unknown_verdicts"], out_dir / "report.md")
            return metrics
        dm = build_datamodule(run_cfg)
        if dm.classes != classes:
            raise SCIConfigError("data", f"the data has classes {dm.classes} but the checkpoint was trained on "
                                 f"{classes}", "evaluate on data with the same cameras and task as the training run")
        trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=[], enable_checkpointing=False)
        meta = {**run_metadata(run_cfg, dm), "ckpt_path": str(cfg.ckpt_path)}

        def after() -> dict[str, Any]:  # fixed splits: verdicts with the checkpoint's own calibration
            return questioned_verdicts(module, dm, out_dir, cal, what, max_heatmaps) if dm.mode != "kfold" else {}

        return test_and_report(trainer, module, dm, out_dir, meta, after=after)
    finally:
        finish_wandb(loggers)
