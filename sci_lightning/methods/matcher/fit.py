"""Fitting the pair network on camera stacks (pre-training and fine-tuning share it) and its weight files."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from sci_lightning.errors import SCIConfigError
from sci_lightning.fingerprint.references import CameraStack
from sci_lightning.methods.matcher.module import MatcherModule
from sci_lightning.methods.matcher.pairs import PairDataset
from sci_lightning.models.pcn import PairNet

log = logging.getLogger(__name__)

WEIGHTS_FORMAT = 1


@dataclass
class FitSettings:
    """What one fit does (``matcher.*`` in the configs; the pre-training command's options)."""

    crop: int = 64  # side of the training pairs; the network is fully convolutional and scores any size
    pairs_per_epoch: int = 8192
    val_pairs: int = 2048
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    hard_negatives: float = 0.5  # share of negatives drawn from another unit of the same model
    max_minutes: float | None = None  # stop early (keeps the weights reached) when the time is up
    seed: int = 0


def fit(
    train_stacks: list[CameraStack],
    val_stacks: list[CameraStack] | None,
    settings: FitSettings,
    net: dict[str, Any],
    init: dict[str, torch.Tensor] | None = None,
    logger: Any = False,
    accelerator: str = "auto",
    precision: str | None = None,
) -> tuple[MatcherModule, dict[str, float]]:
    """Train (or fine-tune from ``init``) on pairs of ``train_stacks``; validate on fixed pairs of ``val_stacks``
    (other cameras for pre-training, the held-out photos for fine-tuning). Returns the module and the last
    validation metrics."""
    pl.seed_everything(settings.seed, workers=True, verbose=False)
    train = PairDataset(train_stacks, settings.crop, settings.pairs_per_epoch, settings.seed, settings.hard_negatives)
    steps = settings.epochs * math.ceil(len(train) / settings.batch_size)
    module = MatcherModule(net, settings.lr, settings.weight_decay, total_steps=steps)
    if init is not None:
        module.net.load_state_dict(init)
    val_loader = None
    if val_stacks and len(val_stacks) >= 2:
        val = PairDataset(val_stacks, settings.crop, settings.val_pairs, settings.seed + 1, settings.hard_negatives)
        val_loader = DataLoader(val, batch_size=256)
    trainer = pl.Trainer(
        max_epochs=settings.epochs,
        max_time={"minutes": settings.max_minutes} if settings.max_minutes else None,
        accelerator=accelerator,
        devices=1,
        precision=precision,
        logger=logger,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if val_loader is not None else 0,
        log_every_n_steps=10,
    )
    trainer.fit(module, DataLoader(train, batch_size=settings.batch_size, shuffle=False), val_loader)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("val/", "train/"))}
    metrics["epochs_done"] = trainer.current_epoch  # fewer than settings.epochs when max_minutes stopped it
    return module, metrics


def save_weights(
    path: Path, state: dict[str, torch.Tensor], net: dict[str, Any], record: dict[str, Any], json_copy: bool = False
) -> Path:
    """Network weights (``state``, built by ``PairNet(**net)``) plus how they were made, written atomically;
    plain values only, so the file loads with ``weights_only=True``. ``json_copy``: the record also as
    ``<path>.json`` beside it (the shipped weights)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in state.items()}
    tmp = path.with_name(f".tmp-{path.name}")
    torch.save({"format": WEIGHTS_FORMAT, "net": dict(net), "state_dict": state, **record}, tmp)
    tmp.replace(path)
    if json_copy:
        path.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    return path


def record_of(blob: dict[str, Any]) -> dict[str, Any]:
    """How a loaded weight file was made: everything but the weights themselves."""
    return {k: v for k, v in blob.items() if k not in ("format", "net", "state_dict")}


def net_from(blob: dict[str, Any]) -> PairNet:
    """The network a weight file (or a fit's ``{"net", "state_dict"}``) describes, weights loaded."""
    net = PairNet(**blob["net"])
    net.load_state_dict(blob["state_dict"])
    return net


def load_weights(path: str | Path, setting: str = "matcher.pretrained") -> dict[str, Any]:
    """A weight file written by :func:`save_weights` (``weights_only=True``: no code runs on load)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SCIConfigError(setting, f"{path} does not exist", "point it at a matcher weight file or set it to null")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a damaged or foreign file
        raise SCIConfigError(setting, f"{path} is not a matcher weight file ({err})", "retrain or re-download") from err
    if not isinstance(blob, dict) or blob.get("format") != WEIGHTS_FORMAT or "state_dict" not in blob:
        raise SCIConfigError(setting, f"{path} is not a matcher weight file", "use a file written by this version")
    return blob
