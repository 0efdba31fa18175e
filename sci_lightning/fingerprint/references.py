"""Reference cameras for every fingerprint method: the run's images, its residual store, one fingerprint per
camera, the co-located crop positions both PRNU and the learned matcher evaluate at, and per-camera stacks with
leave-one-out fingerprints for training a matcher. NumPy only (PRNU runs without torch)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from sci_lightning.data.build import parallel_map
from sci_lightning.data.images import SkippedImage, load_rgb
from sci_lightning.data.patches import centred_grid
from sci_lightning.data.records import ImageRecord
from sci_lightning.errors import SCIConfigError
from sci_lightning.fingerprint.core import (
    clean_up,
    crop_center,
    fingerprint_from_residuals,
    grey_of,
    intensity_weight,
)
from sci_lightning.fingerprint.quality import Quality, fingerprint_quality
from sci_lightning.fingerprint.residuals import ResidualStore

log = logging.getLogger(__name__)


def _load_common(paths: list[str], max_side: int | None = None) -> list[tuple[str, np.ndarray]]:
    """The readable photos of one camera, centre-cropped to their common size (at most ``max_side`` a side)."""
    imgs = []
    for p in paths:
        try:
            imgs.append((p, load_rgb(p)))
        except SkippedImage as err:
            log.warning("reference %s skipped: %s", p, err)
    if not imgs:
        raise SCIConfigError(
            "data",
            f"no readable reference image among {len(paths)} for a camera",
            "check the reference photos (skip reasons above)",
        )
    h, w = min(i.shape[0] for _, i in imgs), min(i.shape[1] for _, i in imgs)
    if max_side:
        h, w = min(h, max_side), min(w, max_side)
    return [(p, crop_center(i, h, w)) for p, i in imgs]


def fingerprint_and_photos(paths: list[str], residuals: ResidualStore) -> tuple[np.ndarray, list[str], Quality]:
    """One camera's fingerprint from its reference photos (centre-cropped to their common size), the photos it
    was estimated from (the readable ones, in order) and its :class:`~.quality.Quality`."""
    imgs = _load_common(paths)
    k = fingerprint_from_residuals((residuals.residual(p, i), grey_of(i)) for p, i in imgs)
    return k, [p for p, _ in imgs], fingerprint_quality(k, (grey_of(i) for _, i in imgs))


def fingerprint_of(paths: list[str], residuals: ResidualStore) -> np.ndarray:
    """One camera's fingerprint from its reference photos (centre-cropped to their common size)."""
    return fingerprint_and_photos(paths, residuals)[0]


def _estimate(paths: list[str], residuals: ResidualStore) -> tuple[np.ndarray, Quality]:
    k, _, quality = fingerprint_and_photos(paths, residuals)
    return k, quality


def fingerprints_of(
    records: list, residuals: ResidualStore, workers: int, what: str, quality: dict[str, Quality] | None = None
) -> dict[str, np.ndarray]:
    """One fingerprint per camera of ``records`` (estimated in parallel over cameras); each one's quality is
    put in ``quality`` when a dict is given (and logged when it warns)."""
    cameras = sorted({r.camera for r in records})
    jobs = [[str(r.path) for r in records if r.camera == cam] for cam in cameras]
    out = {}
    for cam, (k, q) in zip(cameras, parallel_map(partial(_estimate, residuals=residuals), jobs, workers, what)):
        out[cam] = k
        if quality is not None:
            quality[cam] = q
            if q.warnings():
                log.warning("fingerprint of %s: %s", cam, "; ".join(q.warnings()))
    return out


def shared_crops(shape: tuple[int, int], fingerprints: list[np.ndarray], crop: int, n: int | None) -> tuple:
    """Where a photo of ``shape`` is compared with ``fingerprints`` at ``crop`` px: ``(h, w, positions)``, the
    area the photo and *every* fingerprint share (centred) and the top-left corners of the ``n`` (default 1) most
    central cells of its centred grid, so each crop sits at the same sensor position for every camera."""
    h = min(shape[0], *(k.shape[0] for k in fingerprints))
    w = min(shape[1], *(k.shape[1] for k in fingerprints))
    return h, w, centred_grid(h, w, crop, n or 1)


