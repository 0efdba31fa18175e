"""Geometry search: a questioned photo that was turned, mirrored, cropped or resized, found in a fingerprint's frame.

Goljan & Fridrich, "Camera identification from cropped and scaled images" (SPIE 6819, 2008), with this project's
residual and fingerprints:

* **Orientations.** The photo's pixels as stored may be the sensor's turned by 0/90/180/270 degrees (and, with
  ``mirror``, flipped: front cameras). Each orientation is undone before the comparison; EXIF orientation is not
  trusted (it only says how to display the pixels, and editors that turn the pixels reset it).
* **Crop.** The photo's ``W * I`` (residual times intensity; Goljan's form, so each camera's fingerprint spectrum
  serves every photo and the photo's spectrum every camera) is placed in the fingerprint's frame and correlated
  over every offset at once by one FFT; the peak over the offsets where the photo fits inside the frame is kept,
  and its offset reported.
* **Size settings.** A camera's "medium / small" setting is the whole frame resized by the camera's own resampler
  and rounding (3008 x 2000 -> 1536 x 1024 scales the width by 0.5106 and the height by 0.512), sometimes after
  a few rows or columns are cut; its "16:9" or "3:2" mode crops a 4:3 frame first. So a photo whose aspect ratio
  is within ``aspect_tolerance`` of the fingerprint's is tried as the fingerprint resampled to the photo's size
  (each axis its own scale) and at the uniform scales from one axis ratio to the other (the photo placed in the
  few rows or columns left over); a photo of another aspect ratio as a crop of the fingerprint resampled to either
  axis ratio (``setting_steps`` scales either side), every offset searched. A handful of hypotheses each, so a low
  bar (:mod:`.hypotheses`).
* **Decision.** Every score carries ``n``, the number of positions searched; the false-alarm probability of its
  peak is ``1 - (1 - S(PCE))^n``, ``S`` one position's chance to reach it under the null: Gaussian (``Q(sqrt(PCE))``)
  where nothing else is known, measured on its own planes and decoys where a camera could be named
  (:mod:`.null`). Computed in log space: a 12 MP crop search has ``n`` ~ 1e7 and a true match a PCE of thousands,
  whose tail underflows a float.

NumPy, SciPy and Pillow only (Pillow resamples float32 images with antialiasing, which SciPy's zoom lacks).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
import scipy.fft
from PIL import Image

from sci_lightning.errors import require
from sci_lightning.fingerprint.null import NullModel
from sci_lightning.fingerprint.significance import log10_false_alarm
from sci_lightning.settings import schema_of, setting

ROTATIONS = (0, 90, 180, 270)
MODES = ("none", "auto", "full")


# -- settings and results -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GeometrySettings:
    """The ``geometry`` config group (``geometry=auto|none|full`` presets override these defaults, which are auto's).

    Costs on a 2-core machine: one FFT correlation per camera and hypothesis, ~0.3 s at 12 MP; a turned whole frame
    1 position per turn; a crop every offset where it fits, (H - h + 1) x (W - w + 1), in one FFT per turn; an
    aspect-kept resize (2 shift + 1)^2 positions, one FFT at the photo's size. Every position searched counts in
    the false-alarm probability, so the bar rises with the search (README "Geometry").
    """

    name: str = setting(
        "auto",
        "none: each photo as stored only | auto: as stored, then the search where no camera clears the bar "
        "(stopping once one clears) | full: every hypothesis, always",
    )
    rotations: tuple[int, ...] = setting(ROTATIONS, "turns (degrees counter-clockwise) of the stored pixels tried")
    mirror: bool = setting(False, "also try left-right mirrored copies (front cameras, selfie apps): 2x the cost")
    crop: bool = setting(True, "search every offset of a photo smaller than the fingerprint (in each turn)")
    resize: bool = setting(True, "a photo with the sensor's aspect ratio: try it as the whole frame resized")
    shift: int = setting(1, "resize: px searched around the aligned position ((2 shift + 1)^2 positions)")
    min_side: int = setting(64, "photos with a side below this (px) are compared as stored only")
    scale_search: bool = setting(
        True,
        "crop and resize at once, coarse to fine over the scale, where nothing cleared before it (~22 s per camera "
        "for a 1680 x 1260 photo against a 12 MP fingerprint in turns 0 / 180)",
    )
    scale_rotations: tuple[int, ...] = setting((0, 180), "the turns the scale search tries (90 / 270 add ~40 %)")
    scale_min: float = setting(0.3, "smallest scale (photo px per sensor px) the scale search tries")
    scale_max: float = setting(1.0, "largest scale the scale search tries")
    scale_block: int = setting(512, "px: the photo's central square the scale search's coarse pass uses")
    aspect_tolerance: float = setting(
        0.02,
        "size settings: a photo whose aspect ratio is within this of a fingerprint's is tried as the whole frame "
        "resized (each axis its own scale, and the scales between); others as a crop of the frame resized",
    )
    setting_steps: int = setting(1, "size settings: scales tried either side of an axis ratio (steps of 1 / long side)")
    setting_shift: int = setting(4, "size settings: px searched around the alignment, in a stage of their own")
    decoys: bool = setting(
        True,
        "measure each nameable camera's null on its own fingerprint mirrored and flipped, searched the same way "
        "(~2x that camera's search); false: the Gaussian tail alone",
    )

    def __post_init__(self) -> None:
        """The group's rules: a setting out of range stops with its name and a fix."""
        require(self.name in MODES, "geometry", f"is {self.name!r}", f"use geometry={' | '.join(MODES)}")
        bad = sorted(set(self.rotations) - set(ROTATIONS))
        require(
            bool(self.rotations) and not bad,
            "geometry.rotations",
            f"must be a non-empty list of {list(ROTATIONS)} (got {list(self.rotations)})",
            "use geometry.rotations=[0,90,180,270]",
        )
        require(0 <= self.shift <= 8, "geometry.shift", f"must be 0..8 px (got {self.shift})", "use 1")
        require(
            0 <= self.setting_shift <= 16,
            "geometry.setting_shift",
            f"must be 0..16 px (got {self.setting_shift})",
            "use 4",
        )
        require(self.min_side >= 16, "geometry.min_side", "must be at least 16 px", "use 64")
        require(
            0 < self.scale_min <= self.scale_max <= 1,
            "geometry.scale_min / geometry.scale_max",
            f"must satisfy 0 < scale_min <= scale_max <= 1 (got {self.scale_min}, {self.scale_max})",
            "use geometry.scale_min=0.3 geometry.scale_max=1.0",
        )
        odd = sorted(set(self.scale_rotations) - set(self.rotations))
        require(
            not odd,
            "geometry.scale_rotations",
            f"must be among geometry.rotations {list(self.rotations)} (got {list(self.scale_rotations)})",
            "use geometry.scale_rotations=[0,180]",
        )
        require(
            self.scale_block >= 64,
            "geometry.scale_block",
            f"must be at least 64 px (got {self.scale_block})",
            "use 512",
        )
        require(
            0 <= self.aspect_tolerance <= 0.1,
            "geometry.aspect_tolerance",
            f"must be 0..0.1 (got {self.aspect_tolerance})",
            "use 0.02 (cameras keep the aspect ratio of their size settings to a few px)",
        )
        require(
            0 <= self.setting_steps <= 8, "geometry.setting_steps", f"must be 0..8 (got {self.setting_steps})", "use 2"
        )

    @property
    def searches(self) -> bool:
        return self.name != "none"


GeometrySettingsSchema = schema_of(GeometrySettings)  # what Hydra composes the group onto (sci_lightning.settings)


class Placement(TypedDict, total=False):
    """Where a photo sits in a camera's frame and how its peak was judged, as verdicts.csv, search.csv and the
    report show it (:meth:`Match.describe`, and the search's judgement added by the scoring)."""

    transform: str  # aligned | turn | crop | resize
    rotation: int  # degrees counter-clockwise the sensor image was turned
    mirror: bool
    scale: float  # the photo's size over the frame's
    offset_y: int  # the photo's top-left in the (turned, resized) frame
    offset_x: int
    hypotheses: int  # the hypotheses this peak is the best of
    null_max_pce: float | None  # the largest PCE of its measured null (None: judged by the Gaussian tail)
    null_positions: int | None  # how many null positions were measured
    log10_pfa: float  # its false-alarm probability, log10
    null_sources: str | None  # what the null was measured on, in words
    decoy_checks: tuple[int, int]  # (decoy searches, decoys named)
    pce: float  # the peak's PCE (transform_found)
    log10_p_false_alarm: float  # as judged for the photo (transform_found)


@dataclass
class Match:
    """The best hypothesis of one photo against one camera."""

    pce: float
    n: int  # hypotheses its camera had tested by the end of the stage it was found in
    kind: str  # aligned (as stored, centred) | whole (turned whole frame) | crop | resize (whole frame resized)
    rotation: int = 0  # degrees counter-clockwise the sensor image was turned to give the stored pixels
    mirror: bool = False  # flipped left-right before turning
    scale: float = 1.0  # photo px per sensor px
    offset: tuple[int, int] = (0, 0)  # sensor px: where the photo's (un-turned) top-left lies in the fingerprint
    ncc: float = float("nan")
    hypothesis: Any = field(default=None, repr=False)  # the Hypothesis that won, to map K onto the photo again
    peak: tuple[int, int] = (0, 0)  # its peak in the correlation plane
    null: NullModel | None = field(default=None, repr=False)  # measured on its planes and decoys (None: Gaussian)
    null_sources: str = ""  # what the null was measured on, in words
    judged_pce: float | None = None  # the peak against its own JPEG-grid class's energy (aligned: see scoring)
    decoy_checks: tuple[int, int] = (0, 0)  # decoy searches judged as cameras, and how many the rule named

    def log10_pfa(self) -> float:
        """log10 false-alarm probability of this peak among its camera's own hypotheses: under the measured null
        where there is one (never below the Gaussian's), else the Gaussian's."""
        if self.null is not None:
            return self.null.log10_pfa(self.pce if self.judged_pce is None else self.judged_pce, self.n)
        return log10_false_alarm(self.pce, self.n)

    def describe(self) -> Placement:
        """The transform as written to verdicts.csv / search.csv and the report."""
        return {
            "transform": self.kind,
            "rotation": self.rotation,
            "mirror": self.mirror,
            "scale": round(self.scale, 5),
            "offset_y": self.offset[0],
            "offset_x": self.offset[1],
            "hypotheses": self.n,
            "null_max_pce": round(self.null.largest, 1) if self.null is not None else None,
            "null_positions": self.null.n if self.null is not None else None,
        }


def orient_to_sensor(x: np.ndarray, rotation: int, mirror: bool) -> np.ndarray:
    """Undo a turn by ``rotation`` degrees (counter-clockwise) and a mirror: photo pixels -> sensor orientation."""
    y = np.rot90(x, -(rotation // 90))
    return y[:, ::-1] if mirror else y


def orient_to_photo(x: np.ndarray, rotation: int, mirror: bool) -> np.ndarray:
    """The inverse of :func:`orient_to_sensor`: sensor orientation -> the photo's stored pixels."""
    y = x[:, ::-1] if mirror else x
    return np.rot90(y, rotation // 90)


def resample(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """``x`` (float32) resized to ``height`` x ``width`` with Lanczos and antialiasing (Pillow's float mode)."""
    if x.shape == (height, width):
        return np.asarray(x, np.float32)
    img = Image.fromarray(np.ascontiguousarray(x, dtype=np.float32))
    return np.asarray(img.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32)


def aspect_close(small: tuple[int, int], big: tuple[int, int], tolerance: float) -> bool:
    """Whether ``small`` (no side larger than ``big``'s, not ``big`` itself) has ``big``'s aspect ratio to within
    ``tolerance`` (relative): a camera's size setting of that frame, as cameras round them."""
    if small[0] > big[0] or small[1] > big[1] or tuple(small) == tuple(big):
        return False
    return abs((small[1] / big[1]) / (small[0] / big[0]) - 1.0) <= tolerance


# -- spectra ---------------------------------------------------------------------------------------------------------
class Spectra:
    """Fingerprint spectra kept between photos (LRU, ``size`` entries; ~50 MB each at 12 MP): each camera's FFT at
    each size is computed once, not once per photo (24: ten cameras at their own size and one resized size)."""

    def __init__(self, size: int = 24) -> None:
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.size = size

    @staticmethod
    def fingerprint(k: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """``k`` at ``shape`` (resampled when not its own), zero-mean: what the spectra are of."""
        ks = resample(k, *shape)
        return ks - np.float32(ks.mean())

    def _cached(self, key: tuple, make) -> np.ndarray:
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        value = self._cache[key] = make()
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return value

    @staticmethod
    def _key(name: str, k: np.ndarray, shape: tuple[int, int]) -> tuple:
        return (name, k.shape, shape, hashlib.blake2b(k[::61, ::53].tobytes(), digest_size=8).hexdigest())

    def get(self, name: str, k: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """The rfft2 of :meth:`fingerprint` ``(k, shape)``."""
        key = ("spectrum", *self._key(name, k, shape))
        return self._cached(key, lambda: scipy.fft.rfft2(self.fingerprint(k, shape), workers=-1))

    def resampled(self, name: str, k: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """:meth:`fingerprint` ``(k, shape)`` itself: the scale search's coarse pass transforms the windows of it
        that each photo size can reach, not the whole frame."""
        return self._cached(("plane", *self._key(name, k, shape)), lambda: self.fingerprint(k, shape))


def trimmed(x: np.ndarray, frame: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """``x`` cut (centred) to fit in ``frame`` where it is larger, and the rows / columns cut before it: a size
    setting's photo can be a few px larger than the fingerprint resampled at one axis's scale."""
    ty, tx = max(0, x.shape[0] - frame[0]) // 2, max(0, x.shape[1] - frame[1]) // 2
    return x[ty : ty + min(x.shape[0], frame[0]), tx : tx + min(x.shape[1], frame[1])], (ty, tx)


class Query:
    """One questioned photo: ``W * I`` in each orientation and its spectra padded to each frame (kept for every
    camera of the same size)."""

    def __init__(self, w: np.ndarray, grey: np.ndarray) -> None:
        self.w, self.grey = np.asarray(w, np.float32), np.asarray(grey, np.float32)
        wi = self.w * self.grey
        self.wi = wi - np.float32(wi.mean())
        self._spectra: OrderedDict[tuple, np.ndarray] = OrderedDict()  # a few frames: ~50 MB each at 12 MP

    @property
    def shape(self) -> tuple[int, int]:
        return self.w.shape

    def oriented(self, rotation: int, mirror: bool) -> np.ndarray:
        return orient_to_sensor(self.wi, rotation, mirror)

    def spectrum(self, rotation: int, mirror: bool, frame: tuple[int, int], keep: bool = True) -> np.ndarray:
        """The oriented ``W * I`` zero-padded to ``frame``, Fourier-transformed (kept for the next camera of
        the same size unless ``keep`` is false: the scale search uses each frame once)."""
        key = (rotation, mirror, frame)
        if key in self._spectra:
            self._spectra.move_to_end(key)
            return self._spectra[key]
        x = trimmed(self.oriented(rotation, mirror), frame)[0]
        pad = np.zeros(frame, np.float32)
        pad[: x.shape[0], : x.shape[1]] = x
        spectrum = scipy.fft.rfft2(pad, workers=-1)
        if keep:
            self._spectra[key] = spectrum
            if len(self._spectra) > 12:  # cameras of many sizes (a library): the oldest frames go
                self._spectra.popitem(last=False)
        return spectrum
