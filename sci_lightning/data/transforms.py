"""Questioned photos as people meet them: ``eval.transform=NAME`` makes one deterministic copy of each test or
questioned photo, turned, mirrored, cropped, resized and re-encoded the way phones, editors and messaging apps do,
so every method is measured under the same transforms.

| name | what is done to the pixels as stored | saved as |
|---|---|---|
| ``none`` | nothing (the photo itself is used) | |
| ``rot90`` / ``rot180`` / ``rot270`` | turned counter-clockwise | PNG (lossless) |
| ``mirror`` | flipped left-right | PNG |
| ``crop60`` | a 60 % x 60 % window at a photo-dependent, off-centre offset | JPEG 97 |
| ``scale50`` | half each side, Lanczos | JPEG 90 |
| ``social1600`` | long side 1600 px (aspect kept), Lanczos | JPEG 80 |
| ``cropscale`` | ``crop60``, then 0.7 x each side, Lanczos | JPEG 90 |
| ``camera_medium`` | a "medium" size setting: 0.64 x, each side rounded to 16 px (axes scale differently) | JPEG 92 |
| ``camera_169`` | a "16:9" mode: the central 16:9 band, then 0.75 x, each side rounded to 8 px, Lanczos | JPEG 92 |

The offset of a crop comes from a generator seeded by ``seed`` and the photo's SHA-256, so a photo gets the same
crop in every run and every method. Copies are kept under ``<cache_dir>/transformed/<name>-<seed>/`` (written to
a temporary name and renamed into place), with ``transforms.csv`` listing the truth of each copy (rotation,
mirror, scale, offset): what the oracle and the geometry search's accuracy are measured against.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from sci_lightning.data.images import SkippedImage, load_rgb
from sci_lightning.data.selection import Selection, questioned_files, sha256_file
from sci_lightning.data.size_settings import camera_setting
from sci_lightning.errors import SCIConfigError

log = logging.getLogger(__name__)

TRANSFORMS = (
    "none",
    "rot90",
    "rot180",
    "rot270",
    "mirror",
    "crop60",
    "scale50",
    "social1600",
    "cropscale",
    "camera_medium",
    "camera_169",
)
CROP_FRACTION = 0.6
VERSION = 1


@dataclass(frozen=True)
class Applied:
    """What a transform did to one photo: ``stored = resize(crop(turn(mirror(sensor))))`` with these values."""

    rotation: int = 0  # degrees counter-clockwise
    mirror: bool = False
    offset_y: int = 0  # sensor px: top-left of the crop in the original photo
    offset_x: int = 0
    scale: float = 1.0  # output px per original px (width)
    quality: int | None = None  # JPEG quality, None: lossless PNG


def check_name(name: str, setting: str = "eval.transform") -> str:
    """``name`` if it is a known transform; otherwise an error naming the setting and the choices."""
    if name not in TRANSFORMS:
        raise SCIConfigError(setting, f"unknown transform {name!r}", f"use one of {', '.join(TRANSFORMS)}")
    return name


def _crop_offset(shape: tuple[int, int], digest: str, seed: int) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of a 60 % window away from the centre (at least 1/8 of the slack off it)."""
    h, w = shape
    ch, cw = int(round(h * CROP_FRACTION)), int(round(w * CROP_FRACTION))
    rng = np.random.default_rng([seed, int(digest[:15] or "0", 16)])
    slack_y, slack_x = h - ch, w - cw

    def off_centre(slack: int) -> int:
        side = rng.choice([-1, 1])
        return int(slack // 2 + side * rng.integers(max(1, slack // 8), max(2, slack // 2 + 1)))

    return off_centre(slack_y), off_centre(slack_x), ch, cw


def _resize(img: Image.Image, scale: float) -> Image.Image:
    w, h = img.size
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)


QUALITY = {"crop60": 97, "scale50": 90, "social1600": 80, "cropscale": 90, "camera_medium": 92, "camera_169": 92}
# JPEG; the others are saved losslessly

# A camera's own size settings: its resampler rounds each side to its block size, so the two axes scale differently
SETTINGS = {"camera_medium": (0.64, 16, None), "camera_169": (0.75, 8, 16 / 9)}  # scale, rounding (px), band


