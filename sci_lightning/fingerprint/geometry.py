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
from typing import Any

import numpy as np
import scipy.fft
from PIL import Image

from sci_lightning.fingerprint.null import NullModel
from sci_lightning.fingerprint.significance import log10_false_alarm

ROTATIONS = (0, 90, 180, 270)
MODES = ("none", "auto", "full")


# -- settings and results -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GeometrySettings:
    """The ``geometry`` config group (conf/geometry/*.yaml documents each key and its cost)."""

    mode: str = "none"  # none: aligned only | auto: aligned, then the search where nothing clears | full: always
    rotations: tuple[int, ...] = ROTATIONS
    mirror: bool = False
    crop: bool = True
    resize: bool = True
    shift: int = 1
    min_side: int = 64
    scale_search: bool = False  # crop + resize: coarse to fine over the scale (:mod:`.scales`)
    scale_rotations: tuple[int, ...] = (0, 180)  # the turns the scale search tries (each of ``rotations``)
    scale_min: float = 0.3
    scale_max: float = 1.0
    scale_block: int = 512
    aspect_tolerance: float = 0.02  # size settings: a whole-frame resize where the aspect ratios differ by at most this
    setting_steps: int = 1  # size settings: scales tried either side of an axis ratio (steps of 1 / the long side)
    setting_shift: int = 4  # size settings: px searched around the alignment (a camera's setting may cut a few)
    decoys: bool = True  # measure each nameable camera's null on its mirrored fingerprint (:mod:`.null`)

    @classmethod
    def from_config(cls, cfg: Any) -> GeometrySettings:
        """From ``cfg.geometry`` (a DictConfig or a mapping)."""
        return cls(
            mode=str(cfg["name"]),
            rotations=tuple(int(r) for r in cfg["rotations"]),
            mirror=bool(cfg["mirror"]),
            crop=bool(cfg["crop"]),
            resize=bool(cfg["resize"]),
            shift=int(cfg["shift"]),
            min_side=int(cfg["min_side"]),
            scale_search=bool(cfg["scale_search"]),
            scale_rotations=tuple(int(r) for r in cfg["scale_rotations"]),
            scale_min=float(cfg["scale_min"]),
            scale_max=float(cfg["scale_max"]),
            scale_block=int(cfg["scale_block"]),
            aspect_tolerance=float(cfg["aspect_tolerance"]),
            setting_steps=int(cfg["setting_steps"]),
            setting_shift=int(cfg["setting_shift"]),
            decoys=bool(cfg["decoys"]),
        )

    @property
    def searches(self) -> bool:
        return self.mode != "none"


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

    def describe(self) -> dict[str, Any]:
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

    def get(self, name: str, k: np.ndarray, shape: tuple[int, int], pad: tuple[int, int] | None = None) -> np.ndarray:
        """The rfft2 of :meth:`fingerprint` ``(k, shape)``, zero-padded to ``pad`` where given (a size the FFT
        is fast at: the scale search's coarse planes)."""
        key = (name, k.shape, shape, pad, hashlib.blake2b(k[::61, ::53].tobytes(), digest_size=8).hexdigest())
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        x = self.fingerprint(k, shape)
        if pad is not None:
            x = np.pad(x, ((0, pad[0] - shape[0]), (0, pad[1] - shape[1])))
        spectrum = scipy.fft.rfft2(x, workers=-1)
        self._cache[key] = spectrum
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return spectrum


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
