"""The patch cache: every image's patches cut once, stored as one uint8 memory-mapped array.

Layout of a cache folder ``<cache_dir>/patches-<key>/``:
``patches.u8`` (raw ``(N, s, s, 3)`` uint8), ``index.npz`` (per-image patch offsets, patch positions, image
sizes) and ``meta.json`` (shape, settings, skipped images with reasons, checksums), written last. The key hashes
the file list (path, size, mtime), the patch settings and :data:`FORMAT_VERSION`, so any change makes a new
cache. A build happens in a temporary folder that is renamed into place only when complete, so a killed build
is never mistaken for a finished one, and two processes building the same cache end with one valid copy.
Opening checks the patch file's size, the index's SHA-256 and the SHA-256 of sampled blocks of the patch file,
so a cache truncated or altered afterwards is rebuilt instead of read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sci_lightning.data.build import atomic_folder, parallel_map
from sci_lightning.data.images import SkippedImage
from sci_lightning.data.patches import patches_from_file

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
# Blocks of the patch file hashed for the integrity check: a fixed number, so opening a 3 GB cache costs the
# same few milliseconds as a small one (size + index hash catch truncation; the samples catch most overwrites).
SAMPLE_BLOCKS, SAMPLE_BLOCK_BYTES = 64, 1 << 16


@dataclass(frozen=True)
class PatchSettings:
    """The ``data.patches`` config that decides what a cache holds."""

    size: int = 32
    per_image: int = 256
    selection: str = "grid"
    seed: int = 0  # only used by the random selection

    @classmethod
    def from_mapping(cls, values: Mapping, seed: int = 0) -> PatchSettings:
        """From a ``data.patches`` mapping (``size``, ``per_image``, ``selection``)."""
        return cls(
            size=int(values["size"]),
            per_image=int(values["per_image"]),
            selection=str(values["selection"]),
            seed=int(seed),
        )


@dataclass
class PatchCache:
    """A loaded cache. ``offsets[i]:offsets[i+1]`` are image ``i``'s rows of ``patches``."""

    path: Path
    patches: np.ndarray  # (N, s, s, 3) uint8 memmap
    offsets: np.ndarray  # (n_images + 1,) int64
    positions: np.ndarray  # (N, 2) int32, top-left y, x of every patch
    image_sizes: np.ndarray  # (n_images, 2) int32 height, width (0 for skipped images)
    skipped: dict[int, str]  # image index -> reason
    content_sha256: list[str]  # per image, of the file's bytes ("" if unreadable): finds duplicate photos

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def patch_rows(self, image_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Patch rows of the given images and, for each row, its position in ``image_idx``."""
        image_idx = np.asarray(image_idx, dtype=np.int64)
        counts = self.counts[image_idx]
        owner = np.repeat(np.arange(len(image_idx)), counts)
        starts = np.repeat(self.offsets[image_idx], counts)
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return starts + within, owner


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sampled_sha256(path: Path) -> str:
    """SHA-256 of :data:`SAMPLE_BLOCKS` evenly spaced blocks (first and last included) of ``path``."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    starts = np.unique(np.linspace(0, max(0, size - SAMPLE_BLOCK_BYTES), SAMPLE_BLOCKS).astype(np.int64))
    with open(path, "rb") as fh:
        for start in starts:
            fh.seek(int(start))
            h.update(fh.read(SAMPLE_BLOCK_BYTES))
    return h.hexdigest()


def _file_signature(path: Path) -> list:
    try:
        st = path.stat()
        return [str(path), st.st_size, st.st_mtime_ns]
    except OSError:
        return [str(path), -1, -1]


def cache_key(paths: Sequence[Path], settings: PatchSettings) -> str:
    """Hash of the file list (path, size, mtime), the patch settings and the cache format version."""
    h = hashlib.sha256()
    h.update(json.dumps({"version": FORMAT_VERSION, "settings": settings.__dict__}, sort_keys=True).encode())
    for p in paths:
        h.update(json.dumps(_file_signature(Path(p))).encode())
    return h.hexdigest()[:24]


def _content_hash(path: str) -> str:
    try:
        return _sha256_file(Path(path))
    except OSError:
        return ""


def _patch_one(
    args: tuple[str, PatchSettings],
) -> tuple[np.ndarray | None, np.ndarray | None, tuple[int, int], str, str]:
    path, s = args
    digest = _content_hash(path)
    try:
        patches, positions, hw = patches_from_file(path, s.size, s.per_image, s.selection, s.seed, Path(path).name)
    except SkippedImage as err:
        return None, None, (0, 0), str(err), digest
    return patches, positions, hw, "", digest


def _build(paths: Sequence[Path], settings: PatchSettings, tmp: Path, num_workers: int) -> None:
    n = len(paths)
    offsets = np.zeros(n + 1, dtype=np.int64)
    positions, sizes, skipped, digests = [], np.zeros((n, 2), dtype=np.int32), {}, []
    jobs = [(str(p), settings) for p in paths]
    with open(tmp / "patches.u8", "wb") as fh:
        for i, (patches, pos, hw, reason, digest) in enumerate(
            parallel_map(_patch_one, jobs, num_workers, "Cutting patches")
        ):
            digests.append(digest)
            if reason:
                skipped[i] = reason
                log.warning("skipped %s: %s", paths[i], reason)
                offsets[i + 1] = offsets[i]
                continue
            fh.write(patches.tobytes())
            positions.append(pos)
            sizes[i] = hw
            offsets[i + 1] = offsets[i] + len(patches)
    pos = np.concatenate(positions) if positions else np.empty((0, 2), np.int32)
    np.savez(tmp / "index.npz", offsets=offsets, positions=pos, image_sizes=sizes)
    meta = {
        "version": FORMAT_VERSION,
        "n_images": n,
        "n_patches": int(offsets[-1]),
        "settings": settings.__dict__,
        "files": [str(p) for p in paths],
        "skipped": {str(k): v for k, v in skipped.items()},
        "content_sha256": digests,
        "index_sha256": _sha256_file(tmp / "index.npz"),
        "patches_sampled_sha256": _sampled_sha256(tmp / "patches.u8"),
    }
    # meta.json is written last: its presence (after the rename) marks a complete cache.
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))