def _geometric(img: np.ndarray, name: str, digest: str, seed: int) -> tuple[np.ndarray, Applied]:
    """The pixels a transform encodes (turned / cropped / resized, before any JPEG step) and what was done."""
    if name.startswith("rot"):
        r = int(name[3:])
        return np.ascontiguousarray(np.rot90(img, r // 90)), Applied(rotation=r)
    if name == "mirror":
        return np.ascontiguousarray(img[:, ::-1]), Applied(mirror=True)
    pil = Image.fromarray(img)
    oy = ox = 0
    if name in SETTINGS:
        pil, oy, ox, scale = camera_setting(pil, *SETTINGS[name])
        return np.asarray(pil), Applied(0, False, oy, ox, scale, QUALITY[name])
    if name in ("crop60", "cropscale"):
        oy, ox, ch, cw = _crop_offset(img.shape[:2], digest, seed)
        pil = pil.crop((ox, oy, ox + cw, oy + ch))
    scale = {"scale50": 0.5, "social1600": min(1.0, 1600 / max(img.shape[:2])), "cropscale": 0.7}.get(name, 1.0)
    if scale != 1.0:
        pil = _resize(pil, scale)
    return np.asarray(pil), Applied(0, False, oy, ox, scale, QUALITY[name])


def apply(img: np.ndarray, name: str, digest: str = "", seed: int = 0) -> tuple[np.ndarray, Applied]:
    """The transformed pixels (decoded again after JPEG, as a reader would see them) and what was done."""
    if check_name(name) == "none":
        return img, Applied()
    arr, applied = _geometric(img, name, digest, seed)
    if applied.quality is None:
        return arr, applied
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=applied.quality)
    buf.seek(0)
    with Image.open(buf) as again:
        return np.asarray(again.convert("RGB"), dtype=np.uint8), applied


def _digest(path: Path) -> str:
    digest = sha256_file(path)
    if not digest:
        raise OSError(f"cannot read {path}")
    return digest


def transformed_copy(path: str | Path, name: str, folder: Path, seed: int) -> tuple[Path, Applied]:
    """The transformed copy of ``path`` under ``folder`` (made once; reused when already there)."""
    path = Path(path)
    digest = _digest(path)
    ext = ".png" if name.startswith("rot") or name == "mirror" else ".jpg"
    out = folder / f"{digest[:16]}-{path.stem}-{name}{ext}"
    if out.exists():  # the truth is recomputed (cheap); the pixels are not
        return out, _geometric(load_rgb(path), name, digest, seed)[1]
    arr, applied = _geometric(load_rgb(path), name, digest, seed)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{ext}")
    try:
        if applied.quality is None:
            Image.fromarray(arr).save(tmp, "PNG")
        else:
            Image.fromarray(arr).save(tmp, "JPEG", quality=applied.quality)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out, applied


def transform_paths(paths: list[str], name: str, cache_dir: str | Path, seed: int) -> dict[str, str]:
    """``{original path: transformed copy}`` for every readable photo (``none``: each photo maps to itself).

    Writes ``transforms.csv`` (the truth of every copy) beside the copies. Unreadable photos map to themselves
    (they are skipped with their reason where they are scored)."""
    check_name(name)
    if name == "none":
        return {p: p for p in paths}
    folder = Path(os.path.expanduser(str(cache_dir))) / "transformed" / f"{name}-{seed}-v{VERSION}"
    out, rows = {}, []
    for p in paths:
        try:
            copy, applied = transformed_copy(p, name, folder, seed)
        except (SkippedImage, OSError) as err:
            log.warning("eval.transform=%s: %s left as it is (%s)", name, p, err)
            out[p] = p
            continue
        out[p] = str(copy)
        rows.append({"path": str(copy), "source": p, **asdict(applied)})
    if rows:
        tmp = folder / f".tmp-transforms-{os.getpid()}.csv"
        with tmp.open("w", newline="") as fh:
            wr = csv.DictWriter(fh, list(rows[0]))
            wr.writeheader()
            wr.writerows(rows)
        os.replace(tmp, folder / "transforms.csv")
    log.info("eval.transform=%s: %d photos transformed (copies and transforms.csv in %s)", name, len(rows), folder)
    return out


def transform_selection(sel: Selection, name: str, cache_dir: str | Path, seed: int) -> Selection:
    """``sel`` with every test and unknown-camera photo replaced by its ``name`` copy (references untouched)."""
    if check_name(name) == "none":
        return sel
    idx = sorted({*sel.splits["test"].tolist(), *sel.unknown_idx.tolist()})
    mapping = transform_paths([str(sel.records[i].path) for i in idx], name, cache_dir, seed)
    records = list(sel.records)
    for i in idx:
        records[i] = replace(records[i], path=Path(mapping[str(records[i].path)]))
    return replace(sel, records=records)


def questioned_paths(
    images: str | Path, extensions: Sequence[str], name: str, cache_dir: str | Path, seed: int
) -> list[str]:
    """The photos of ``images=`` (:func:`~sci_lightning.data.selection.questioned_files`), as ``name`` copies."""
    paths = [str(p) for p in questioned_files(images, extensions)]
    mapping = transform_paths(paths, name, cache_dir, seed)
    return [mapping[p] for p in paths]
