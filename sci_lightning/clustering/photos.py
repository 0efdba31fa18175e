"""Each photo's part in the clustering: the central square of its noise residual (and of its intensity), kept one
pixel larger than compared so that every turn of the photo has its own exact central square, and why a photo
cannot take part (too small, unreadable) or is unlikely to link (too dark or saturated)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from sci_lightning.clustering.pairs import Kept
from sci_lightning.data.images import SkippedImage, load_rgb_region
from sci_lightning.fingerprint.core import SATURATION, grey_of
from sci_lightning.fingerprint.residuals import ResidualStore

DARK = 16.0  # grey level below which a pixel carries little PRNU (it is multiplicative: K * I)
THIN_SIGNAL = 0.5  # a photo with more than this fraction of dark or saturated pixels is flagged


@dataclass(frozen=True)
class Photo:
    """One photo's central patch: residual ``w`` (float16) and intensity ``grey`` (uint8), ``side + 1`` px square:
    3 MB at 1024 px instead of 8 in float32 (half precision keeps a residual's correlation to 4 digits)."""

    path: str
    size: tuple[int, int]  # (height, width) as stored
    side: int  # the central square compared
    w: np.ndarray
    grey: np.ndarray
    thin: float  # fraction of the patch's pixels too dark or saturated to carry PRNU

    def turned(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(w, grey)`` of the central ``side`` square of the photo turned by ``k`` x 90 degrees
        (``np.rot90``): exactly the square that photo, stored turned, would give."""
        return self.residual(k), self.intensity(k)

    def residual(self, k: int) -> np.ndarray:
        """The residual of :meth:`turned` only (float32)."""
        return np.ascontiguousarray(np.rot90(self.w[self._cut(k)], k), np.float32)

    def intensity(self, k: int) -> np.ndarray:
        """The intensity of :meth:`turned` only (float32)."""
        return np.ascontiguousarray(np.rot90(self.grey[self._cut(k)], k), np.float32)

    def _cut(self, k: int) -> tuple[slice, slice]:
        (ry, rx) = _offsets(self.size, self.side, k)
        return slice(ry, ry + self.side), slice(rx, rx + self.side)

    def turned_size(self, k: int) -> tuple[int, int]:
        return self.size if k % 2 == 0 else (self.size[1], self.size[0])


def _offsets(size: tuple[int, int], side: int, k: int) -> tuple[int, int]:
    """Where, in the stored ``side + 1`` patch, the central square of the photo turned ``k`` times lies.

    Turned, the central square starts at ``floor((h' - side) / 2)``; mapped back onto the stored photo that is the
    floor or the ceiling of ``(h - side) / 2`` on each axis (which one depends on the turn), and the patch starts
    at the floor: so 0 or 1."""
    k %= 4
    ceil_rows, ceil_cols = k in (2, 3), k in (1, 2)
    return (
        int(ceil_rows and (size[0] - side) % 2),
        int(ceil_cols and (size[1] - side) % 2),
    )


def compared_side(size: tuple[int, int], side: int) -> int:
    """The square side compared for a photo of ``size``: ``side``, or the largest multiple of 8 that fits."""
    return min(side, (min(size) - 1) // 8 * 8)


MARGIN = 64  # px of the photo kept around the compared square when it is denoised (see :func:`load_photo`)


def denoised_box(size: tuple[int, int], side: int) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the part of a photo of ``size`` that is denoised: the centred window of the
    compared square, one pixel (every turn's square, :func:`_offsets`) and :data:`MARGIN` px either side. It is
    the centred crop of its size (:func:`~sci_lightning.fingerprint.core.crop_center`), so the residual store's
    entry for that size (keyed by file and size) is this window whoever made it."""
    s = compared_side(size, side)
    h, w = min(size[0], s + 2 + 2 * MARGIN), min(size[1], s + 2 + 2 * MARGIN)
    top, left = (size[0] - h) // 2, (size[1] - w) // 2
    return top, left, top + h, left + w


def load_photo(path: str, store: ResidualStore, side: int, min_side: int) -> Photo | str:
    """The photo's :class:`Photo`, or the reason it is left alone (unreadable, too small).

    Only :func:`denoised_box` is denoised, not the whole photo: denoising is the run's largest cost and grows with
    the pixels (a 12 MP photo ~10x a 1.3 MP window), while the comparisons read the central square only. The
    margin keeps the square off the window's edge, where the wavelet denoiser's boundary handling changes the
    residual; the row / column means and the spectral (Wiener) step are the window's own, as for any photo of its
    size."""
    try:
        img, size, (top, left) = load_rgb_region(path, box=lambda h, w: denoised_box((h, w), side))
    except SkippedImage as err:
        return f"unreadable: {err}"
    if min(size) < min_side:
        return f"too small: {size[1]} x {size[0]} px (cluster.min_side={min_side})"
    w, grey = store.residual(path, img), grey_of(img)
    s = compared_side(size, side)
    y0, x0 = (size[0] - s) // 2 - top, (size[1] - s) // 2 - left  # a side + 1 patch from here holds every turn's
    wp = np.array(w[y0 : y0 + s + 1, x0 : x0 + s + 1], np.float16)
    gp = np.clip(np.rint(grey[y0 : y0 + s + 1, x0 : x0 + s + 1]), 0, 255).astype(np.uint8)
    thin = float(np.mean((gp < DARK) | (gp >= SATURATION)))
    return Photo(path, size, s, wp, gp, thin)


DETAIL_SAMPLES = 16_384  # fine-detail pixels a scene check compares (see :func:`fine_detail`)
DETAIL_CACHE_BYTES = 512 * 2**20  # fine detail kept between scene checks (a cluster's members are checked again)


_details = Kept(DETAIL_CACHE_BYTES)  # by (path, size, turn)
_samples: dict[int, np.ndarray] = {}


def _sampled(side: int) -> np.ndarray:
    """The pixels of a ``side`` square a scene check compares: all of them up to :data:`DETAIL_SAMPLES`, else that
    many at random (the same for every photo of that side)."""
    if side not in _samples:
        n = side * side
        rng = np.random.default_rng(side)
        _samples[side] = np.arange(n) if n <= DETAIL_SAMPLES else np.sort(rng.choice(n, DETAIL_SAMPLES, replace=False))
    return _samples[side]


def fine_detail(photo: Photo, turn: int) -> np.ndarray:
    """The photo's fine detail (intensity less its 2 px blur) turned ``turn``, at :func:`_sampled` pixels,
    zero-mean, unit norm, float16. Why a sample: the correlation of two such vectors estimates the whole squares' to
    +-1 / sqrt(16,384) = 0.008 for unrelated views (a copy's, near 1, far closer), while the bar it is read
    against is 0.1 (:data:`~.compare.SAME_SCENE`); the whole squares, 1 MB each at 512 px, thrashed any cache at
    10,000 photos and a check against each member of a cluster filtered the same photos again and again."""
    return _details.get((photo.path, photo.size, turn), lambda: _detail(photo, turn))


def _detail(photo: Photo, turn: int) -> np.ndarray:
    x = photo.intensity(turn)
    x = (x - gaussian_filter(x, 2.0)).ravel()[_sampled(photo.side)]
    x -= x.mean()
    norm = float(np.sqrt(np.vdot(x, x)))
    return (x / norm if norm > 0 else x).astype(np.float16)  # 32 KB: 10,000 photos' detail in the cache


def scene_similarity(a: Photo, b: Photo, turn: int) -> float:
    """Normalised correlation of the two photos' fine detail (:func:`fine_detail`) at zero shift, ``b`` turned
    ``turn``: near 0 for different views, near 1 for copies of one photo. A residual keeps some of the scene's fine
    detail, so two cameras photographing one view pixel-aligned (a chart on a tripod) correlate there as a camera's
    photos do."""
    return float(np.vdot(fine_detail(a, 0).astype(np.float32), fine_detail(b, turn).astype(np.float32)))
