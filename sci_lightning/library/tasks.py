"""The units of work the engine ships to workers: one photo's residual and index code, one camera's
fingerprint. Plain functions of picklable arguments that never raise for a bad photo (they return the reason)."""

from __future__ import annotations

import os

import numpy as np

from sci_lightning.data.images import SkippedImage, load_rgb
from sci_lightning.data.selection import sha256_file
from sci_lightning.errors import SCIConfigError
from sci_lightning.fingerprint.core import grey_of
from sci_lightning.fingerprint.references import fingerprint_and_photos
from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.library.index import has_code, photo_code
from sci_lightning.library.records import Estimate, IngestedPhoto


def ingest_photo(path: str, residuals: ResidualStore, side: int) -> IngestedPhoto:
    """Residual (kept in the residual store) and index code of one photo; ``{"path", "reason"}`` if unreadable."""
    try:
        img = load_rgb(path)
    except SkippedImage as err:
        return {"path": path, "reason": str(err)}
    digest = sha256_file(path)
    if not digest:
        return {"path": path, "reason": "unreadable"}
    w, grey = residuals.residual(path, img, digest), grey_of(img)
    code = photo_code(w, grey, side).tobytes() if has_code(w.shape, side) else None
    st = os.stat(path)
    return {
        "path": path,
        "sha256": digest,
        "height": int(w.shape[0]),
        "width": int(w.shape[1]),
        "code": code,
        "stat": [st.st_size, st.st_mtime_ns],
    }


def estimate_camera(job: tuple[str, str, list[str]], residuals: ResidualStore) -> Estimate:
    """``job = (name, device, reference paths)`` -> the camera's fingerprint and the photos (path, SHA-256) it
    was estimated from; ``{"name", "reason"}`` if none of its photos is readable."""
    name, device, paths = job
    try:
        fp, used, quality = fingerprint_and_photos(paths, residuals)
    except SCIConfigError as err:
        return {"name": name, "reason": err.problem}
    return {
        "name": name,
        "device": device,
        "fingerprint": np.ascontiguousarray(fp, dtype=np.float32),
        "photos": [(p, sha256_file(p)) for p in used],
        "quality": quality.as_dict(),
    }
