"""Noise residuals kept on disk, so a photo is denoised once per residual setting, whatever the fold or the run.

Denoising is the expensive part of PRNU (a 12 MP photo: seconds; everything after it: milliseconds), and one
run denoises most photos several times (the fingerprints of all references, the calibration's fingerprints of
the training references, validation and test photos), as does every fold of a sweep or every ``eval.crop``.

Layout: ``<cache_dir>/residuals-<hash of the residual settings and version>/<SHA-256 of the file>-<H>x<W>.npz``
(the size is part of the name because fingerprints are estimated from photos centre-cropped to a camera's
common size). Each file is written to a temporary name and renamed into place, so a killed run never leaves a
half-written residual under the final name; ``.npz`` members carry a CRC-32 that ``np.load`` checks, so a
damaged file is detected, logged and recomputed. Residuals are float32, exactly what the denoiser returns: the
numbers are the same with and without the store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from sci_lightning.data.images import SkippedImage, load_rgb
from sci_lightning.data.selection import sha256_file
from sci_lightning.fingerprint.core import grey_of, noise_residual

log = logging.getLogger(__name__)

STORE_VERSION = 1


class ResidualStore:
    """``residual(path, img)``: :func:`noise_residual` of ``img`` (decoded from ``path``), from disk when known.

    ``folder=None`` computes every residual afresh (``prnu.residual_cache=false``). Picklable, so worker
    processes share it; concurrent writers of the same residual each rename a complete file into place.
    """

    def __init__(self, cache_dir: str | os.PathLike | None, residual_kw: dict[str, Any]) -> None:
        self.kw = dict(residual_kw)
        self.folder: Path | None = None
        if cache_dir is not None:
            blob = json.dumps({"v": STORE_VERSION, **self.kw}, sort_keys=True).encode()
            self.folder = (
                Path(os.path.expanduser(str(cache_dir))) / f"residuals-{hashlib.sha256(blob).hexdigest()[:16]}"
            )

    def residual(self, path: str | os.PathLike, img: np.ndarray, digest: str | None = None) -> np.ndarray:
        """``digest``: the file's SHA-256 when the caller has it already (otherwise it is read here)."""
        if self.folder is None:
            return noise_residual(img, **self.kw)
        digest = digest or sha256_file(path)
        if not digest:  # unreadable now: nothing to key the residual by
            return noise_residual(img, **self.kw)
        file = self.folder / f"{digest}-{img.shape[0]}x{img.shape[1]}.npz"
        cached = self._load(file, img.shape[:2])
        if cached is not None:
            return cached
        w = noise_residual(img, **self.kw)
        self._save(file, w)
        return w

    def photo(self, path: str) -> tuple[np.ndarray, np.ndarray] | str:
        """``(residual, grey)`` of the photo at ``path``, or the reason it cannot be used: a bad file is a reason
        to skip it, never an exception (photos are scored in worker processes; the caller logs and lists it)."""
        try:
            img = load_rgb(path)
        except SkippedImage as err:
            return str(err)
        return self.residual(path, img), grey_of(img)

    @staticmethod
    def _load(file: Path, shape: tuple[int, int]) -> np.ndarray | None:
        try:
            with np.load(file) as data:
                w = data["w"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
            log.warning("residual %s is damaged (%s): recomputing it", file, err)
            return None
        if w.shape != tuple(shape) or w.dtype != np.float32:
            log.warning("residual %s has shape %s / %s, not %s float32: recomputing it", file, w.shape, w.dtype, shape)
            return None
        return w

    @staticmethod
    def _save(file: Path, w: np.ndarray) -> None:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f".tmp-{file.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, w=w)
            os.replace(tmp, file)
        except OSError as err:  # a full or read-only cache must not stop the run: it only costs time
            log.warning("could not store residual %s (%s)", file, err)
            tmp.unlink(missing_ok=True)
