"""Searching the library: one photo -> its camera among thousands, and one camera -> its photos in a folder.

Both directions shortlist with the index (:mod:`.index`: ``library.shortlist`` best codes, plus every one with
``z >= library.min_z``, plus everything too small to have a code) and verify the shortlist with full PCE, exactly
as the PRNU baseline scores a photo (:func:`~sci_lightning.fingerprint.scoring.score_residual`), so a verified
camera gets the same PCE as in ``evaluate.py method=prnu``. ``exhaustive=True`` verifies every camera (the
reference the index is measured against).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from sci_lightning.fingerprint.geometry import aspect_close, orient_to_photo, resample
from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.fingerprint.scoring import Scored, Search, add_heat, score_residual
from sci_lightning.fingerprint.significance import any_of, photo_log10_pfa
from sci_lightning.library.index import (
    best_z,
    fits,
    has_code,
    photo_code,
    photo_codes,
    shortlist,
    sign_code,
    z_scores,
)
from sci_lightning.library.store import FingerprintLibrary

log = logging.getLogger(__name__)


@dataclass
class SearchSettings:
    """``library.shortlist``, ``library.min_z``, ``library.exhaustive``, the heat-map tile (0: none) and the
    geometry search (None, or ``geometry=none``: photos compared as stored)."""

    shortlist: int = 20
    min_z: float = 4.0
    exhaustive: bool = False
    heat_block: int = 0
    search: Search | None = None

    @property
    def geometric(self) -> bool:
        return self.search is not None and self.search.active


CHUNK = 32  # cameras verified per step of a long verification (a progress line at most every PROGRESS_S)
PROGRESS_S = 10.0


class Searcher:
    """A library opened for searching: its index in memory and the most recently used fingerprints cached."""

    def __init__(self, lib: FingerprintLibrary, residuals: ResidualStore, settings: SearchSettings, cache: int = 64):
        self.lib, self.residuals, self.settings = lib, residuals, settings
        self.names, self.codes, self.unindexed = lib.index()
        size_of = {r["name"]: (r["height"], r["width"]) for r in lib.cameras()}
        self.size_of = size_of
        self.sizes = np.array([size_of[n] for n in self.names], dtype=np.int64).reshape(-1, 2)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache

    @property
    def n_cameras(self) -> int:
        return len(self.names) + len(self.unindexed)

    def fingerprint(self, name: str) -> np.ndarray:
        if name in self._cache:
            self._cache.move_to_end(name)
            return self._cache[name]
        fp = self.lib.fingerprint(name)
        self._cache[name] = fp
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return fp

    def candidates(self, w: np.ndarray, grey: np.ndarray) -> tuple[list[str], dict[str, float]]:
        """The cameras to verify for a photo (best index score first) and the ``z`` of the shortlisted ones.

        With the geometry search, the photo's codes cover its turns and aspect-kept sizes
        (:func:`~sci_lightning.library.index.photo_codes`); cameras for which the photo has no code but could
        hold it as a crop are all verified (the index cannot place a crop of unknown offset)."""
        everyone = [*self.names, *self.unindexed]
        s = self.settings
        if s.exhaustive:
            return everyone, {}
        if not s.geometric:
            if not has_code(w.shape, self.lib.side):
                return everyone, {}
            z = z_scores(self.codes, photo_code(w, grey, self.lib.side))
            rows = shortlist(z, s.shortlist, s.min_z)
            return [self.names[i] for i in rows] + self.unindexed, {self.names[i]: float(z[i]) for i in rows}
        g = s.search.geometry
        z = best_z(self.codes, photo_codes(w, grey, self.lib.side, self.sizes, g))
        coded = np.flatnonzero(np.isfinite(z))
        rows = coded[shortlist(z[coded], s.shortlist, s.min_z)]
        crops = [self.names[i] for i in np.flatnonzero(~np.isfinite(z)) if fits(w.shape, self.sizes[i], g)]
        return [self.names[i] for i in rows] + crops + self.unindexed, {self.names[i]: float(z[i]) for i in rows}

    def verify(self, w: np.ndarray, grey: np.ndarray, names: list[str]) -> Scored:
        """:func:`score_residual` of the photo against ``names``, in steps of :data:`CHUNK` cameras with progress
        lines when there are many (a crop of unknown offset is verified against every camera that can hold it)."""
        s = self.settings
        if len(names) <= CHUNK:
            fps = {n: self.fingerprint(n) for n in names}
            return score_residual(w, grey, fps, s.heat_block, search=s.search) if fps else _empty(w.shape)
        merged: Scored = {"scores": {}, "geometry": {}, "matches": {}, "hypotheses": 0}
        t0 = last = time.perf_counter()
        for start in range(0, len(names), CHUNK):
            part = {n: self.fingerprint(n) for n in names[start : start + CHUNK]}
            out = score_residual(w, grey, part, search=s.search)
            for key in ("scores", "geometry", "matches"):
                merged[key].update(out.get(key, {}))
            merged["hypotheses"] += out.get("hypotheses", len(part))
            done, now = start + len(part), time.perf_counter()
            if now - last >= PROGRESS_S or done == len(names):
                rate = done / (now - t0)
                log.info(
                    "verified %d / %d cameras (%.1f / s, ~%.0f s left)",
                    done,
                    len(names),
                    rate,
                    (len(names) - done) / rate,
                )
                last = now
        merged["cameras"] = sorted(merged["scores"])
        merged["crop_scores"] = np.array([[merged["scores"][c] for c in merged["cameras"]]])
        if not s.geometric:
            merged.pop("geometry"), merged.pop("matches"), merged.pop("hypotheses")
        if s.heat_block:
            top = max(merged["scores"], key=lambda c: merged["scores"][c][0])
            if s.geometric:
                add_heat(merged, w, grey, {top: self.fingerprint(top)}, s.heat_block)
            else:
                heat = score_residual(w, grey, {top: self.fingerprint(top)}, s.heat_block)
                merged.update({k: heat[k] for k in ("heat_camera", "heat_map", "heat_origin")})
        return merged

    def search_residual(self, w: np.ndarray, grey: np.ndarray) -> Scored:
        """Shortlist, then PCE of the shortlisted cameras: :func:`score_residual`'s dict plus ``z`` (index score
        of each shortlisted camera) and ``seconds`` (``index``, ``verify``).

        ``family`` is the whole library: the index chose the verified cameras among all of them (and the index
        score and PCE are correlated), so a verdict's false-alarm probability counts every camera, as if each had
        been verified."""
        t0 = time.perf_counter()
        names, z = self.candidates(w, grey)
        t1 = time.perf_counter()
        out = self.verify(w, grey, names)
        out["family"] = self.n_cameras
        out.update(z=z, n_verified=len(names), seconds={"index": t1 - t0, "verify": time.perf_counter() - t1})
        return out

    def search_photo(self, path: str) -> Scored:
        """:meth:`search_residual` of one photo (its residual from the residual store); ``{"reason"}`` if bad."""
        t0 = time.perf_counter()
        photo = self.residuals.photo(path)
        if isinstance(photo, str):
            return {"reason": photo}
        out = self.search_residual(*photo)
        out["seconds"]["residual"] = time.perf_counter() - t0
        return out


def _empty(shape: tuple[int, ...]) -> Scored:
    """No camera to verify (the photo fits no enrolled frame): an empty score the verdict says "unknown" of."""
    return {"scores": {}, "cameras": [], "hypotheses": 0, "shape": tuple(shape[:2]), "crop_scores": np.zeros((1, 0, 2))}


def camera_codes(
    fp: np.ndarray, shapes: np.ndarray, side: int, s: SearchSettings
) -> list[tuple[np.ndarray, np.ndarray]]:
    """A camera's codes for photos of ``shapes`` (m, 2), ``[(rows, code), ...]``: as stored only, or with the
    geometry search the camera's fingerprint turned onto each photo orientation (whole frames) and resampled to
    each aspect-kept smaller photo size (resized frames); each code is compared with the photos ``rows``."""
    if not s.geometric:
        rows = np.flatnonzero([has_code(tuple(sh), side) for sh in shapes])
        return [(rows, sign_code(fp, side))] if has_code(fp.shape, side) and len(rows) else []
    g, out = s.search.geometry, []
    for rotation in g.rotations:
        for mirror in (False, True) if g.mirror else (False,):
            ko = orient_to_photo(fp, rotation, mirror)
            for size in {tuple(sh) for sh in shapes.tolist()}:
                if not has_code(size, side):
                    continue
                rows = np.flatnonzero((shapes[:, 0] == size[0]) & (shapes[:, 1] == size[1]))
                if size == ko.shape:
                    out.append((rows, sign_code(ko, side)))
                elif g.resize and aspect_close(size, ko.shape, g.aspect_tolerance):
                    out.append((rows, sign_code(resample(ko, *size), side)))
    return out


def reverse_search(
    lib: FingerprintLibrary, camera: str, photos: list[dict[str, Any]], residuals: ResidualStore, s: SearchSettings
) -> list[dict[str, Any]]:
    """Which of ``photos`` (ingested: ``path``, ``code``, ``shape``) the camera took: every photo's index ``z``
    against the camera's codes, then PCE (with the geometry search, if set) of the shortlisted photos and of the
    photos the index cannot place (crops). Returns one row per photo (``pce`` None if not verified), with the
    transform found and the hypotheses tested for it."""
    fp = lib.fingerprint(camera)
    indexed = bool(lib.camera(camera)["indexed"])
    coded = [i for i, p in enumerate(photos) if p["code"] is not None and indexed]
    z = np.full(len(photos), np.nan)
    if coded:
        codes = np.stack([np.frombuffer(photos[i]["code"], np.uint8) for i in coded])
        shapes = np.array([photos[i]["shape"] for i in coded], dtype=np.int64).reshape(-1, 2)
        best = best_z(codes, camera_codes(fp, shapes, lib.side, s))
        z[coded] = np.where(np.isfinite(best), best, np.nan)
    if s.exhaustive:
        verify = list(range(len(photos)))
    else:
        has_z = np.flatnonzero(~np.isnan(z))
        picked = has_z[shortlist(z[has_z], s.shortlist, s.min_z)] if len(has_z) else np.zeros(0, int)
        # photos the index cannot place: verified if the camera's frame could hold them (as a crop, turned or
        # not); a photo larger than the frame every way cannot be this camera's, whatever the geometry
        placeable = [i for i in range(len(photos)) if np.isnan(z[i]) and _could_hold(fp.shape, photos[i], s)]
        verify = [int(i) for i in picked] + placeable
    out = [{"path": p["path"], "z": None if np.isnan(z[i]) else float(z[i]), "pce": None} for i, p in enumerate(photos)]
    for i in verify:
        path = photos[i]["path"]
        photo = residuals.photo(path)
        if isinstance(photo, str):
            log.warning("skipped %s: %s", path, photo)
            out[i]["reason"] = photo
            continue
        scored = score_residual(*photo, {camera: fp}, search=s.search)
        out[i].update(pce=scored["scores"][camera][0], ncc=scored["scores"][camera][1])
        out[i]["log10_p_own"] = photo_log10_pfa(scored)[camera]
        if "geometry" in scored:
            out[i].update(scored["geometry"][camera])
    return out


def _could_hold(frame: tuple[int, ...], photo: dict[str, Any], s: SearchSettings) -> bool:
    """Whether a camera of ``frame`` could have taken ``photo`` (always, without the geometry search)."""
    shape = photo.get("shape")
    if not s.geometric or shape is None:
        return True
    return tuple(shape) == tuple(frame[:2]) or fits(tuple(shape), frame[:2], s.search.geometry)


def reverse_decisions(rows: list[dict[str, Any]], cal: dict[str, Any] | None, threshold: float) -> list[dict[str, Any]]:
    """``match`` / ``no match`` / ``not verified`` for each reverse-search row, by the library's rule (``cal`` from
    :func:`sci_lightning.library.actions.decision_rule`): the false-alarm bar, with each verified photo's own
    false-alarm probability combined over every photo of the folder (the index chose among all of them, as a
    forward search combines over every camera of the library); else the PCE ``threshold`` (photos compared as
    stored). Rows come back best PCE first."""
    bar = cal["log10_bar"] if cal is not None and cal.get("method") == "false_alarm" else None
    for r in rows:
        if r["pce"] is None:
            r["decision"] = "not verified"
        elif bar is not None:
            r["log10_p_false_alarm"] = any_of(r["log10_p_own"], len(rows))
            r["decision"] = "match" if r["log10_p_false_alarm"] <= bar else "no match"
        else:
            r["decision"] = "match" if r["pce"] >= threshold else "no match"
    return sorted(rows, key=lambda r: -(r["pce"] if r["pce"] is not None else -1e9))
