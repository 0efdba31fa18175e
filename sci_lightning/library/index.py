"""The library's compact index: one bit per pixel of the central ``side`` x ``side`` area (Bayram, Sencar and
Memon, "Efficient sensor fingerprint matching through fingerprint binarization", IEEE TIFS 2012).

A camera's code is the sign of its fingerprint K there; a photo's code is the sign of I*W (intensity times
residual) on the same pixels, because K*I is what a photo's residual carries. The agreement of two codes,
``1 - 2 * hamming / bits``, estimates (2/pi) * arcsin of their correlation; under "not this camera" it is about
N(0, 1/bits), so ``z = agreement * sqrt(bits)`` ranks cameras on one scale whatever the library's size. The index
only shortlists: every decision is taken by full PCE on the shortlisted fingerprints.

What a shortlist can find is set by the physics: ``z`` of a true match is about 0.64 * sqrt(bits / pixels) times
the sqrt(PCE) of the whole-frame comparison, so a weak match (PCE ~100 on a 12 MP photo) needs a large ``side``
or a long shortlist in a large library (docs/RESULTS.md, section 6).

Why sign bits rather than the other compact forms in the literature (reasoned, not measured here): a linear
sketch (Valsesia et al. 2015, random projections) of n pixels to m values estimates the same correlation with the
same spread, 1/sqrt(m), as m sampled pixels, so it buys nothing over reading m pixels directly; a fingerprint
digest (Goljan et al. 2010: the largest |K| and their positions) concentrates signal per entry (the top 1 % of a
Gaussian K holds ~8 % of its energy) but costs a value and a position (~48 bits) per entry, about half the z^2
per stored bit of one sign bit per pixel (0.64^2 = 0.41 per bit), and its per-camera positions make the scan a
gather instead of a popcount.

Why not faiss' ``IndexBinaryFlat``: it does this same exhaustive Hamming scan; NumPy's popcount over the packed
codes is already memory-bound at 10,000 x 128 KB, and needs no extra dependency.
"""

from __future__ import annotations

import numpy as np

from sci_lightning.fingerprint.core import crop_center
from sci_lightning.fingerprint.geometry import GeometrySettings, aspect_close, orient_to_sensor, resample

BLOCK_ROWS = 256


def has_code(shape: tuple[int, ...], side: int) -> bool:
    """Whether a fingerprint or photo of ``shape`` covers the index area (smaller ones are always verified)."""
    return shape[0] >= side and shape[1] >= side


def sign_code(x: np.ndarray, side: int) -> np.ndarray:
    """Packed sign bits (uint8, ``side * side / 8`` bytes) of the central ``side`` x ``side`` area of ``x``."""
    return np.packbits(crop_center(x, side, side).ravel() > 0)


def photo_code(w: np.ndarray, grey: np.ndarray, side: int) -> np.ndarray:
    """A photo's code: the sign of intensity x residual (what correlates with a fingerprint) on the index area."""
    return sign_code(crop_center(grey, side, side) * crop_center(w, side, side), side)


def z_scores(codes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``z`` of ``query`` (one packed code) against every row of ``codes`` (n, bytes): agreement x sqrt(bits)."""
    if not len(codes):
        return np.zeros(0)
    words = codes.view(np.uint64) if codes.shape[1] % 8 == 0 else codes
    q = query.view(np.uint64) if query.shape[0] % 8 == 0 else query
    hamming = np.empty(len(codes), dtype=np.int64)
    for start in range(0, len(codes), BLOCK_ROWS):  # blocks: the XOR temporary stays small (cache, not RAM)
        block = words[start : start + BLOCK_ROWS]
        hamming[start : start + len(block)] = np.bitwise_count(np.bitwise_xor(block, q)).sum(axis=1, dtype=np.int64)
    bits = codes.shape[1] * 8
    return (1.0 - 2.0 * hamming / bits) * np.sqrt(bits)


def shortlist(z: np.ndarray, k: int, min_z: float) -> np.ndarray:
    """Row indices to verify, best first: the ``k`` highest ``z`` and every row reaching ``min_z``."""
    if not len(z):
        return np.zeros(0, dtype=np.int64)
    k = min(k, len(z))
    top = np.argpartition(-z, k - 1)[:k] if k else np.zeros(0, dtype=np.int64)
    rows = np.union1d(top, np.flatnonzero(z >= min_z))
    return rows[np.argsort(-z[rows], kind="stable")]


def photo_codes(
    w: np.ndarray, grey: np.ndarray, side: int, sizes: np.ndarray, g: GeometrySettings
) -> list[tuple[np.ndarray, np.ndarray]]:
    """A photo's codes for a library of cameras of ``sizes`` (n, 2): ``[(rows, code), ...]``, each code to be
    compared with the cameras ``rows`` only.

    Per orientation the geometry search tries (as stored, turned, mirrored): the oriented photo's own code for the
    cameras of exactly its size (a turned whole frame), and, for each distinct camera size with the same aspect
    ratio and more pixels, the code of the photo resampled to that size (a resized whole frame). Cameras with no
    code here could only hold the photo as a crop: the caller verifies them."""
    wi = np.asarray(grey, np.float32) * np.asarray(w, np.float32)
    out = []
    for rotation in g.rotations:
        for mirror in (False, True) if g.mirror else (False,):
            xo = orient_to_sensor(wi, rotation, mirror)
            same = np.flatnonzero((sizes[:, 0] == xo.shape[0]) & (sizes[:, 1] == xo.shape[1]))
            if len(same) and has_code(xo.shape, side):
                out.append((same, sign_code(xo, side)))
            if not g.resize:
                continue
            for size in {tuple(s) for s in sizes.tolist()}:
                if aspect_close(xo.shape, size, g.aspect_tolerance) and has_code(size, side):
                    rows = np.flatnonzero((sizes[:, 0] == size[0]) & (sizes[:, 1] == size[1]))
                    out.append((rows, sign_code(resample(xo, *size), side)))
    return out


def best_z(codes: np.ndarray, queries: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Each camera's best ``z`` over the ``queries`` that apply to it (``-inf`` where none does)."""
    z = np.full(len(codes), -np.inf)
    for rows, code in queries:
        z[rows] = np.maximum(z[rows], z_scores(codes[rows], code))
    return z


def fits(photo: tuple[int, int], size: tuple[int, int], g: GeometrySettings) -> bool:
    """Whether a photo could be a crop of a sensor of ``size`` in one of the orientations tried."""
    return any(
        (photo[0] <= size[0] and photo[1] <= size[1])
        if r in (0, 180)
        else (photo[1] <= size[0] and photo[0] <= size[1])
        for r in g.rotations
    )
