"""Scoring unlabelled (questioned) images with a trained classifier, patch by patch."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch

from sci_lightning.data.cache import PatchSettings
from sci_lightning.data.datamodule import SCIDataModule
from sci_lightning.data.images import SkippedImage
from sci_lightning.data.patches import patches_from_file
from sci_lightning.methods.cnn.module import SCIClassifier, normalise_input

log = logging.getLogger(__name__)


class PatchScores(TypedDict):
    """One image's patch probabilities and its image-level scores (:func:`score_patches`)."""

    n_patches: int
    mean_probs: np.ndarray  # (C,) mean patch probability per class
    votes: np.ndarray  # (C,) patches whose most probable class it is
    patch_probs: np.ndarray  # (n, C)
    positions: np.ndarray  # each patch's top-left


@torch.no_grad()
def patch_probabilities(module: SCIClassifier, patches: torch.Tensor | np.ndarray) -> np.ndarray:
    """Class probabilities ``(n, C)`` of one batch of raw uint8 NHWC patches."""
    x = torch.as_tensor(patches).to(module.device)
    return module(normalise_input(x, module.input_norm)).softmax(1).float().cpu().numpy()


def score_patches(
    module: SCIClassifier, patches: np.ndarray, positions: np.ndarray, batch_size: int = 1024
) -> PatchScores:
    """Patch probabilities of one image's patches and its image-level scores (mean probability, votes)."""
    p = np.concatenate(
        [
            patch_probabilities(module, patches[start : start + batch_size])
            for start in range(0, len(patches), batch_size)
        ]
    )
    votes = np.bincount(p.argmax(1), minlength=p.shape[1])
    return PatchScores(n_patches=len(p), mean_probs=p.mean(0), votes=votes, patch_probs=p, positions=positions)


def score_files(module: SCIClassifier, paths: Sequence[Path], settings: PatchSettings) -> list[dict[str, Any]]:
    """Score every file; unusable ones come back with a ``reason`` instead of scores (and are logged)."""
    module.eval()
    rows = []
    for path in paths:
        try:
            patches, positions, hw = patches_from_file(
                str(path), settings.size, settings.per_image, settings.selection, settings.seed, key=Path(path).name
            )
        except SkippedImage as err:
            log.warning("skipped %s: %s", path, err)
            rows.append({"path": str(path), "reason": str(err)})
            continue
        rows.append({"path": str(path), "image_size": hw, **score_patches(module, patches, positions)})
    return rows


@torch.no_grad()
def split_image_probs(module: SCIClassifier, dm: SCIDataModule, stage: str, batch_size: int = 1024) -> np.ndarray:
    """Mean patch probabilities of every image of a split, in the order of ``dm.split_records(stage)``."""
    module.eval()
    ds = dm.datasets[stage]
    n_images = len(dm.splits[stage])
    sums = np.zeros((n_images, len(dm.classes)))
    counts = np.zeros(n_images)
    for start in range(0, len(ds), batch_size):
        x, _, owner = ds.__getitems__(list(range(start, min(len(ds), start + batch_size))))
        p = patch_probabilities(module, x)
        np.add.at(sums, owner.numpy(), p)
        np.add.at(counts, owner.numpy(), 1)
    return sums / np.clip(counts, 1, None)[:, None]


def validation_probs(module: SCIClassifier, dm: SCIDataModule) -> np.ndarray:
    """Mean patch probabilities of every validation image, in the order of ``dm.split_records("val")``: those the
    last validation loop computed (``trainer.validate`` of the selected weights, which training runs anyway), or,
    when the module holds none for every image, a pass of :func:`split_image_probs`."""
    res, n = module.val_results, len(dm.splits["val"])
    if res and len(res["image"]) == n and np.array_equal(res["image"].numpy(), np.arange(n)):
        return res["mean_probs"].numpy().astype(np.float64)
    return split_image_probs(module, dm, "val")
