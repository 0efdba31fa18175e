"""Scoring photos with the matcher: co-located crops of each photo's residual against every camera's fingerprint.

A photo is compared on the centred area it shares with *every* fingerprint, at the ``n`` most central cells of
that area's ``crop`` px grid (the positions PRNU uses too, :func:`~sci_lightning.fingerprint.references.shared_crops`).
Each (crop, camera) pair gets a logit; a photo's score for a camera is the mean logit over its crops. The
expensive part, the residual, runs in worker processes (and comes from the residual store when known); the
network runs in the parent on batches of pairs.
"""

from __future__ import annotations

from functools import partial
from typing import Any, TypedDict

import numpy as np
import torch

from sci_lightning.data.build import parallel_map
from sci_lightning.fingerprint.core import crop_center
from sci_lightning.fingerprint.references import shared_crops
from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.models.pcn import PairNet, rms_normalise

BATCH = 512  # pairs per forward pass


class PhotoCrops(TypedDict, total=False):
    """One photo's crops at the co-located positions (:func:`photo_crops`), or why it has none."""

    w: np.ndarray  # (n, crop, crop) float32 residual crops
    i: np.ndarray  # (n, crop, crop) float32 intensity crops
    positions: np.ndarray  # top-left of each crop in the shared area
    area: tuple[int, int]  # (h, w) of the area the photo shares with the fingerprints
    origin: tuple[int, int]  # that area's top-left in the photo
    shape: tuple[int, ...]  # the photo's residual shape
    reason: str  # set instead of the above for an unusable photo
    setting: str  # the setting at fault, where one is


class MatcherScores(TypedDict):
    """One photo's matcher logits against each camera (:func:`score_photo`)."""

    crop_scores: np.ndarray  # (n_crops, n_cameras) logits
    cameras: list[str]
    scores: dict[str, float]  # mean logit per camera
    positions: np.ndarray
    origin: tuple[int, int]
    area: tuple[int, int]
    shape: tuple[int, ...]


