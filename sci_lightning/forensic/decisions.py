"""Decisions on questioned photos, for every method: name the best camera, or say "unknown"; open-set rates."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict

import numpy as np

from sci_lightning.outputs import JsonValue, Metrics

log = logging.getLogger(__name__)

UNKNOWN = "unknown"


class _Decided(TypedDict):
    path: str  # the questioned photo
    ranked: list[tuple[str, float | None]]  # classes, best first, with P(match) (None where no calibration exists)
    decision: str  # the class named, or "unknown"
    detail: str  # the report's paragraph on how the decision was made


class Verdict(_Decided, total=False):
    """One questioned photo's verdict, as every method makes it and :mod:`.report` writes it (verdicts.csv, the
    report's section, its heat map); the keys below are present where the method has them."""

    true: str  # its true class, where the case knows it ("unknown": a camera with no references)
    pce: dict[str, float]  # each class's best PCE (PRNU)
    decoys: tuple[int, int]  # (decoy searches, decoys named) behind it (PRNU's geometry search)
    columns: dict[str, JsonValue]  # the method's own verdicts.csv columns
    heat_map: np.ndarray | None  # where the named camera's fingerprint shows, in tiles
    heat_origin: tuple[int, int] | None  # the heat map's top-left in the photo
    heat_camera: str | None  # the camera the heat map is of


class Skipped(TypedDict):
    """A photo no verdict could be made for (skipped_images.csv)."""

    path: str
    reason: str


def scored_photos(
    paths: Sequence[str], scored: Sequence[Mapping[str, Any]]
) -> tuple[list[tuple[str, Mapping[str, Any]]], list[Skipped]]:
    """``([(path, scores), ...], skipped)``: the photos that were scored, and those that came back as
    ``{"reason": ...}`` (unreadable), each logged and listed as ``{"path", "reason"}`` for skipped_images.csv."""
    good: list[tuple[str, Mapping[str, Any]]] = []
    skipped: list[Skipped] = []
    for path, s in zip(paths, scored):
        if "reason" in s:
            log.warning("skipped %s: %s", path, s["reason"])
            skipped.append({"path": path, "reason": s["reason"]})
        else:
            good.append((path, s))
    return good, skipped


def photo_verdicts(
    paths: Sequence[str],
    scored: Sequence[Mapping[str, Any]],
    truth: Mapping[str, str] | None,
    verdict_of: Callable[[str, Any], Verdict],
) -> tuple[list[Verdict], list[Skipped]]:
    """``(verdicts, skipped)``: ``verdict_of(path, scores)`` for every photo that was scored (with its true camera,
    or "unknown", when ``truth`` is known); the rest skipped as :func:`scored_photos` says. Every method's loop."""
    good, skipped = scored_photos(paths, scored)
    verdicts = []
    for path, s in good:
        v = verdict_of(path, s)
        if truth is not None:
            v["true"] = truth.get(path, UNKNOWN)
        verdicts.append(v)
    return verdicts, skipped


def best_per_class(
    values: Mapping[str, float], camera_class: Mapping[str, int], classes: Sequence[str], lower: bool = False
) -> dict[str, tuple[float, str]]:
    """Each class's best ``(value, camera)`` among its cameras' values (a class owning several cameras, at model
    level, takes its best one; the highest value, or the lowest with ``lower``; the first camera on a tie)."""
    best: dict[str, tuple[float, str]] = {}
    for cam, value in values.items():
        cls = classes[camera_class[cam]]
        if cls not in best or (value < best[cls][0] if lower else value > best[cls][0]):
            best[cls] = (value, cam)
    return best


def size_mismatch(photo: tuple[int, ...] | None, camera: tuple[int, ...]) -> str | None:
    """A warning when a photo is not the size of the camera's frame (as stored): a method that compares pixels at
    fixed positions (the matcher, PRNU with ``geometry=none``) is then comparing unrelated pixels."""
    if photo is None or tuple(photo[:2]) == tuple(camera[:2]):
        return None
    turned = tuple(photo[:2]) == tuple(camera[:2])[::-1]
    what = "turned (its sides swapped)" if turned else "cropped, resized or from another sensor size"
    return (
        f"The photo is {photo[1]}x{photo[0]} px, the camera's frame {camera[1]}x{camera[0]} px: it was {what}, and "
        "this method compares it as stored, so its score says little. Use method=prnu (geometry search) for it."
    )


def decide(ranked: Sequence[tuple[str, float]], threshold: float | None) -> str:
    """The top candidate if its score reaches ``threshold`` (None: always), else "unknown"."""
    top, score = ranked[0]
    return top if threshold is None or score >= threshold else UNKNOWN


def open_set_metrics(verdicts: Sequence[Verdict]) -> Metrics:
    """Attribution rates over verdicts whose true camera is known (``true``; "unknown" = no references)."""
    known = [v for v in verdicts if v.get("true") not in (None, "", UNKNOWN)]
    unknown = [v for v in verdicts if v.get("true") == UNKNOWN]
    out: Metrics = {"n_known_camera_images": len(known), "n_unknown_camera_images": len(unknown)}
    if known:
        out["open/correct_attribution_known"] = float(np.mean([v["decision"] == v["true"] for v in known]))
        out["open/wrong_attribution_known"] = float(np.mean([v["decision"] not in (v["true"], UNKNOWN) for v in known]))
        out["open/unknown_rate_known"] = float(np.mean([v["decision"] == UNKNOWN for v in known]))
    if unknown:
        out["open/unknown_rate_unknown"] = float(np.mean([v["decision"] == UNKNOWN for v in unknown]))
        out["open/false_attribution_unknown"] = 1.0 - out["open/unknown_rate_unknown"]
    return out
