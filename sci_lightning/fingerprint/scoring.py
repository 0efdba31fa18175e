"""Whole-photo and co-located-crop PCE / NCC of photos against fingerprints: what the PRNU baseline decides on and
the fingerprint library verifies its shortlist with. NumPy only."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, TypedDict

import numpy as np
import scipy.fft

from sci_lightning.data.build import parallel_map
from sci_lightning.fingerprint.core import block_ncc, crop_center, ncc, pce, plane_pce
from sci_lightning.fingerprint.geometry import GeometrySettings, Match, Placement, Query, Spectra
from sci_lightning.fingerprint.hypotheses import hypotheses
from sci_lightning.fingerprint.null import Tail, plane_tail
from sci_lightning.fingerprint.quality import scene_laden
from sci_lightning.fingerprint.references import shared_crops
from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.fingerprint.search import (
    DECOYS,
    decoy_checks,
    fingerprint_in_photo,
    measured_null,
    search_photo,
    stages,
)
from sci_lightning.fingerprint.significance import grid_pce, judged, photo_log10_pfa

# Fingerprint spectra at each size, kept per process between photos (keyed by content: a stale entry cannot match)
_SPECTRA = Spectra()


@dataclass(frozen=True)
class Search:
    """How questioned photos are aligned: the ``geometry`` settings and, for ``geometry=auto``, the log10
    false-alarm probability at which the search stops (the decision bar)."""

    geometry: GeometrySettings
    stop: float | None = None
    no_scale_search: frozenset[str] = frozenset()  # cameras the crop + resize search skips (quality.scene_laden)

    def for_fingerprints(self, qualities: Mapping[str, Any]) -> Search:
        """This search for fingerprints of these qualities (the scene-laden ones get no crop + resize search)."""
        return replace(self, no_scale_search=scene_laden(qualities))

    @property
    def active(self) -> bool:
        return self.geometry.searches


def _frame_scores(ki: np.ndarray, r: np.ndarray) -> tuple[float, float]:
    """PCE and NCC of one aligned pair (fingerprint x intensity, residual)."""
    return pce(ki, r)[0], ncc(ki, r)


class _Residual:
    """The photo's side of :func:`_frame_scores`, computed once for every camera compared on the same area: the
    same numbers to the last bit (the same operations in the same order), half the FFTs (a 12 MP photo against
    10 cameras: 10.5 s before, docs/BENCHMARKS.md)."""

    def __init__(self, r: np.ndarray) -> None:
        self.b = np.asarray(r, np.float64) - np.mean(r)
        self.fb = np.conj(scipy.fft.rfft2(self.b, workers=-1))  # threads: the same bits (pocketfft)
        self.bb = (self.b * self.b).sum()

    def scores(self, ki: np.ndarray) -> tuple[float, float]:
        """``_frame_scores(ki, r)``."""
        return self.plane(ki)[:2]

    def plane(self, ki: np.ndarray) -> tuple[float, float, np.ndarray]:
        """PCE, NCC and the correlation plane (every circular shift) of the aligned pair."""
        a = np.asarray(ki, np.float64) - np.mean(ki)
        xc = scipy.fft.irfft2(scipy.fft.rfft2(a, workers=-1) * self.fb, s=a.shape, workers=-1)
        denom = np.sqrt((a * a).sum() * self.bb)
        return plane_pce(xc, (0, 0)), float((a * self.b).sum() / denom) if denom > 0 else 0.0, xc


def _aligned(
    w: np.ndarray,
    grey: np.ndarray,
    fingerprints: dict[str, np.ndarray],
    exclude: bool = True,
    keep: Callable[[Match], bool] = lambda m: True,
) -> dict[str, tuple[Match, Tail | None]]:
    """Each camera compared as stored (centred on the area it shares with the photo), exactly as without a search,
    with its plane's tail where ``keep`` says its match needs a null (the peak's window left out when ``exclude``;
    a decoy's plane is kept whole). The match carries its peak's PCE against the energy of its own JPEG-grid
    class too (``judged_pce``): what the measured null, counted on the grid classes, is compared with."""
    out, shared = {}, {}
    for c, k in fingerprints.items():
        h, wd = min(k.shape[0], w.shape[0]), min(k.shape[1], w.shape[1])
        if (h, wd) not in shared:
            shared[(h, wd)] = _Residual(crop_center(w, h, wd))
        pce_value, ncc_value, xc = shared[(h, wd)].plane(crop_center(k, h, wd) * crop_center(grey, h, wd))
        m = Match(pce_value, 1, "aligned", ncc=ncc_value)
        m.judged_pce = grid_pce(xc, (0, 0))
        out[c] = (m, plane_tail(xc, exclude=(0, 0) if exclude else None) if keep(m) else None)
    return out


def _aligned_null(
    w: np.ndarray,
    grey: np.ndarray,
    name: str,
    k: np.ndarray,
    m: Match,
    tails: dict[str, Tail],
    g: GeometrySettings,
    named: Callable[[float], bool],
) -> None:
    """The measured null of an aligned match (:mod:`.null`): its own plane and its decoys' (the fingerprint
    mirrored and flipped, compared as stored); ``named`` says whether a log10 P_FA would name a camera."""
    compared = _aligned(w, grey, {d: f(k) for d, f in DECOYS.items()}, exclude=False) if not g.mirror else {}
    decoys = {d: t for d, (_, t) in compared.items()}
    peaks = {d: dm.judged_pce for d, (dm, _) in compared.items()}  # each decoy where the aligned match looks: (0, 0)
    m.null, m.null_sources = measured_null([tails[name]], list(decoys.values()))
    m.decoy_checks = decoy_checks([tails[name]], [decoys] if decoys else [], [peaks] if peaks else [], m.n, named)


class Scored(TypedDict, total=False):
    """One photo scored against fingerprints (:func:`score_residual`); an unusable photo holds ``reason`` (and
    the ``setting`` at fault) instead. Every method's verdicts and the library's search read these keys."""

    scores: dict[str, tuple[float, float]]  # camera -> (PCE, NCC) of its best hypothesis
    crop_scores: np.ndarray  # (n_crops, n_cameras, 2): each crop's (PCE, NCC), cameras in ``cameras`` order
    cameras: list[str]
    geometry: dict[str, Placement]  # camera -> where the photo sits in its frame (geometry search only)
    matches: dict[str, Match]  # camera -> its best hypothesis (geometry search only)
    hypotheses: int  # every hypothesis tested for the photo, all cameras
    family: int  # the cameras its false-alarm probability counts
    stages: int  # the search's stages
    shape: tuple[int, ...]  # the photo's size, where no camera could be compared
    heat_camera: str
    heat_map: np.ndarray
    heat_origin: tuple[int, int]
    z: dict[str, float]  # the library's index score of each shortlisted camera
    n_verified: int  # cameras verified by PCE after the library's shortlist
    seconds: dict[str, float]  # where the library's search spent its time
    reason: str  # why the photo could not be scored
    setting: str  # the setting at fault, when one is


def score_image(
    path: str,
    fingerprints: dict[str, np.ndarray],
    residuals: ResidualStore,
    heat_block: int = 0,
    crop: int | None = None,
    n_crops: int | None = None,
    search: Search | None = None,
) -> Scored:
    """:func:`score_residual` of the photo at ``path`` (its residual from ``residuals``). Unreadable photos come
    back as ``{"reason": ...}`` instead of raising (they run in worker processes)."""
    photo = residuals.photo(path)
    if isinstance(photo, str):
        return {"reason": photo}
    return score_residual(*photo, fingerprints, heat_block, crop, n_crops, search)


def score_residual(
    w: np.ndarray,
    grey: np.ndarray,
    fingerprints: dict[str, np.ndarray],
    heat_block: int = 0,
    crop: int | None = None,
    n_crops: int | None = None,
    search: Search | None = None,
) -> Scored:
    """PCE and NCC of one photo (residual ``w``, intensity ``grey``) against every fingerprint; with
    ``heat_block``, the best camera's local NCC map.

    With an active ``search`` (``geometry=auto|full``) on the whole photo, the aligned scores below come first and
    the turned / cropped / resized hypotheses follow (:func:`_searched`).

    Whole photo (``crop`` None): each camera is compared on the centred area the photo and its fingerprint share.
    With ``crop``: ``n_crops`` (default 1) co-located ``crop`` px crops, the most central cells of the centred grid
    of the area the photo and *every* fingerprint share, so each crop sits at the same sensor position for every
    camera; the photo's score for a camera is the mean over its crops. ``crop_scores`` holds every crop's
    ``(PCE, NCC)`` per camera, shape ``(n_crops, n_cameras, 2)``, cameras in ``cameras`` order.
    """
    cameras = sorted(fingerprints)
    if search is not None and search.active and not crop:
        return _searched(w, grey, fingerprints, search, heat_block)
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
        frames, scores, shared = {}, {}, {}
        for c in cameras:
            h, wd = min(fingerprints[c].shape[0], w.shape[0]), min(fingerprints[c].shape[1], w.shape[1])
            frames[c] = (crop_center(fingerprints[c], h, wd) * crop_center(grey, h, wd), crop_center(w, h, wd), h, wd)
            if (h, wd) not in shared:
                shared[(h, wd)] = _Residual(frames[c][1])
            scores[c] = shared[(h, wd)].scores(frames[c][0])
        per = np.array([[scores[c] for c in cameras]])
    out: Scored = {"scores": scores, "crop_scores": per, "cameras": cameras}
    if heat_block:
        best = max(scores, key=lambda c: scores[c][0])
        ki, r, h, wd = frames[best]
        origin = ((w.shape[0] - h) // 2, (w.shape[1] - wd) // 2)
        out.update(heat_camera=best, heat_map=block_ncc(ki, r, heat_block), heat_origin=origin)
    return out


def _searched(
    w: np.ndarray,
    grey: np.ndarray,
    fingerprints: dict[str, np.ndarray],
    search: Search,
    heat_block: int,
) -> Scored:
    """The photo's scores with the geometry search (``geometry=auto|full``).

    Cameras whose frame is the photo's size, or that no searched hypothesis could hold, are first compared as
    stored, exactly as without a search (the fast path: one hypothesis each); the others only by the search, since
    their centred comparison is not a hypothesis anyone believes (a turned or cropped photo). A camera whose peak
    clears the bar by the Gaussian tail is judged again against the null measured on its own planes and decoys
    (:mod:`.null`). ``auto`` searches only when no aligned peak clears the bar, stops after the first stage where
    one does, and keeps a searched peak over an aligned one only if it clears the bar; ``full`` searches every
    hypothesis and keeps each camera's highest. Each camera's score carries the number of hypotheses it is the
    best of; ``hypotheses`` counts every one tested for the photo (all cameras)."""
    cameras = sorted(fingerprints)
    g, auto = search.geometry, search.geometry.name == "auto"
    n_stages, stop = stages(g), search.stop if search.stop is not None else -np.inf
    first = [
        c for c in cameras if fingerprints[c].shape == w.shape or not hypotheses(w.shape, fingerprints[c].shape, g)
    ]

    def lp(m: Match) -> float:
        return judged(m.log10_pfa(), n_stages, len(cameras))

    nameable = (lambda m: g.decoys and lp(m) <= stop) if search.stop is not None else (lambda m: False)
    aligned = _aligned(w, grey, {c: fingerprints[c] for c in first}, keep=nameable)
    tails = {c: t for c, (_, t) in aligned.items()}
    matches = {c: m for c, (m, _) in aligned.items()}
    for c, m in matches.items():
        if tails[c] is not None:
            _aligned_null(w, grey, c, fingerprints[c], m, tails, g, lambda v: judged(v, n_stages, len(cameras)) <= stop)
    n_total = len(first)
    # auto: a camera compared as stored that clears the bar under its measured null ends it (the others are then
    # compared as stored too, below); otherwise every camera of another size is searched
    if not auto or min(map(lp, matches.values()), default=0.0) > stop:
        found, n = search_photo(
            Query(w, grey),
            fingerprints,
            g,
            _SPECTRA,
            search.stop,
            dict.fromkeys(first, 1),
            early=auto,
            no_scale=search.no_scale_search,
        )
        n_total += n
        for c, m in found.items():
            # auto keeps a searched peak over an aligned one only where it clears the bar: a chance peak among
            # thousands of turns and offsets must not outrank a weak aligned one (measured: closed-set accuracy
            # on 96 px synthetic units fell from 0.92 to 0.71 when every searched peak competed)
            if c not in matches or (lp(m) < lp(matches[c]) and (not auto or lp(m) <= stop)):
                matches[c] = m
    rest = [c for c in cameras if c not in matches]  # the search stopped before reaching them: as stored
    if rest:
        compared = _aligned(w, grey, {c: fingerprints[c] for c in rest}, keep=lambda m: False)
        matches.update({c: m for c, (m, _) in compared.items()})
        n_total += len(rest)
    scores = {c: (matches[c].pce, matches[c].ncc) for c in cameras}
    out: Scored = {
        "scores": scores,
        "crop_scores": np.array([[scores[c] for c in cameras]]),
        "cameras": cameras,
        "geometry": {
            c: {
                **matches[c].describe(),
                "log10_pfa": matches[c].log10_pfa(),
                "null_sources": matches[c].null_sources,
                "decoy_checks": matches[c].decoy_checks,
            }
            for c in cameras
        },
        "hypotheses": n_total,
        "family": len(cameras),
        "stages": n_stages,
        "matches": matches,
    }
    if heat_block and cameras:
        add_heat(out, w, grey, fingerprints, heat_block)
    return out


def transform_found(
    path: str, name: str, fingerprint: np.ndarray, residuals: ResidualStore, search: Search
) -> Placement | None:
    """The transform the geometry search finds for one photo in one camera's frame, when it is not the photo as
    stored and clears the search's bar (for methods that compare as stored, to say so); else None."""
    photo = residuals.photo(path)
    if isinstance(photo, str):
        return None
    out = score_residual(*photo, {name: fingerprint}, search=search)
    g, lp = out["geometry"][name], photo_log10_pfa(out)[name]
    if g["transform"] == "aligned" or search.stop is None or lp > search.stop:
        return None
    return {**g, "pce": out["scores"][name][0], "log10_p_false_alarm": lp}