def photo_crops(
    path: str, shapes: list[tuple[int, int]], residuals: ResidualStore, crop: int, n: int | None
) -> PhotoCrops:
    """The residual and intensity crops of one photo at the co-located positions (worker process).

    Returns ``w`` and ``i`` ``(n, crop, crop)`` float32, ``positions`` (top-left in the shared area), ``area``
    ``(h, w)`` and ``origin`` (the area's top-left in the photo); or ``{"reason": ...}`` for an unusable photo.
    """
    photo = residuals.photo(path)
    if isinstance(photo, str):
        return {"reason": photo}
    w, grey = photo
    h, wd, positions = shared_crops(w.shape, [np.empty(s, np.uint8) for s in shapes], crop, n)
    if not len(positions):
        return {
            "reason": f"{crop} px is larger than the {wd}x{h} px it shares with the fingerprints",
            "setting": "eval.crop",  # whole-photo tiles: the run skips the photo instead (run._test)
        }
    r, g = crop_center(w, h, wd), crop_center(grey, h, wd)
    cut = lambda a: np.stack([a[y : y + crop, x : x + crop] for y, x in positions])  # noqa: E731
    origin = ((w.shape[0] - h) // 2, (w.shape[1] - wd) // 2)
    return {"w": cut(r), "i": cut(g), "positions": positions, "area": (h, wd), "origin": origin, "shape": w.shape}


def fingerprint_crops(k: np.ndarray, area: tuple[int, int], positions: np.ndarray, crop: int) -> np.ndarray:
    """The fingerprint at the photo's crop positions (``k`` centred on the shared ``area`` first)."""
    kc = crop_center(k, *area)
    return np.stack([kc[y : y + crop, x : x + crop] for y, x in positions])


def tiled(x: np.ndarray, tile: int) -> np.ndarray:
    """``(N, P, P)`` crops as ``(N * k * k, tile, tile)`` tiles, k = P // tile (the remainder is left out)."""
    n, p = x.shape[0], x.shape[1]
    k = p // tile
    t = x[:, : k * tile, : k * tile].reshape(n, k, tile, k, tile).swapaxes(2, 3)
    return t.reshape(n * k * k, tile, tile)


@torch.no_grad()
def pair_logits(
    net: PairNet,
    ki: np.ndarray,
    w: np.ndarray,
    device: torch.device | str = "cpu",
    tile: int | None = None,
) -> np.ndarray:
    """Logits of aligned ``(K*I, W)`` crop pairs, both ``(N, P, P)``; batched, RMS-normalised like in training.

    With ``tile`` (the side the network was trained on) smaller than P, each crop is scored as the mean logit of
    its ``tile`` px tiles, each normalised on its own: the conditions the network learnt under. One normalisation
    over a large crop lets its brightest, most textured part set the scale for all of it; measured on real
    photos (vision-3, 256 px crops) that cost the matcher most of its accuracy, while synthetic scenes, more
    uniform, hardly noticed.
    """
    n, p = len(w), w.shape[-1] if len(w) else 0
    if tile and p > tile:
        per = pair_logits(net, tiled(ki, tile), tiled(w, tile), device)
        return per.reshape(n, -1).mean(1)
    net.eval()
    out = []
    for s in range(0, len(w), BATCH):
        pair = torch.from_numpy(np.stack([ki[s : s + BATCH], w[s : s + BATCH]], axis=1).astype(np.float32))
        out.append(net(rms_normalise(pair).to(device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def score_photo(
    net: PairNet,
    crops: PhotoCrops,
    fingerprints: dict[str, np.ndarray],
    crop: int,
    device: str = "cpu",
    tile: int | None = None,
) -> MatcherScores:
    """``crop_scores`` ``(n_crops, n_cameras)`` logits and ``scores`` (mean logit per camera) of one photo
    (``tile``: see :func:`pair_logits`)."""
    cameras = sorted(fingerprints)
    ki = np.concatenate(
        [fingerprint_crops(fingerprints[c], crops["area"], crops["positions"], crop) * crops["i"] for c in cameras]
    )
    w = np.concatenate([crops["w"]] * len(cameras))
    per = pair_logits(net, ki, w, device, tile).reshape(len(cameras), -1).T
    return MatcherScores(
        crop_scores=per,
        cameras=cameras,
        scores={c: float(per[:, j].mean()) for j, c in enumerate(cameras)},
        positions=crops["positions"],
        origin=crops["origin"],
        area=crops["area"],
        shape=crops["shape"],
    )


def score_photos(
    net: PairNet,
    paths: list[str],
    fingerprints: dict[str, np.ndarray],
    residuals: ResidualStore,
    window: tuple[int, int | None],
    workers: int,
    what: str,
    device: str = "cpu",
    tile: int | None = None,
) -> list[MatcherScores | PhotoCrops]:
    """:func:`score_photo` of every path (unusable photos come back as ``{"reason": ...}``)."""
    crop, n = window
    shapes = [k.shape for k in fingerprints.values()]
    fn = partial(photo_crops, shapes=shapes, residuals=residuals, crop=crop, n=n)
    out = []
    for c in parallel_map(fn, paths, workers, what):
        out.append(c if "reason" in c else score_photo(net, c, fingerprints, crop, device, tile))
    return out


def heat_map(scored: dict[str, Any], camera: str, crop: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The per-crop logits of ``camera`` laid out on the crop grid (NaN where no crop was scored) and the grid's
    top-left pixel in the photo: the heat map of where the match shows."""
    pos = np.asarray(scored["positions"])
    j = scored["cameras"].index(camera)
    top, left = pos.min(0)
    rows, cols = ((pos - (top, left)) // crop).T
    grid = np.full((rows.max() + 1, cols.max() + 1), np.nan)
    grid[rows, cols] = scored["crop_scores"][:, j]
    oy, ox = scored["origin"]
    return grid, (int(oy + top), int(ox + left))
