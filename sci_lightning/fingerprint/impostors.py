"""The scores a case's verdicts are calibrated on (:mod:`sci_lightning.forensic.pce` fits them; it never scores):
the case's own validation photos against fingerprints of the training references only.

* Geometry searched (:mod:`sci_lightning.forensic.false_alarm`): each validation photo as stored and transformed
  the ways questioned photos are met, searched once with every camera (genuine and impostor pairs) and once
  without its own camera (an impostor search: anything it names is a false attribution).
* As stored: one PCE per (validation photo, camera) pair and whether the camera is the photo's own (Platt).

NumPy only."""

from __future__ import annotations

from functools import partial
from typing import Any, TypedDict

import numpy as np

from sci_lightning.data.build import parallel_map
from sci_lightning.data.images import SkippedImage, load_rgb
from sci_lightning.data.selection import Selection, sha256_file
from sci_lightning.data.transforms import apply
from sci_lightning.fingerprint.core import grey_of, noise_residual
from sci_lightning.fingerprint.references import fingerprints_of, require_scored
from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.fingerprint.scoring import Search, score_images, score_residual
from sci_lightning.fingerprint.significance import photo_log10_pfa, tally

# How validation photos are met in the searches: as stored, turned, cropped (every offset) and halved (resize).
CALIBRATION_TRANSFORMS = ("none", "rot90", "crop60", "scale50")


class Validation(TypedDict, total=False):
    """What the verdicts' calibration is fitted on (:func:`validation_scores`): the validation photos scored the way
    the questioned photos are, against fingerprints of the training references only."""

    searched: bool  # geometry-searched (the lists of (transform, log10 P_FA) below) or scored as stored (pce, match)
    n_images: int  # validation photos
    pce: list[float]  # as stored: every (photo, camera) pair's PCE
    match: list[bool]  # ... and whether the camera is the photo's own
    genuine: list[tuple[str, float]]  # searched: the photo's own camera
    impostor_pairs: list[tuple[str, float]]  # searched: every other camera (for the P(match) slope)
    impostor_searches: list[tuple[str, float]]  # searched without the photo's own camera: its best one
    decoys: list[int]  # [decoy searches, decoys named]


def _searches(
    job: tuple[str, list[str]],
    fingerprints: dict[str, np.ndarray],
    residuals: ResidualStore,
    search: Search,
    seed: int,
) -> list[dict[str, Any]]:
    """One validation photo (``job`` = path, cameras of its own class) under every calibration transform."""
    path, own = job
    try:
        img = load_rgb(path)
    except SkippedImage:
        return []
    digest = sha256_file(path)
    others = {c: k for c, k in fingerprints.items() if c not in own}
    rows = []
    for name in CALIBRATION_TRANSFORMS:
        arr, _ = apply(img, name, digest, seed)
        w = residuals.residual(path, arr, digest) if name == "none" else noise_residual(arr, **residuals.kw)
        grey = grey_of(arr)
        scored = [score_residual(w, grey, fingerprints, search=search)]
        scored += [score_residual(w, grey, others, search=search)] if others else []
        every, alone = photo_log10_pfa(scored[0]), photo_log10_pfa(scored[1]) if others else {}
        checks = [g.get("decoy_checks", (0, 0)) for out in scored for g in out.get("geometry", {}).values()]
        rows.append(
            {
                "transform": name,
                "decoys": tally(checks),
                "genuine": [v for c, v in every.items() if c in own],
                "impostor_pairs": [v for c, v in every.items() if c not in own],
                "impostor_search": min(alone.values()) if alone else None,
            }
        )
    return rows


def validation_searches(
    sel: Selection, residuals: ResidualStore, search: Search, workers: int, seed: int
) -> Validation:
    """``{"genuine", "impostor_pairs", "impostor_searches"}``: lists of ``(transform, log10 P_FA)`` over the
    validation photos of ``sel`` (empty lists without validation photos), ``n_images``, and ``decoys``: the decoy
    searches those searches made and how many the rule named."""
    val = sel.split_records("val")
    out: Validation = {
        "genuine": [],
        "impostor_pairs": [],
        "impostor_searches": [],
        "n_images": len(val),
        "decoys": [0, 0],
    }
    if not val:
        return out
    quality: dict[str, Any] = {}
    fps = fingerprints_of(sel.split_records("train"), residuals, workers, "PRNU fingerprints (calibration)", quality)
    search = search.for_fingerprints(quality)  # searched as the questioned photos are (scene-laden: no scale search)
    label = sel.label_field
    jobs = [(str(r.path), [c for c in fps if _class_of(sel, c) == r.label(label)]) for r in val]
    fn = partial(_searches, fingerprints=fps, residuals=residuals, search=search, seed=seed)
    for rows in parallel_map(fn, jobs, workers, "PRNU impostor searches (calibration)"):
        for row in rows:
            t = row["transform"]
            out["genuine"] += [(t, v) for v in row["genuine"]]
            out["impostor_pairs"] += [(t, v) for v in row["impostor_pairs"]]
            out["decoys"] = list(tally([out["decoys"], row["decoys"]]))
            if row["impostor_search"] is not None:
                out["impostor_searches"].append((t, row["impostor_search"]))
    return out


def validation_pairs(
    sel: Selection, residuals: ResidualStore, window: tuple[int | None, int | None], workers: int
) -> Validation:
    """``{"pce", "match", "n_images"}``: the PCE of every (validation photo, camera) pair, scored on the same crops
    as the questioned photos (``window`` = ``(eval.crop, eval.crops_per_image)``), and whether it is the photo's
    own camera (empty lists without validation photos)."""
    val = sel.split_records("val")
    out: Validation = {"pce": [], "match": [], "n_images": len(val)}
    if not val:
        return out
    fps = fingerprints_of(sel.split_records("train"), residuals, workers, "PRNU fingerprints (calibration)")
    paths = [str(r.path) for r in val]
    scored = score_images(paths, fps, residuals, workers, "PRNU validation residuals", window=window)
    require_scored(scored, paths)
    for r, s in zip(val, scored):
        for cam, (value, _) in s.get("scores", {}).items():
            out["pce"].append(value)
            out["match"].append(cam == r.camera)
    return out


def validation_scores(
    sel: Selection,
    residuals: ResidualStore,
    search: Search | None,
    window: tuple[int | None, int | None],
    workers: int,
    seed: int,
) -> Validation:
    """What :func:`sci_lightning.forensic.pce.calibrate` fits: :func:`validation_searches` when questioned photos
    are searched (``search``), else :func:`validation_pairs`; ``"searched"`` says which."""
    if search is not None:
        return {"searched": True, **validation_searches(sel, residuals, search, workers, seed)}
    return {"searched": False, **validation_pairs(sel, residuals, window, workers)}


def _class_of(sel: Selection, camera: str) -> str:
    """The class (device or camera, by the task) a reference camera belongs to."""
    for r in sel.references():
        if r.camera == camera:
            return r.label(sel.label_field)
    return camera
