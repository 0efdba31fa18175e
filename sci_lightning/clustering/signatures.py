"""Signatures: a residual square cut small, for scoring many pairs in every quarter turn as matrix products.

A signature is the central ``cluster.signature_side`` square of a residual square, its 8 x 8 JPEG-grid pattern and
mean removed, unit norm: the dot product of two is their correlation at zero shift, the statistic a pair's PCE is
made of, on fewer pixels. The scores of one set of squares (at turn 0) against another in each of the four quarter
turns (:func:`turn_scores`) come from one signature per square when the turns of a photo's central square are turns
of one square (:func:`turn_exact`: even height and width, nearly every camera's photo), else from one per turn.

Why one signature can serve four turns: the four quarter turns of a square permute its four quadrants, so the
correlations of ``x`` with each turn of ``y`` are a circular correlation, over those four, of the quadrants brought
to the top-left corner (``q_m = rot90(x, -m)[:h, :h]``), which a 4-point DFT over ``m`` diagonalises
(:func:`quarter_orbits`). The four turns' scores then cost 1.5 dot products instead of 4, and a quarter of the
memory.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sci_lightning.clustering.pairs import GRID


def turn_exact(size: tuple[int, int], side: int) -> bool:
    """Whether the central ``side`` square of a photo of ``size`` turned ``k`` is that of the photo turned ``k``
    (both margins even): then one signature serves every turn."""
    return (size[0] - side) % 2 == 0 and (size[1] - side) % 2 == 0


def signature(square_of: Callable[[int], np.ndarray], side: int, exact: bool) -> np.ndarray:
    """The signature of the square ``square_of(k)`` (the square turned ``k``) at ``side`` px, float16: with
    ``exact``, :func:`quarter_orbits` of turn 0 (``(d,)``), else the plain signature of each turn (``(4, d)``)."""
    if exact:
        return quarter_orbits(_plain(square_of(0), side))
    return np.stack([plain_signature(square_of(k), side) for k in range(4)])


def plain_signature(w: np.ndarray, side: int) -> np.ndarray:
    """The signature of ``w`` at turn 0 only, flattened (float16): the rows of :func:`turn_scores` against the
    columns of squares whose turns are not :func:`turn_exact`."""
    return _plain(w, side).ravel().astype(np.float16)


def row_signature(sig: np.ndarray) -> np.ndarray:
    """The part of a :func:`signature` a square compared at turn 0 needs (the rows of :func:`turn_scores`)."""
    return sig if sig.ndim == 1 else sig[0]


def turn_scores(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``(4, len(rows), len(cols))``: the correlation of each row square at turn 0 with each column square turned
    ``k`` times (``np.rot90``); ``rows`` stacked :func:`row_signature`, ``cols`` stacked :func:`signature`
    (float32 matrix products, BLAS)."""
    rows = np.asarray(rows, np.float32)
    if cols.ndim == 3:
        return np.stack([rows @ np.asarray(cols[:, k], np.float32).T for k in range(4)])
    return turn_correlations(rows, cols)


def _plain(w: np.ndarray, side: int) -> np.ndarray:
    """The central ``side`` square of ``w``, its 8 x 8 grid pattern and mean removed, unit norm (float32)."""
    s = min(side, w.shape[0]) // GRID * GRID
    y0, x0 = (w.shape[0] - s) // 2, (w.shape[1] - s) // 2
    x = np.array(w[y0 : y0 + s, x0 : x0 + s], np.float32)
    x -= np.tile(x.reshape(s // GRID, GRID, s // GRID, GRID).mean(axis=(0, 2)), (s // GRID, s // GRID))
    x -= np.float32(x.mean())
    norm = float(np.linalg.norm(x))
    return x / norm if norm > 0 else x


def quarter_orbits(square: np.ndarray) -> np.ndarray:
    """A square of even side ``S`` as four float16 parts of ``S^2 / 4`` values each (see the module's docstring):
    ``q0+q1+q2+q3`` and ``q0-q1+q2-q3`` (the DFT's real terms) and ``q0-q2``, ``q1-q3`` (the real and imaginary
    part of its complex one; the fourth is its conjugate)."""
    h = square.shape[0] // 2
    q = [np.asarray(np.rot90(square, -m)[:h, :h], np.float32) for m in range(4)]
    parts = (q[0] + q[1] + q[2] + q[3], q[0] - q[1] + q[2] - q[3], q[0] - q[2], q[1] - q[3])
    return np.concatenate([v.ravel() for v in parts]).astype(np.float16)


def turn_correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(4, len(a), len(b))``: the dot product of each row square of ``a`` with each of ``b`` turned ``k`` times
    (``np.rot90(y, k)``), both given as :func:`quarter_orbits` rows: the inverse DFT of the four terms' products."""
    n = a.shape[1] // 4
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    p0 = a[:, :n] @ b[:, :n].T
    p2 = a[:, n : 2 * n] @ b[:, n : 2 * n].T
    re = a[:, 2 * n :] @ b[:, 2 * n :].T
    im = a[:, 2 * n : 3 * n] @ b[:, 3 * n :].T - a[:, 3 * n :] @ b[:, 2 * n : 3 * n].T
    even, odd = p0 + p2, p0 - p2
    return np.stack([even + 2 * re, odd - 2 * im, even - 2 * re, odd + 2 * im]) / np.float32(4)
