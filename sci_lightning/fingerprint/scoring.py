"""Whole-photo and co-located-crop PCE / NCC of photos against fingerprints: what the PRNU baseline decides on and
the fingerprint library verifies its shortlist with. NumPy only."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from sci_lightning.data.build import parallel_map
from sci_lightning.data.images import SkippedImage, load_rgb
from sci_lightning.fingerprint.core import block_ncc, crop_center, grey_of, ncc, pce
from sci_lightning.fingerprint.references import shared_crops
from sci_lightning.fingerprint.residuals import ResidualStore

HEAT_BLOCK = 64  # px: tiles of the local-correlation heat map


def _frame_scores(ki: np.ndarray, r: np.ndarray) -> tuple[float, float]:
    """PCE and NCC of one aligned pair (fingerprint x intensity, residual)."""
    return pce(ki, r)[0], ncc(ki, r)


def score_image(
    path: str,
    fingerprints: dict[str, np.ndarray],
    residuals: ResidualStore,
    heat_block: int = 0,
    crop: int | None = None,
    n_crops: int | None = None,
) -> dict[str, Any]:
    """:func:`score_residual` of the photo at ``path`` (its residual from ``residuals``). Unreadable photos come
    back as ``{"reason": ...}`` instead of raising (they run in worker processes)."""
    try:
        img = load_rgb(path)
    except SkippedImage as err:
        return {"reason": str(err)}
    return score_residual(residuals.residual(path, img), grey_of(img), fingerprints, heat_block, crop, n_crops)


def score_residual(
    w: np.ndarray,
    grey: np.ndarray,
    fingerprints: dict[str, np.ndarray],
    heat_block: int = 0,
    crop: int | None = None,
    n_crops: int | None = None,
) -> dict[str, Any]:
    """PCE and NCC of one photo (residual ``w``, intensity ``grey``) against every fingerprint; with
    ``heat_block``, the best camera's local NCC map.

    Whole photo (``crop`` None): each camera is compared on the centred area the photo and its fingerprint share.
    With ``crop``: ``n_crops`` (default 1) co-located ``crop`` px crops, the most central cells of the centred grid
    of the area the photo and *every* fingerprint share, so each crop sits at the same sensor position for every
    camera; the photo's score for a camera is the mean over its crops. ``crop_scores`` holds every crop's
    ``(PCE, NCC)`` per camera, shape ``(n_crops, n_cameras, 2)``, cameras in ``cameras`` order.
    """
    cameras = sorted(fingerprints)
    if crop:
        h, wd, positions = shared_crops(w.shape, [fingerprints[c] for c in cameras], crop, n_crops)
        if not len(positions):  # reported by the parent process (SCIConfigError does not cross process borders)
            return {
                "reason": f"{crop} px is larger than the {wd}x{h} px it shares with the fingerprints",
                "setting": "eval.crop",
            }
        r, i = crop_center(w, h, wd), crop_center(grey, h, wd)
        frames = {c: (crop_center(fingerprints[c], h, wd) * i, r, h, wd) for c in cameras}
        per = np.array(
            [
                [
                    _frame_scores(frames[c][0][y : y + crop, x : x + crop], r[y : y + crop, x : x + crop])
                    for c in cameras
                ]
                for y, x in positions
            ]
        )
        scores = {c: (float(per[:, j, 0].mean()), float(per[:, j, 1].mean())) for j, c in enumerate(cameras)}
    else:
        frames, scores = {}, {}
        for c in cameras:
            h, wd = min(fingerprints[c].shape[0], w.shape[0]), min(fingerprints[c].shape[1], w.shape[1])
            frames[c] = (crop_center(fingerprints[c], h, wd) * crop_center(grey, h, wd), crop_center(w, h, wd), h, wd)
            scores[c] = _frame_scores(*frames[c][:2])
        per = np.array([[scores[c] for c in cameras]])
    out: dict[str, Any] = {"scores": scores, "crop_scores": per, "cameras": cameras}
    if heat_block:
        best = max(scores, key=lambda c: scores[c][0])
        ki, r, h, wd = frames[best]
        origin = ((w.shape[0] - h) // 2, (w.shape[1] - wd) // 2)
        out.update(heat_camera=best, heat_map=block_ncc(ki, r, heat_block), heat_origin=origin)
    return out


def score_images(
    paths: list[str],
    fps: dict[str, np.ndarray],
    residuals: ResidualStore,
    workers: int,
    what: str,
    heat_block: int = 0,
    window: tuple[int | None, int | None] = (None, None),
) -> list[dict[str, Any]]:
    """:func:`score_image` of every path, in parallel; ``window`` is ``(eval.crop, eval.crops_per_image)``."""
    crop, n_crops = window
    fn = partial(score_image, fingerprints=fps, residuals=residuals, heat_block=heat_block, crop=crop, n_crops=n_crops)
    return list(parallel_map(fn, paths, workers, what))