@dataclass
class CameraStack:
    """One camera's photos ready for pair training, all centre-cropped to one size ``(h, w)``.

    ``loo[j]`` is the camera's fingerprint estimated *without* photo ``j`` (leave-one-out), so a network paired
    with ``(loo[j], residuals[j])`` never finds the photo inside its own fingerprint. float16 halves the memory
    (residuals are a few grey levels; fingerprints ~1e-2: both far above float16's resolution).
    """

    camera: str
    device: str
    paths: list[str]
    residuals: np.ndarray  # (n, h, w) float16
    greys: np.ndarray  # (n, h, w) float16
    loo: np.ndarray  # (n, h, w) float16
    scenes: list[str]  # scene of each photo (pairs must not find a photo's scene inside a negative fingerprint)

    def photo_of_scene(self, scene: str) -> int | None:
        """Index of this camera's photo of ``scene``, if it has one."""
        try:
            return self.scenes.index(scene)
        except ValueError:
            return None


def camera_stack(records: list[ImageRecord], residuals: ResidualStore, max_side: int | None = None) -> CameraStack:
    """:class:`CameraStack` of one camera's ``records`` (at least two readable photos)."""
    imgs = _load_common([str(r.path) for r in records], max_side)
    scene_of = {str(r.path): r.scene for r in records}
    if len(imgs) < 2:
        raise SCIConfigError(
            "data", f"camera {records[0].camera} has {len(imgs)} readable photo", "a matcher needs 2 or more"
        )
    ws = np.stack([residuals.residual(p, i) for p, i in imgs])
    greys = np.stack([grey_of(i) for _, i in imgs])
    weights = intensity_weight(greys)
    num, den = (ws * weights).sum(0), (weights * weights).sum(0)
    loo = np.empty(ws.shape, np.float16)
    for j in range(len(ws)):
        d = den - weights[j] * weights[j]
        k = np.divide(num - ws[j] * weights[j], d, out=np.zeros_like(num), where=d > 0)
        loo[j] = clean_up(k)
    return CameraStack(
        records[0].camera,
        records[0].device,
        [p for p, _ in imgs],
        ws.astype(np.float16),
        greys.astype(np.float16),
        loo,
        [scene_of[p] for p, _ in imgs],
    )


def camera_stacks(
    records: list[ImageRecord], residuals: ResidualStore, workers: int, max_side: int | None = None
) -> list[CameraStack]:
    """:func:`camera_stack` of every camera with at least two photos (cameras with one are logged and left out)."""
    by_cam: dict[str, list[ImageRecord]] = {}
    for r in records:
        by_cam.setdefault(r.camera, []).append(r)
    few = sorted(c for c, rs in by_cam.items() if len(rs) < 2)
    if few:
        log.warning("cameras with a single photo left out of matcher pairs (no leave-one-out fingerprint): %s", few)
    jobs = [by_cam[c] for c in sorted(by_cam) if c not in few]
    fn = partial(camera_stack, residuals=residuals, max_side=max_side)
    return list(parallel_map(fn, jobs, workers, "Matcher training stacks"))


def require_scored(scored: list[dict[str, Any]], paths: list[str]) -> None:
    """Stop with a clear error if a photo that passed selection could not be scored (e.g. ``eval.crop`` too big)."""
    for path, s in zip(paths, scored):
        if "reason" in s:
            setting = s.get("setting", "data")
            fix = (
                "use a smaller eval.crop (or null for the whole photo)" if setting == "eval.crop" else "check the file"
            )
            raise SCIConfigError(setting, f"{path}: {s['reason']}", fix)
