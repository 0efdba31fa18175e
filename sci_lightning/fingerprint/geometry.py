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
* **Resize.** A photo that keeps the sensor's aspect ratio (messaging apps, "medium size" settings) is the whole
  frame resized: the fingerprint is resampled to the photo's size (Lanczos, as the resize that made the photo)
  and the peak searched within ``shift`` px of zero. A handful of hypotheses, so a low bar.
* **Decision.** Every score carries ``n``, the number of positions searched; the false-alarm probability of its
  peak is ``1 - (1 - Q(sqrt(PCE)))^n`` (Q the Gaussian tail: under "another camera" the normalised correlation at
  one position is ~N(0, 1), so PCE is its square). Computed in log space: a 12 MP crop search has ``n`` ~ 1e7
  and a true match a PCE of thousands, whose tail underflows a float.

NumPy, SciPy and Pillow only (Pillow resamples float32 images with antialiasing, which SciPy's zoom lacks).
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.fft
from PIL import Image

from sci_lightning.fingerprint.significance import grid_pce, judged, log10_false_alarm

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
    scale_search: bool = False  # crop + resize: coarse-to-fine over the scale (slow: see conf/geometry)
    scale_min: float = 0.3
    scale_max: float = 1.0
    scale_block: int = 512

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
            scale_min=float(cfg["scale_min"]),
            scale_max=float(cfg["scale_max"]),
            scale_block=int(cfg["scale_block"]),
        )

    @property
    def searches(self) -> bool:
        return self.mode != "none"


@dataclass
class Match:
    """The best hypothesis of one photo against one camera."""

    pce: float
    n: int  # hypotheses its camera had tested by the end of the stage it was found in
    kind: str  # aligned (as stored, centred) | whole (turned whole frame) | crop | resize
    rotation: int = 0  # degrees counter-clockwise the sensor image was turned to give the stored pixels
    mirror: bool = False  # flipped left-right before turning
    scale: float = 1.0  # photo px per sensor px
    offset: tuple[int, int] = (0, 0)  # sensor px: where the photo's (un-turned) top-left lies in the fingerprint
    ncc: float = float("nan")
    hypothesis: Hypothesis | None = field(default=None, repr=False)  # what won, to map K onto the photo again
    peak: tuple[int, int] = (0, 0)  # its peak in the correlation plane

    def log10_pfa(self) -> float:
        """log10 false-alarm probability of this peak among its camera's own hypotheses."""
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