def _load(folder: Path, n_images: int) -> PatchCache | None:
    """Open a cache folder, or return None if it is incomplete or inconsistent (then it gets rebuilt)."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        s = meta["settings"]["size"]
        n_patches = meta["n_patches"]
        if meta["version"] != FORMAT_VERSION or meta["n_images"] != n_images:
            return None
        if (folder / "patches.u8").stat().st_size != n_patches * s * s * 3:
            log.warning("patch cache %s: patches.u8 has the wrong size (truncated?)", folder)
            return None
        if (
            _sha256_file(folder / "index.npz") != meta["index_sha256"]
            or _sampled_sha256(folder / "patches.u8") != meta["patches_sampled_sha256"]
        ):
            log.warning("patch cache %s: checksum mismatch (altered after it was built)", folder)
            return None
        with np.load(folder / "index.npz") as idx:
            offsets, positions, sizes = idx["offsets"], idx["positions"], idx["image_sizes"]
    except (OSError, ValueError, KeyError):
        return None
    if len(offsets) != n_images + 1 or offsets[-1] != n_patches or len(positions) != n_patches:
        return None
    patches = (
        np.memmap(folder / "patches.u8", dtype=np.uint8, mode="r", shape=(n_patches, s, s, 3))
        if n_patches
        else np.empty((0, s, s, 3), np.uint8)
    )
    skipped = {int(k): v for k, v in meta["skipped"].items()}
    digests = list(meta.get("content_sha256") or [""] * n_images)
    return PatchCache(folder, patches, offsets, positions, sizes, skipped, digests)


def load_or_build(
    paths: Sequence[Path], settings: PatchSettings, cache_dir: str | os.PathLike, num_workers: int = 1
) -> PatchCache:
    """Return the cache for ``paths`` with ``settings``, building it (in parallel) if it does not exist."""
    cache_dir = Path(os.path.expanduser(str(cache_dir)))
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / f"patches-{cache_key(paths, settings)}"
    cache = _load(final, len(paths))
    if cache is not None:
        log.info("using patch cache %s (%d patches)", final, len(cache.patches))
        return cache
    if final.exists():
        log.warning("patch cache %s is incomplete or damaged; rebuilding it", final)
        shutil.rmtree(final, ignore_errors=True)
    log.info("building patch cache for %d images with %d worker(s) -> %s", len(paths), num_workers, final)
    with atomic_folder(final) as tmp:
        _build(paths, settings, tmp, num_workers)
    cache = _load(final, len(paths))
    if cache is None:
        raise RuntimeError(f"patch cache {final} failed its consistency check right after being built")
    return cache
