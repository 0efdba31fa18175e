"""Where patches are cut from an image and how they are chosen (``data.patches.selection``).

All selections use cells of one non-overlapping grid whose origin is even, so every patch starts on the same
phase of the 2x2 colour-filter array: the CNN then sees one consistent CFA/demosaicing pattern per camera.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from sci_lightning.errors import SCIConfigError

SELECTIONS = ("grid", "random", "quality")


def grid_cells(h: int, w: int, size: int) -> tuple[int, int, int, int]:
    """Rows, columns and (even) pixel origin of the centred non-overlapping grid of ``size`` cells."""
    rows, cols = h // size, w // size
    oy = ((h - rows * size) // 2) & ~1
    ox = ((w - cols * size) // 2) & ~1
    return rows, cols, oy, ox


def centred_cells(rows: int, cols: int, n: int) -> np.ndarray:
    """Cell (row, col) indices of the most central block holding ``n`` cells (16x16 for n=256)."""
    side = math.ceil(math.sqrt(n))
    r = min(rows, side)
    c = min(cols, math.ceil(n / r))
    r = min(rows, math.ceil(n / c))
    r0, c0 = (rows - r) // 2, (cols - c) // 2
    rr, cc = np.meshgrid(np.arange(r0, r0 + r), np.arange(c0, c0 + c), indexing="ij")
    cells = np.stack([rr.ravel(), cc.ravel()], axis=1)
    if len(cells) > n:  # non-square n: keep the cells nearest the image centre
        d = (cells[:, 0] + 0.5 - rows / 2) ** 2 + (cells[:, 1] + 0.5 - cols / 2) ** 2
        cells = cells[np.sort(np.argsort(d, kind="stable")[:n])]
    return cells


def grid_box(h: int, w: int, size: int, per_image: int) -> tuple[int, int, int, int] | None:
    """Pixel box ``(top, left, bottom, right)`` holding the ``grid`` selection's cells, or None if no cell fits.

    Lets a loader crop a 12 MP photo to the 512x512 px the paper's grid uses before converting it to an array.
    """
    rows, cols, oy, ox = grid_cells(h, w, size)
    if rows * cols == 0:
        return None
    cells = centred_cells(rows, cols, per_image)
    top, left = oy + int(cells[:, 0].min()) * size, ox + int(cells[:, 1].min()) * size
    return top, left, oy + (int(cells[:, 0].max()) + 1) * size, ox + (int(cells[:, 1].max()) + 1) * size


def centred_grid(h: int, w: int, size: int, n: int) -> np.ndarray:
    """Top-left pixel ``(y, x)`` of the ``n`` most central cells of the centred ``size`` grid of an ``h`` x ``w``
    frame (fewer if fewer fit): the co-located crops every method evaluates at ``eval.crop``."""
    rows, cols, oy, ox = grid_cells(h, w, size)
    if rows * cols == 0:
        return np.empty((0, 2), dtype=np.int64)
    cells = centred_cells(rows, cols, n)
    return np.stack([oy + cells[:, 0] * size, ox + cells[:, 1] * size], axis=1).astype(np.int64)


def quality_scores(
    cells: np.ndarray, alpha: float = 0.7, beta: float = 4.0, gamma: float = math.log(0.01)
) -> np.ndarray:
    """Bondi et al. 2017 patch quality: favours mid-grey, textured patches over flat, dark or saturated ones.

    ``cells`` is ``(k, s, s, 3)`` uint8; returns ``(k,)`` scores
    ``mean_c[alpha*beta*(mu - mu^2) + (1 - alpha)*(1 - exp(gamma*sigma))]`` with mu, sigma in [0, 1].
    """
    x = cells.reshape(len(cells), -1, 3).astype(np.float32) / 255.0
    mu, sigma = x.mean(axis=1), x.std(axis=1)
    return (alpha * beta * (mu - mu * mu) + (1 - alpha) * (1 - np.exp(gamma * sigma))).mean(axis=1)


def _cut(
    img: np.ndarray, cells: np.ndarray, size: int, oy: int, ox: int, origin: tuple[int, int] = (0, 0)
) -> tuple[np.ndarray, np.ndarray]:
    ys = oy + cells[:, 0] * size
    xs = ox + cells[:, 1] * size
    patches = (
        np.stack([img[y : y + size, x : x + size] for y, x in zip(ys, xs)])
        if len(cells)
        else np.empty((0, size, size, 3), np.uint8)
    )
    positions = np.stack([ys + origin[0], xs + origin[1]], axis=1).astype(np.int32)
    return np.ascontiguousarray(patches, dtype=np.uint8), positions


def extract_patches(
    img: np.ndarray,
    size: int = 32,
    per_image: int = 256,
    selection: str = "grid",
    seed: int = 0,
    key: str = "",
    full_shape: tuple[int, int] | None = None,
    origin: tuple[int, int] = (0, 0),
) -> tuple[np.ndarray, np.ndarray]:
    """Cut up to ``per_image`` non-overlapping ``size`` patches from an ``(H, W, 3)`` image.

    Returns ``(patches (k, size, size, 3) uint8, positions (k, 2) int32 top-left y, x)`` in row-major order.
    ``grid`` takes the centred block (the paper), ``random`` random cells (seeded by ``seed`` and ``key``,
    normally the file name, so it is repeatable), ``quality`` the best cells by :func:`quality_scores`.
    Images with fewer cells than ``per_image`` give all their cells. ``img`` may be a crop (at ``origin``) of a
    ``full_shape`` image holding the selected cells (see :func:`grid_box`); positions are in the full image.
    """
    if selection not in SELECTIONS:
        raise SCIConfigError("data.patches.selection", f"unknown value {selection!r}", f"use one of {SELECTIONS}")
    if size < 2 or size % 2:
        raise SCIConfigError(
            "data.patches.size",
            f"must be an even number of pixels (got {size})",
            "use 32 (the paper) or another even size, so patches keep the CFA phase",
        )
    if per_image < 1:
        raise SCIConfigError("data.patches.per_image", f"must be positive (got {per_image})", "use 256 (the paper)")
    if full_shape is not None and selection != "grid" and tuple(full_shape) != img.shape[:2]:
        raise ValueError("only the grid selection can cut from a crop; pass the whole image")
    h, w = full_shape if full_shape is not None else img.shape[:2]
    rows, cols, oy, ox = grid_cells(h, w, size)
    oy, ox = oy - origin[0], ox - origin[1]
    if rows * cols == 0:
        return _cut(img, np.empty((0, 2), int), size, oy, ox, origin)
    if selection == "grid":
        cells = centred_cells(rows, cols, per_image)
    else:
        rr, cc = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        every = np.stack([rr.ravel(), cc.ravel()], axis=1)
        n = min(per_image, len(every))
        if selection == "random":
            rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
            cells = every[np.sort(rng.choice(len(every), size=n, replace=False))]
        else:
            region = img[oy : oy + rows * size, ox : ox + cols * size]
            all_cells = region.reshape(rows, size, cols, size, 3).transpose(0, 2, 1, 3, 4).reshape(-1, size, size, 3)
            best = np.argsort(-quality_scores(all_cells), kind="stable")[:n]
            cells = every[np.sort(best)]
    return _cut(img, cells, size, oy, ox, origin)


def patches_from_file(
    path: str, size: int = 32, per_image: int = 256, selection: str = "grid", seed: int = 0, key: str = ""
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Decode ``path`` and cut its patches: ``(patches, positions, (height, width))``.

    For the grid selection only the grid's box is converted from the decoded image (same patches, less work).
    Raises :class:`~sci_lightning.data.images.SkippedImage` for unusable files.
    """
    from sci_lightning.data.images import load_rgb_region

    box = (lambda h, w: grid_box(h, w, size, per_image)) if selection == "grid" else None
    img, full, origin = load_rgb_region(path, min_size=size, box=box)
    patches, positions = extract_patches(img, size, per_image, selection, seed, key=key, full_shape=full, origin=origin)
    return patches, positions, full
