"""The patch CNN at a crop size (``evaluate.py ckpt_path=... eval.crop=P``): the same crops PRNU and the matcher
are scored on, the CNN seeing only the patches inside each crop.

Each photo's ``eval.crops_per_image`` most central cells of its centred ``P`` px grid (one centred crop by
default) are cut; inside a crop, the CNN's non-overlapping patches (``data.patches.size``, starting at the crop's
even corner so the colour-filter phase is the one training saw) are classified and their probabilities averaged:
that is the crop's score per class. The photo's score is the mean over its crops. The CNN has no fingerprint, so
its crops sit on the photo's own centred grid (the fingerprint methods use the area a photo shares with every
fingerprint: for same-size photos, the same positions).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from sci_lightning.data.images import SkippedImage, load_rgb
from sci_lightning.data.patches import centred_grid
from sci_lightning.errors import SCIConfigError
from sci_lightning.forensic.verification import crop_metrics
from sci_lightning.methods.cnn.inference import patch_probabilities
from sci_lightning.methods.cnn.module import SCIClassifier
from sci_lightning.outputs import Metrics, write_image_results

log = logging.getLogger(__name__)


def crop_probabilities(module: SCIClassifier, path: str, crop: int, n: int | None, patch: int) -> np.ndarray:
    """``(crops, classes)``: the mean patch probability inside each co-located crop of one photo."""
    img = load_rgb(path)
    positions = centred_grid(img.shape[0], img.shape[1], crop, n or 1)
    if not len(positions):
        raise SCIConfigError("eval.crop", f"{path}: {crop} px is larger than the photo", "use a smaller eval.crop")
    k = crop // patch
    rows = []
    for y, x in positions:
        cells = img[y : y + k * patch, x : x + k * patch].reshape(k, patch, k, patch, 3).swapaxes(1, 2)
        rows.append(patch_probabilities(module, np.ascontiguousarray(cells.reshape(-1, patch, patch, 3))).mean(0))
    return np.stack(rows)


def evaluate_crops(
    module: SCIClassifier, records: list, classes: list[str], label_field: str, cfg: Any, out_dir: Path, patch: int
) -> Metrics:
    """Crop-level and photo-level accuracy and the verification view of the CNN at ``eval.crop``; writes
    ``predictions.csv``, the confusion matrix and ``roc.png``. Returns the ``test/*`` metrics."""
    crop, n = int(cfg.eval.crop), cfg.eval.crops_per_image
    if crop < patch:
        raise SCIConfigError(
            "eval.crop",
            f"{crop} px holds no {patch} px patch of this CNN",
            f"use eval.crop={patch} or more (the CNN classifies {patch} px patches)",
        )
    module.eval()
    scored, kept = [], []
    for r in records:
        try:
            scored.append(crop_probabilities(module, str(r.path), crop, n, patch))
            kept.append(r)
        except SkippedImage as err:
            log.warning("skipped %s: %s", r.path, err)
    truth = np.array([classes.index(r.label(label_field)) for r in kept])
    photo = np.stack([s.mean(0) for s in scored])
    pred = photo.argmax(1)
    identity = {c: i for i, c in enumerate(classes)}
    crops = crop_metrics(scored, classes, truth, identity, len(classes), (out_dir / "roc.png", "CNN"))
    cells = [(str(r.path), [f"{v:.6f}" for v in row]) for r, row in zip(kept, photo)]
    rows = ([f"prob_{c}" for c in classes], cells)
    image = write_image_results(out_dir, classes, truth, pred, f"CNN, {crop} px crops", rows)
    return {"eval_crop": crop, **image, **crops, "n_test_images": len(kept)}