def same_aspect(small: tuple[int, int], big: tuple[int, int]) -> bool:
    """Whether ``small`` is ``big`` resized with its aspect ratio kept (each side within the 1 px of rounding)."""
    s = small[1] / big[1]
    return (
        small[0] < big[0]
        and abs(round(big[0] * s) - small[0]) <= 1
        and abs(round(big[1] * small[0] / big[0]) - small[1]) <= 1
    )


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

    def get(self, name: str, k: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """The rfft2 of :meth:`fingerprint` ``(k, shape)``."""
        key = (name, k.shape, shape, hashlib.blake2b(k[::61, ::53].tobytes(), digest_size=8).hexdigest())
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        spectrum = scipy.fft.rfft2(self.fingerprint(k, shape), workers=-1)
        self._cache[key] = spectrum
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return spectrum


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
        x = self.oriented(rotation, mirror)
        pad = np.zeros(frame, np.float32)
        pad[: x.shape[0], : x.shape[1]] = x
        spectrum = scipy.fft.rfft2(pad, workers=-1)
        if keep:
            self._spectra[key] = spectrum
            if len(self._spectra) > 8:  # cameras of many sizes (a library): the oldest frames go
                self._spectra.popitem(last=False)
        return spectrum


# -- the search --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hypothesis:
    """One family of alignments: an orientation, the fingerprint's size, and where the peak may lie."""

    kind: str  # whole | crop | resize
    rotation: int
    mirror: bool
    frame: tuple[int, int]  # the fingerprint's size for this hypothesis (resampled for resize)
    photo: tuple[int, int]  # the photo's size in sensor orientation
    shift: int  # resize: peak within +-shift of zero

    @property
    def count(self) -> int:
        if self.kind == "resize":
            return (2 * self.shift + 1) ** 2
        return (self.frame[0] - self.photo[0] + 1) * (self.frame[1] - self.photo[1] + 1)


def hypotheses(photo: tuple[int, int], native: tuple[int, int], s: GeometrySettings) -> list[Hypothesis]:
    """Every alignment family the settings allow for a photo of size ``photo`` against a fingerprint of size
    ``native`` (the aligned, as-stored comparison excluded: it is scored first, as without a search)."""
    out = []
    if min(photo) < s.min_side:
        return out
    for rotation in s.rotations:
        for mirror in (False, True) if s.mirror else (False,):
            turned = (photo[1], photo[0]) if rotation in (90, 270) else photo
            if turned == native and (rotation, mirror) != (0, False):
                out.append(Hypothesis("whole", rotation, mirror, native, turned, 0))
            elif s.crop and turned[0] <= native[0] and turned[1] <= native[1] and turned != native:
                out.append(Hypothesis("crop", rotation, mirror, native, turned, 0))
            if s.resize and same_aspect(turned, native):
                out.append(Hypothesis("resize", rotation, mirror, turned, turned, s.shift))
    return out


def _peak(plane: np.ndarray, h: Hypothesis) -> tuple[int, int]:
    """The highest (positive) correlation where the hypothesis allows the peak."""
    if h.kind == "resize":
        r = h.shift
        rows, cols = np.arange(-r, r + 1) % plane.shape[0], np.arange(-r, r + 1) % plane.shape[1]
        sub = plane[np.ix_(rows, cols)]
        i, j = np.unravel_index(int(np.argmax(sub)), sub.shape)
        return int(rows[i]), int(cols[j])
    valid = plane[: h.frame[0] - h.photo[0] + 1, : h.frame[1] - h.photo[1] + 1]
    i, j = np.unravel_index(int(np.argmax(valid)), valid.shape)
    return int(i), int(j)


def _orientations(s: GeometrySettings) -> list[tuple[int, bool]]:
    return [(r, m) for r in s.rotations for m in ((False, True) if s.mirror else (False,))]


def stages(s: GeometrySettings) -> int:
    """How many stages a search may run: as stored, turned whole frames and resizes, crops as stored or upside
    down, crops turned sideways (a time saver: most crops keep the sensor's orientation), crop + resize.

    Each stage is judged on the hypotheses tested so far and may stop the search (``geometry=auto``), so a
    peak's false-alarm probability is multiplied by this (the union bound over the stages: the overall rate
    stays within the bar). Few stages, each cheap ones first: a resized whole frame is judged among ~20
    positions, not among the ten million offsets a crop search adds later."""
    return 2 + 2 * int(s.crop) + int(s.scale_search)


def search_photo(
    q: Query,
    fingerprints: dict[str, np.ndarray],
    s: GeometrySettings,
    spectra: Spectra,
    stop: float | None = None,
    tested: dict[str, int] | None = None,
) -> tuple[dict[str, Match], int]:
    """The best hypothesis of ``q`` against every fingerprint, stage by stage (:func:`stages`).

    Stages: turned whole frames and aspect-kept resizes (few positions), then crops (every offset) as stored or
    upside down, then crops turned sideways, then crop + resize (``scale_search``). A peak found in a stage
    carries ``n``, the hypotheses its camera had tested by the end of that stage (``tested``: those before the
    search, e.g. the aligned comparison); a camera keeps the peak with the lowest false-alarm probability.
    ``stop`` (``geometry=auto``): after a stage, the search ends if the best camera's peak, :func:`judged`,
    reaches it. Returns ``({camera: Match}, n)``, ``n`` every position tested here over all cameras."""
    cum = dict(tested or {})
    best: dict[str, tuple[float, Hypothesis, tuple[int, int], int]] = {}
    n_stages, n = stages(s), 0

    def offer(name: str, found: tuple[float, Hypothesis, tuple[int, int]]) -> None:
        if name not in best or log10_false_alarm(found[0], cum[name]) < log10_false_alarm(best[name][0], best[name][3]):
            best[name] = (*found, cum[name])

    def cleared() -> bool:
        lps = [judged(v[0], v[3], n_stages, len(fingerprints)) for v in best.values()]
        return stop is not None and bool(lps) and min(lps) <= stop

    for kinds, turns in ((("whole", "resize"), ROTATIONS), (("crop",), (0, 180)), (("crop",), (90, 270))):
        found: dict[str, tuple[float, Hypothesis, tuple[int, int]]] = {}
        for rotation, mirror in [(r, m) for r, m in _orientations(s) if r in turns]:
            for name, k in fingerprints.items():
                for h in hypotheses(q.shape, k.shape, s):
                    if h.kind not in kinds or (h.rotation, h.mirror) != (rotation, mirror):
                        continue
                    fk = spectra.get(name, k, h.frame)
                    spectrum = q.spectrum(rotation, mirror, h.frame)
                    plane = scipy.fft.irfft2(fk * np.conj(spectrum), s=h.frame, workers=-1)
                    peak = _peak(plane, h)
                    value = grid_pce(plane, peak)
                    cum[name] = cum.get(name, 0) + h.count
                    n += h.count
                    if name not in found or value > found[name][0]:
                        found[name] = (value, h, peak)
        for name, f in found.items():
            offer(name, f)
        if cleared():
            break
    else:
        if s.scale_search:
            found = {}
            for rotation, mirror in _orientations(s):
                for name, k in fingerprints.items():
                    f, count = scale_search(q, name, k, s, spectra, rotation, mirror)
                    cum[name] = cum.get(name, 0) + count
                    n += count
                    if f is not None and (name not in found or f[0] > found[name][0]):
                        found[name] = f
            for name, f in found.items():
                offer(name, f)
    return {name: _match(q, name, fingerprints[name], spectra, *b) for name, b in best.items()}, n


def scale_search(
    q: Query, name: str, k: np.ndarray, s: GeometrySettings, spectra: Spectra, rotation: int, mirror: bool
) -> tuple[tuple[float, Hypothesis, tuple[int, int]] | None, int]:
    """Crop and resize at once (a crop of a resized frame, or a resized crop): coarse to fine over the scale.

    Coarse: the photo's central ``scale_block`` px square against the fingerprint resampled to each scale from
    ``scale_max`` down to ``scale_min`` (or the smallest scale at which the photo still fits), in relative steps
    of 1 / block (a mis-scale of one step moves the block's edges by half a pixel), every offset searched. Fine:
    around the three best coarse scales, the whole photo in steps of 1 / (its long side). Returns the best
    ``(PCE, hypothesis, peak)`` (None when the photo fits at no scale) and the positions tested."""
    turned = orient_to_sensor(q.w, rotation, mirror).shape
    big = k.shape
    lo, hi = max(s.scale_min, turned[0] / big[0], turned[1] / big[1]), min(s.scale_max, 1.0)
    if lo > hi or min(turned) < s.min_side:
        return None, 0
    b = min(s.scale_block, *turned)
    y0, x0 = (turned[0] - b) // 2, (turned[1] - b) // 2
    block = orient_to_sensor(q.wi, rotation, mirror)[y0 : y0 + b, x0 : x0 + b]
    fk = spectra.get(name, k, big)  # the native fingerprint: its spectrum serves every coarse scale
    step = 1.0 / b
    n, coarse = 0, []
    for sc in hi * (1 - step) ** np.arange(int(math.log(lo / hi) / math.log(1 - step)) + 1):
        # coarse: the block brought up to sensor resolution (cheap: b / sc px a side) against the native K,
        # instead of K brought down to each scale (a 12 MP resample per step, 4x the time)
        side = int(round(b / sc))
        if side > min(big):
            continue
        pad = np.zeros(big, np.float32)
        pad[:side, :side] = resample(block, side, side)
        plane = scipy.fft.irfft2(fk * np.conj(scipy.fft.rfft2(pad, workers=-1)), s=big, workers=-1)
        h = Hypothesis("crop", 0, False, big, (side, side), 0)
        coarse.append((grid_pce(plane, _peak(plane, h)), float(sc)))
        n += h.count
    fine = 1.0 / max(turned)
    reach = int(math.ceil(step / fine))
    best = None
    for _, sc in sorted(coarse, reverse=True)[:3]:
        for j in range(-reach, reach + 1):
            sf = sc * (1 + j * fine)
            frame = (int(round(big[0] * sf)), int(round(big[1] * sf)))
            if not lo <= sf <= hi or frame[0] < turned[0] or frame[1] < turned[1]:
                continue
            h = Hypothesis("crop", rotation, mirror, frame, turned, 0)
            fk = spectra.get(name, k, frame)
            plane = scipy.fft.irfft2(fk * np.conj(q.spectrum(rotation, mirror, frame, keep=False)), s=frame, workers=-1)
            peak = _peak(plane, h)
            value = grid_pce(plane, peak)
            n += h.count
            if best is None or value > best[0]:
                best = (value, h, peak)
    return best, n


def _match(
    q: Query, name: str, k: np.ndarray, spectra: Spectra, value: float, h: Hypothesis, peak: tuple, n: int
) -> Match:
    scale = h.frame[1] / k.shape[1]
    if h.kind == "resize":  # a small shift, signed, in sensor px
        offset = tuple(int(round((p if p <= f // 2 else p - f) / scale)) for p, f in zip(peak, h.frame))
    else:  # a crop's corner; in a resampled frame (crop + resize), back in sensor px
        offset = tuple(int(round(p / scale)) for p in peak)
    m = Match(value, n, h.kind, h.rotation, h.mirror, scale, (int(offset[0]), int(offset[1])), hypothesis=h, peak=peak)
    m.ncc = ncc32(fingerprint_in_photo(m, name, k, spectra) * q.grey, q.w)
    return m


def ncc32(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation at zero shift in float32 (BLAS dot products): ~10x faster than
    :func:`~sci_lightning.fingerprint.core.ncc` at 12 MP, to ~1e-5 of its value; a searched match's NCC is
    reported, never decided on."""
    a = np.ravel(a).astype(np.float32) - np.float32(np.mean(a))
    b = np.ravel(b).astype(np.float32) - np.float32(np.mean(b))
    denom = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    return float(np.dot(a, b)) / denom if denom > 0 else 0.0


def fingerprint_in_photo(m: Match, name: str, k: np.ndarray, spectra: Spectra) -> np.ndarray:
    """The fingerprint ``k`` aligned onto the photo's stored pixels as ``m`` found it (for NCC and heat maps)."""
    h = m.hypothesis
    ks = Spectra.fingerprint(k, h.frame)
    if h.kind == "resize":
        window = np.roll(ks, (-m.peak[0], -m.peak[1]), axis=(0, 1))
    else:
        window = ks[m.peak[0] : m.peak[0] + h.photo[0], m.peak[1] : m.peak[1] + h.photo[1]]
    return orient_to_photo(window, h.rotation, h.mirror)