def add_heat(out: Scored, w: np.ndarray, grey: np.ndarray, fingerprints: dict, heat_block: int) -> None:
    """The heat map of a searched photo's best camera (``out`` from a geometry search, ``matches`` in it): the
    centred area as without a search if it was found aligned, else the aligned fingerprint in the photo's own
    frame (origin 0, 0)."""
    lps = photo_log10_pfa(out)
    top = min(lps, key=lps.get)
    m = out["matches"][top]
    if m.kind == "aligned":
        heat = score_residual(w, grey, {top: fingerprints[top]}, heat_block)
        out.update(heat_camera=top, heat_map=heat["heat_map"], heat_origin=heat["heat_origin"])
    else:
        k_photo = fingerprint_in_photo(m, top, fingerprints[top], _SPECTRA, w.shape)
        out.update(heat_camera=top, heat_map=block_ncc(k_photo * grey, w, heat_block), heat_origin=(0, 0))


def score_images(
    paths: list[str],
    fps: dict[str, np.ndarray],
    residuals: ResidualStore,
    workers: int,
    what: str,
    heat_block: int = 0,
    window: tuple[int | None, int | None] = (None, None),
    search: Search | None = None,
) -> list[Scored]:
    """:func:`score_image` of every path, in parallel; ``window`` is ``(eval.crop, eval.crops_per_image)``."""
    crop, n_crops = window
    fn = partial(
        score_image,
        fingerprints=fps,
        residuals=residuals,
        heat_block=heat_block,
        crop=crop,
        n_crops=n_crops,
        search=search,
    )
    return list(parallel_map(fn, paths, workers, what))
