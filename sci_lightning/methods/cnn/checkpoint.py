"""CNN checkpoints: loaded without executing code, rebuilt from the run config saved inside, calibration stored.

The checkpoint carries the training run's composed config and class list, so ``ckpt_path`` alone rebuilds the
same data, fold and network. Overrides typed on the command line (``fold=3``, ``data.root=...``,
``data=miche``) are applied on top of that saved config.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from sci_lightning.data.cache import PatchSettings
from sci_lightning.errors import SCIConfigError
from sci_lightning.forensic.calibration import Calibration
from sci_lightning.methods.cnn.setup import build_module

log = logging.getLogger(__name__)

CKPT_KEY = "sci_calibration"

# Keys that belong to the evaluation run itself, never copied into the training config.
EVAL_KEYS = (
    "ckpt_path",
    "method",
    "prnu",
    "images",
    "image_extensions",
    "verdict",
    "logger",
    "trainer",
    "paths",
    "hydra",
    "callbacks",
)


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
            "ckpt_path",
            f"{file} was refused: it holds objects that would execute code when loaded ({err})".split("\n")[0],
            "only load checkpoints written by sci-lightning; never disable this check for files from strangers",
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise SCIConfigError("ckpt_path", f"{file} is not a readable checkpoint ({err})", "re-copy the file") from None
    hp = ckpt.get("hyper_parameters") or {}
    if "run_config" not in hp or "classes" not in hp:
        raise SCIConfigError(
            "ckpt_path",
            f"{file} is not a sci-lightning checkpoint (no run config inside)",
            "use a checkpoint written by train.py",
        )
    return ckpt


def merge_overrides(saved: dict, cfg: DictConfig) -> DictConfig:
    """The training config from the checkpoint, with the command-line overrides of this evaluation on top.

    Overrides are read with Hydra's own parser, so ``key=value``, ``+key=value``, ``data=miche`` (a group: the
    composed group replaces the saved one) and ``~key`` (the key is deleted) mean what they mean to Hydra.
    """
    merged = OmegaConf.create(saved)
    if not HydraConfig.initialized():
        return merged
    for override in OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task)):
        key = override.key_or_group
        top = key.split(".")[0].split("/")[0]
        if top in EVAL_KEYS:
            continue
        if top == "model":
            log.warning("ignoring override %r: the network is fixed by the checkpoint's weights", override.input_line)
            continue
        if override.is_delete():
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(merged, parent) if parent else merged
            if OmegaConf.is_dict(node) and leaf in node:
                del node[leaf]
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
    settings = PatchSettings.from_mapping(run_cfg.data.patches, seed=run_cfg.seed)
    module = build_module(run_cfg, classes, settings.size)
    module.load_state_dict(ckpt["state_dict"])
    module.eval()
    return Loaded(module, run_cfg, classes, settings, Calibration.from_dict(ckpt.get(CKPT_KEY)))


def store_calibration(cal: Calibration, ckpt_paths: Sequence[str | Path]) -> None:
    """Add the calibration to checkpoints (plain values only: they still load with ``weights_only=True``)."""
    for path in {str(p) for p in ckpt_paths if p and Path(p).is_file()}:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        ckpt[CKPT_KEY] = cal.to_dict()
        tmp = Path(f"{path}.tmp")
        torch.save(ckpt, tmp)
        tmp.replace(path)
