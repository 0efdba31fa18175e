"""``method=matcher``: the learned fingerprint matcher (Mandelli et al. 2020) on the same folds, crops and
outputs as PRNU and the CNN.

``train.py method=matcher`` starts from the shipped pre-trained weights (``matcher.pretrained``), fine-tunes
them on pairs from the fold's training photos or a fixed split's references (``matcher.finetune``), fits the
calibrated P(match) and the open-set threshold on the validation photos, then tests: every test photo's
co-located crops against every reference camera's fingerprint (``eval.crop`` / ``eval.crops_per_image``; for
the whole photo, its ``matcher.tiles_per_image`` most central ``matcher.tile`` px tiles). ``evaluate.py
method=matcher [ckpt_path=...]`` does the same without fitting; with ``images=DIR`` it writes verdicts.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from sci_lightning.errors import SCIConfigError
from sci_lightning.fingerprint.references import (
    camera_stacks,
    fingerprints_of,
    require_scored,
)
from sci_lightning.forensic.decisions import scored_photos
from sci_lightning.forensic.report import finish_test
from sci_lightning.forensic.verification import crop_metrics
from sci_lightning.methods.matcher import calibration
from sci_lightning.methods.matcher.calibration import MatcherRule
from sci_lightning.methods.matcher.fit import FitSettings, fit, load_weights, net_from, save_weights
from sci_lightning.methods.matcher.pretrain import SHIPPED
from sci_lightning.methods.matcher.scoring import score_photos
from sci_lightning.methods.matcher.verdicts import Case, fixed_split_verdicts, questioned_folder_verdicts
from sci_lightning.methods.wiring import residual_store, run_log_of, run_metadata, search_of, selection_of
from sci_lightning.outputs import Metrics, write_image_results, write_json

log = logging.getLogger(__name__)

WEIGHTS_NAME = "matcher.pt"  # in <run dir>/checkpoints/: what evaluate.py ckpt_path= takes


def initial_weights(cfg: DictConfig) -> dict[str, Any] | None:
    """The weights to start from: ``ckpt_path`` if set, else ``matcher.pretrained`` (``shipped``, a file, or
    null: none)."""
    if cfg.get("ckpt_path"):
        return load_weights(to_absolute_path(str(cfg.ckpt_path)), "ckpt_path")
    pretrained = cfg.matcher.pretrained
    if pretrained in (None, "", "null"):
        return None
    path = SHIPPED if str(pretrained) == "shipped" else Path(to_absolute_path(str(pretrained)))
    return load_weights(path)


def window_of(cfg: DictConfig) -> tuple[int, int | None]:
    """``(crop, crops)``: ``eval.crop`` / ``eval.crops_per_image``, or for the whole photo the central tiles."""
    if cfg.eval.crop:
        return int(cfg.eval.crop), cfg.eval.crops_per_image
    return int(cfg.matcher.tile), int(cfg.matcher.tiles_per_image)


def _device(cfg: DictConfig) -> str:
    wanted = str(cfg.matcher.get("accelerator", "auto"))
    return "cuda" if wanted in ("auto", "gpu", "cuda") and torch.cuda.is_available() else "cpu"


def _fit(cfg: DictConfig, case: Case, init: dict[str, Any] | None, workers: int) -> tuple[dict, dict]:
    """Fine-tune (or train from scratch) on the training references; validation pairs from the validation photos."""
    m = cfg.matcher
    settings = FitSettings(**{k: m[k] for k in FitSettings.__dataclass_fields__ if k in m and k != "seed"})
    settings.seed = int(cfg.seed)
    train = camera_stacks(case.sel.split_records("train"), case.residuals, workers, m.max_side)
    val = camera_stacks(case.sel.split_records("val"), case.residuals, workers, m.max_side)
    net_kw = dict(init["net"]) if init else OmegaConf.to_container(m.net, resolve=True)
    module, metrics = fit(
        train, val or None, settings, net_kw, init["state_dict"] if init else None, accelerator=_device(cfg)
    )
    record = {
        "command": "train.py method=matcher",
        "fit": settings.__dict__,
        "started_from": (init or {}).get("command", "scratch"),
        "run_config": OmegaConf.to_container(cfg, resolve=True),
        "val_metrics": metrics,
    }
    path = save_weights(case.out_dir / "checkpoints" / WEIGHTS_NAME, module.net.state_dict(), net_kw, record)
    log.info("matcher weights -> %s (evaluate with: python evaluate.py method=matcher ckpt_path=%s)", path, path)
    return {"state_dict": module.net.state_dict(), "net": net_kw, "fit": settings.__dict__}, metrics


def prepare(cfg: DictConfig, fit_now: bool) -> tuple[Case, dict[str, float]]:
    """Select the images, obtain the network (loaded, fine-tuned or trained), estimate the fingerprints, and
    calibrate on the validation photos."""
    workers = os.cpu_count() or 1
    torch.set_num_threads(int(cfg.get("torch_threads") or torch.get_num_threads()))
    init = initial_weights(cfg)
    if init is None and not fit_now:
        raise SCIConfigError(
            "ckpt_path", "no matcher weights to evaluate", "pass ckpt_path=... or matcher.pretrained=shipped"
        )
    sel = selection_of(cfg, workers)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    case = Case(sel=sel, residuals=residual_store(cfg), out_dir=out_dir, window=window_of(cfg), device=_device(cfg))
    case.search = search_of(cfg)  # to say when a photo is not in its camera's geometry (it compares as stored)
    fit_metrics: dict[str, float] = {}
    if fit_now:
        init, fit_metrics = _fit(cfg, case, init, workers)
    case.net = net_from(init).to(case.device).eval()
    case.tile = int((init.get("fit") or {}).get("crop") or cfg.matcher.crop)
    refs = sel.references()
    case.camera_class = {r.camera: sel.classes.index(r.label(sel.label_field)) for r in refs}
    case.fingerprints = fingerprints_of(refs, case.residuals, workers, "Matcher fingerprints")
    case.calibration = _calibrate(cfg, case, workers)
    return case, fit_metrics


def _calibrate(cfg: DictConfig, case: Case, workers: int) -> MatcherRule | None:
    val = case.sel.split_records("val")
    if not val:
        log.warning("no validation photos: P(match) is the network's own sigmoid, threshold 0.5 (uncalibrated)")
        return None
    fps = fingerprints_of(case.sel.split_records("train"), case.residuals, workers, "Matcher fingerprints (cal.)")
    paths = [str(r.path) for r in val]
    scored = score_photos(
        case.net, paths, fps, case.residuals, case.window, workers, "Matcher validation", case.device, case.tile
    )
    require_scored(scored, paths)
    own = [{r.camera} if case.sel.label_field == "camera" else _cameras_of(case, r.device, fps) for r in val]
    cal = calibration.fit(scored, own, float(cfg.verdict.target_false_attribution))
    if cal is not None:
        write_json(case.out_dir / "calibration.json", cal)
    return cal


def _cameras_of(case: Case, device: str, fps: dict[str, np.ndarray]) -> set[str]:
    return {r.camera for r in case.sel.split_records("train") if r.device == device and r.camera in fps}


def class_logits(scored: list[dict[str, Any]], camera_class: dict[str, int], n_cls: int) -> np.ndarray:
    """``(photos, classes)`` mean logits; a class owning several cameras (model level) takes its best camera."""
    out = np.full((len(scored), n_cls), -np.inf)
    for row, s in enumerate(scored):
        for cam, value in s["scores"].items():
            out[row, camera_class[cam]] = max(out[row, camera_class[cam]], value)
    return out


def evaluate(cfg: DictConfig) -> Metrics:
    """``images=DIR``: verdicts for unlabelled photos; otherwise the test of the configured fold or split."""
    case, _ = prepare(cfg, fit_now=False)
    if cfg.images:
        return questioned_folder_verdicts(cfg, case)
    return _test(cfg, case, {})


def train(cfg: DictConfig) -> Metrics:
    """Fine-tune (``matcher.finetune``, or train when there are no weights to start from), calibrate, test."""
    fit_now = bool(cfg.matcher.finetune) or initial_weights(cfg) is None
    case, fit_metrics = prepare(cfg, fit_now)
    return _test(cfg, case, fit_metrics)


def _test(cfg: DictConfig, case: Case, fit_metrics: dict[str, float]) -> Metrics:
    sel, out_dir = case.sel, case.out_dir
    workers = os.cpu_count() or 1
    tests = sel.split_records("test")
    paths = [str(r.path) for r in tests]
    scored = score_photos(
        case.net, paths, case.fingerprints, case.residuals, case.window, workers, "Matcher test", case.device, case.tile
    )
    if cfg.eval.crop:
        require_scored(scored, paths)  # a crop size no photo can hold is the setting's fault: say so and stop
    all_scored, truth = scored, sel.split_labels("test")
    # whole photos: one too small for a tile (e.g. a crop60 copy of a small photo) is skipped and logged, the
    # run goes on
    skipped_now = [(r["path"], r["reason"]) for r in scored_photos(paths, scored)[1]]
    keep = [i for i, s in enumerate(scored) if "reason" not in s]
    if not keep:
        raise SCIConfigError(
            "matcher.tile",
            f"none of the {len(paths)} test photos holds one {case.window[0]} px tile (reasons above)",
            "use a smaller matcher.tile (the network scores tiles of that side)",
        )
    tests, scored, truth = [tests[i] for i in keep], [scored[i] for i in keep], truth[keep]
    n_cls = len(sel.classes)
    logits = class_logits(scored, case.camera_class, n_cls)
    pred = logits.argmax(1)
    roc = (out_dir / "roc.png", f"matcher ({case.window[0]} px)")
    crops = crop_metrics([s["crop_scores"] for s in scored], scored[0]["cameras"], truth, case.camera_class, n_cls, roc)
    p_match = calibration.probability(logits, case.calibration)
    columns = [f"p_match_{c}" for c in sel.classes]
    cells = [(str(r.path), [f"{v:.4g}" for v in row]) for r, row in zip(tests, p_match)]
    metrics = {
        **run_metadata(cfg, sel.classes, "matcher"),
        "model": "matcher",
        "eval_crop": case.window[0],
        **write_image_results(out_dir, sel.classes, truth, pred, "matcher, image level", (columns, cells)),
        **crops,
        "calibrated": case.calibration is not None,
        "matcher/threshold": calibration.threshold_of(case.calibration),
        **{f"fit/{k.replace('/', '_')}": v for k, v in fit_metrics.items()},
        **sel.summary(),
    }
    metrics["n_skipped_images"] = metrics.get("n_skipped_images", 0) + len(skipped_now)
    if sel.mode != "kfold":
        metrics.update(fixed_split_verdicts(cfg, case, all_scored))
    return finish_test(
        int(cfg.fold), "matcher", out_dir, metrics, [*sel.skipped, *skipped_now], run_log_of(cfg, "matcher")
    )
