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

from sci_lightning.data.images import SkippedImage, load_rgb
from sci_lightning.fingerprint.core import grey_of
from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.fingerprint.scoring import score_residual
from sci_lightning.library.index import has_code, photo_code, shortlist, sign_code, z_scores
from sci_lightning.library.store import FingerprintLibrary

log = logging.getLogger(__name__)


@dataclass
class SearchSettings:
    """``library.shortlist``, ``library.min_z``, ``library.exhaustive`` and the heat-map tile (0: none)."""

    shortlist: int = 20
    min_z: float = 4.0
    exhaustive: bool = False
    heat_block: int = 0


class Searcher:
    """A library opened for searching: its index in memory and the most recently used fingerprints cached."""

    def __init__(self, lib: FingerprintLibrary, residuals: ResidualStore, settings: SearchSettings, cache: int = 64):
        self.lib, self.residuals, self.settings = lib, residuals, settings
        self.names, self.codes, self.unindexed = lib.index()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache

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
        """The cameras to verify for a photo (best index score first) and the ``z`` of the shortlisted ones."""
        if self.settings.exhaustive or not has_code(w.shape, self.lib.side):
            return [*self.names, *self.unindexed], {}
        z = z_scores(self.codes, photo_code(w, grey, self.lib.side))
        rows = shortlist(z, self.settings.shortlist, self.settings.min_z)
        return [self.names[i] for i in rows] + self.unindexed, {self.names[i]: float(z[i]) for i in rows}

    def search_residual(self, w: np.ndarray, grey: np.ndarray) -> dict[str, Any]:
        """Shortlist, then PCE of the shortlisted cameras: :func:`score_residual`'s dict plus ``z`` (index score
        of each shortlisted camera) and ``seconds`` (``index``, ``verify``)."""
        t0 = time.perf_counter()
        names, z = self.candidates(w, grey)
        t1 = time.perf_counter()
        fps = {n: self.fingerprint(n) for n in names}
        out = score_residual(w, grey, fps, self.settings.heat_block) if fps else {"scores": {}, "cameras": []}
        out.update(z=z, seconds={"index": t1 - t0, "verify": time.perf_counter() - t1})
        return out

    def search_photo(self, path: str) -> dict[str, Any]:
        """:meth:`search_residual` of one photo (its residual from the residual store); ``{"reason"}`` if bad."""
        try:
            img = load_rgb(path)
        except SkippedImage as err:
            return {"reason": str(err)}
        t0 = time.perf_counter()
        w, grey = self.residuals.residual(path, img), grey_of(img)
        out = self.search_residual(w, grey)
        out["seconds"]["residual"] = time.perf_counter() - t0
        return out


def reverse_search(
    lib: FingerprintLibrary, camera: str, photos: list[dict[str, Any]], residuals: ResidualStore, s: SearchSettings
) -> list[dict[str, Any]]:
    """Which of ``photos`` (ingested: ``path``, ``code``) the camera took: every photo's index ``z`` against the
    camera's code, then PCE of the shortlisted photos. Returns one row per photo (``pce`` None if not verified)."""
    fp = lib.fingerprint(camera)
    row = lib.camera(camera)
    coded = [i for i, p in enumerate(photos) if p["code"] is not None and row["indexed"]]
    z = np.full(len(photos), np.nan)
    if coded:
        codes = np.stack([np.frombuffer(photos[i]["code"], np.uint8) for i in coded])
        z[coded] = z_scores(codes, sign_code(fp, lib.side))
    if s.exhaustive:
        verify = list(range(len(photos)))
    else:
        picked = shortlist(z[coded], s.shortlist, s.min_z) if coded else np.zeros(0, int)
        has_z = set(coded)
        verify = [coded[i] for i in picked] + [i for i in range(len(photos)) if i not in has_z]
    out = [{"path": p["path"], "z": None if np.isnan(z[i]) else float(z[i]), "pce": None} for i, p in enumerate(photos)]
    for i in verify:
        path = photos[i]["path"]
        try:
            img = load_rgb(path)
        except SkippedImage as err:
            log.warning("skipped %s: %s", path, err)
            out[i]["reason"] = str(err)
            continue
        scores = score_residual(residuals.residual(path, img), grey_of(img), {camera: fp})["scores"][camera]
        out[i].update(pce=scores[0], ncc=scores[1])
    return out
