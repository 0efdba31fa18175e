"""Which alignments of a photo in a fingerprint's frame are searched, and how many positions each one counts.

A hypothesis is an orientation, the fingerprint's size for it (resampled when the photo is a size setting) and the
offsets where the peak may lie. Its ``count`` of positions is what its peak's false-alarm probability is taken
over, so every family below is kept as narrow as the physics allows:

* **whole**: the photo is the whole frame turned: 1 position.
* **resize** (aspect ratio within ``aspect_tolerance``): the fingerprint resampled to the photo's size, each axis
  its own scale, peak within ``shift`` px (a messaging app's or an editor's resize: stage 1); then, as a camera's
  own size setting (stage 2), the same within ``setting_shift`` px and at uniform scales from the height's ratio
  to the width's (at most ``2 * setting_steps + 1`` of them), the photo placed in the few rows or columns left
  over.
  Cameras do both: 3008 x 2000 -> 1536 x 1024 scales the axes by 0.5106 and 0.512; a Canon EOS RP's 6240 x 4160
  -> 4160 x 2768 is the width's 2/3 with 5 rows cut (measured: PCE 27,955 at the width's scale, 1,663 with each
  axis its own, 753 at the height's).
* **crop of a resized frame** (another aspect ratio: 16:9 or 3:2 modes of a 4:3 sensor, digital zoom): the
  fingerprint resampled to the width's or the height's ratio, ``setting_steps`` steps of 1 / (the photo's long
  side) either side, every offset where the photo fits.
* **crop** at the sensor's own scale: every offset where the photo fits.

Stages (:func:`stage_of`): 1 whole frames and plain resizes, 2 size settings, 3 crops as stored or upside down,
4 crops turned sideways; the scale search (:func:`~.scales.scale_search`) is the last. A stage costs the union
bound a factor (stages + 1) / stages; splitting the wide size-setting margins off the plain resizes keeps a weak
half-size copy judged among 9 positions per turn, not 81.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sci_lightning.fingerprint.geometry import GeometrySettings, aspect_close

TRIM = 4  # px a size setting's photo may exceed the resampled frame by (rounding, a scale step): cut, centred


@dataclass(frozen=True)
class Hypothesis:
    """One family of alignments: an orientation, the fingerprint's size for it, and where the peak may lie."""

    kind: str  # whole | crop | resize
    rotation: int
    mirror: bool
    frame: tuple[int, int]  # the fingerprint's size for this hypothesis (resampled when scale != 1)
    photo: tuple[int, int]  # the photo's size in sensor orientation, cut to fit the frame
    shift: int  # px searched beyond the offsets where the photo fits (resampling phase, rounding)
    stage: int = 1
    trim: tuple[int, int] = (0, 0)  # rows, columns cut off the photo's top and left to fit the frame

    def spans(self) -> tuple[np.ndarray, np.ndarray]:
        """The rows and columns of the correlation plane where the peak may lie (circular indices)."""
        return tuple(
            np.unique(np.arange(-self.shift, f - p + self.shift + 1) % f) for f, p in zip(self.frame, self.photo)
        )

    @property
    def count(self) -> int:
        rows, cols = (min(f, f - p + 1 + 2 * self.shift) for f, p in zip(self.frame, self.photo))
        return int(rows * cols)

    def signed(self, peak: tuple[int, int]) -> tuple[int, int]:
        """The peak as the offset of the photo's cut area in the frame (negative: before the frame's edge)."""
        return tuple(int(p - f if p > f - s + self.shift else p) for p, f, s in zip(peak, self.frame, self.photo))


SETTINGS_STAGE = 2


def stage_of(rotation: int) -> int:
    """The search stage of a crop at the sensor's scale (see the module's docstring)."""
    return 3 if rotation in (0, 180) else 4


def orientations(s: GeometrySettings) -> list[tuple[int, bool]]:
    return [(r, m) for r in s.rotations for m in ((False, True) if s.mirror else (False,))]


def _scaled(native: tuple[int, int], scale: float) -> tuple[int, int]:
    return int(round(native[0] * scale)), int(round(native[1] * scale))


def _fit(turned: tuple[int, int], frame: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The photo's size cut to fit ``frame`` and the cut before it (None when it exceeds it by more than TRIM)."""
    if turned[0] > frame[0] + TRIM or turned[1] > frame[1] + TRIM:
        return None
    photo = (min(turned[0], frame[0]), min(turned[1], frame[1]))
    return photo, ((turned[0] - photo[0]) // 2, (turned[1] - photo[1]) // 2)


def size_settings(
    turned: tuple[int, int], native: tuple[int, int], rotation: int, mirror: bool, s: GeometrySettings
) -> list[Hypothesis]:
    """The size-setting hypotheses of a photo (sensor orientation ``turned``) in a frame of ``native`` size."""
    if turned[0] > native[0] or turned[1] > native[1] or turned == native:
        return []
    sx, sy = turned[1] / native[1], turned[0] / native[0]
    step = 1.0 / max(turned)
    out: list[Hypothesis] = []
    if aspect_close(turned, native, s.aspect_tolerance):
        out.append(Hypothesis("resize", rotation, mirror, turned, turned, s.shift))
        if s.setting_shift > s.shift:
            out.append(Hypothesis("resize", rotation, mirror, turned, turned, s.setting_shift, SETTINGS_STAGE))
        steps = min(2 * s.setting_steps + 1, int(math.ceil(abs(math.log(sx / sy)) / step)) + 1)
        scales = np.linspace(min(sx, sy), max(sx, sy), max(steps, 2))
    else:
        seeds = [sx, sy]
        scales = np.array([sd * (1 + j * step) for sd in seeds for j in range(-s.setting_steps, s.setting_steps + 1)])
    seen = {turned}
    for sc in scales:
        frame = _scaled(native, float(sc))
        if frame in seen or sc >= 1.0 or min(frame) < s.min_side:
            continue
        fit = _fit(turned, frame)
        if fit is None:
            continue
        seen.add(frame)
        kind = "resize" if aspect_close(turned, native, s.aspect_tolerance) else "crop"
        shift = s.setting_shift if kind == "resize" else 0
        out.append(Hypothesis(kind, rotation, mirror, frame, fit[0], shift, SETTINGS_STAGE, fit[1]))
    return out


def hypotheses(photo: tuple[int, int], native: tuple[int, int], s: GeometrySettings) -> list[Hypothesis]:
    """Every alignment family the settings allow for a photo of size ``photo`` against a fingerprint of size
    ``native`` (the aligned, as-stored comparison excluded: it is scored first, as without a search)."""
    out: list[Hypothesis] = []
    if min(photo) < s.min_side:
        return out
    for rotation, mirror in orientations(s):
        turned = (photo[1], photo[0]) if rotation in (90, 270) else photo
        if turned == native:
            if (rotation, mirror) != (0, False):
                out.append(Hypothesis("whole", rotation, mirror, native, turned, 0))
            continue
        if s.crop and turned[0] <= native[0] and turned[1] <= native[1]:
            out.append(Hypothesis("crop", rotation, mirror, native, turned, 0, stage_of(rotation)))
        if s.resize:
            out += size_settings(turned, native, rotation, mirror, s)
    return out
