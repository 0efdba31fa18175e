"""PRNU scoring shared by the baseline's runs and its verdicts: images, fingerprints, per-photo PCE / NCC."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from omegaconf import DictConfig

from sci_lightning.data.selection import Selection
from sci_lightning.fingerprint.quality import Quality
from sci_lightning.fingerprint.references import fingerprints_of
from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.methods.wiring import residual_store, selection_of

log = logging.getLogger(__name__)

DECISIONS = ("pce", "ncc")


def class_scores(scored: list[dict[str, Any]], camera_class: dict[str, int], n_cls: int) -> dict[str, np.ndarray]:
    """Per statistic, an (images, classes) array: a class owning several cameras (model level) scores its best.

    With the geometry search also ``evidence``, ``-log10`` of each camera's own false-alarm probability: what
    the PCE decision ranks by then, since a peak found among a million crop offsets means less than the same
    peak at the one aligned position."""
    keys = (*DECISIONS, "evidence") if any("geometry" in s for s in scored) else DECISIONS
    out = {k: np.full((len(scored), n_cls), -np.inf) for k in keys}
    for row, s in enumerate(scored):
        for cam, values in s["scores"].items():
            col = camera_class[cam]
            for k, value in zip(DECISIONS, values):
                out[k][row, col] = max(out[k][row, col], value)
            if "evidence" in out:
                out["evidence"][row, col] = max(out["evidence"][row, col], -s["geometry"][cam]["log10_pfa"])
    return out


class References(NamedTuple):
    """What every PRNU run starts from: its images, residual settings and one fingerprint per reference camera."""

    sel: Selection
    residuals: ResidualStore
    camera_class: dict[str, int]
    fingerprints: dict[str, np.ndarray]
    out_dir: Path
    window: tuple[int | None, int | None]  # (eval.crop, eval.crops_per_image)
    quality: dict[str, Quality]  # each fingerprint's photo count and scene leak (fingerprint/quality.py)


def references(cfg: DictConfig, workers: int) -> References:
    """Select the images and estimate the fingerprints of the reference cameras."""
    sel = selection_of(cfg, workers)
    residuals = residual_store(cfg)
    refs = sel.references()
    camera_class = {r.camera: sel.classes.index(r.label(sel.label_field)) for r in refs}
    quality: dict[str, Quality] = {}
    fps = fingerprints_of(refs, residuals, workers, "PRNU fingerprints", quality)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    window = (cfg.eval.crop, cfg.eval.crops_per_image)
    return References(sel, residuals, camera_class, fps, out_dir, window, quality)
