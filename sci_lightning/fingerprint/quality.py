"""How far a fingerprint can be trusted, said out loud when it is estimated: how many photos it comes from, and
how much of it is the references' own scene rather than the sensor. NumPy and SciPy only.

**Scene leak.** A fingerprint is the intensity-weighted mean of its references' noise residuals; the denoiser
leaves some of each photo's edges in its residual, and edges shared by the references (the same chart, the same
room) add up in the fingerprint as the PRNU does. PRNU does not care where the scene's edges are, so the ratio of
the fingerprint's RMS on the references' strongest edges (the top 10 % of the mean reference's gradient) to its
RMS on their flattest half is ~1 for a clean fingerprint and grows with the scene in it. Measured with this
project's residual (docs/RESULTS.md): vision-3's phones from 8 flat photos 1.01-1.04, from 3 natural photos
1.26-1.59; digicam-dev's chart references 1.08-2.21 from 3-6 photos, 4.64 and 5.36 from a single chart photo
(the two fingerprints whose crop searches reach PCE 500+ against other cameras' photos).

Levels (documented in the README): at most :data:`CLEAN_LEAK` clean; above :data:`STRONG_LEAK` strong. Fewer than
:data:`FEW_PHOTOS` references, or a leak above ``CLEAN_LEAK``, is warned about; verdicts then rest on the null
measured on the photo's decoys (:mod:`.null`), which is what keeps such fingerprints from naming impostors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter, sobel

FEW_PHOTOS = 10  # below this many references a fingerprint is called thin (tools ask for tens of flat photos)
CLEAN_LEAK = 1.15
STRONG_LEAK = 1.5
EDGE_QUANTILE, FLAT_QUANTILE = 0.9, 0.5


@dataclass(frozen=True)
class Quality:
    """A fingerprint's photo count and scene leak (see the module's docstring)."""

    n_photos: int
    scene_leak: float

    @property
    def level(self) -> str:
        if self.scene_leak <= CLEAN_LEAK:
            return "clean"
        return "strong scene residue" if self.scene_leak > STRONG_LEAK else "some scene residue"

    def warnings(self) -> list[str]:
        """What an examiner should know before relying on this fingerprint (empty: nothing)."""
        out = []
        if self.n_photos < FEW_PHOTOS:
            plural = "s" if self.n_photos != 1 else ""
            out.append(f"thin: {self.n_photos} reference photo{plural} ({FEW_PHOTOS} or more flat, bright ones help)")
        if self.scene_leak > CLEAN_LEAK:
            out.append(
                f"{self.level}: the references share a scene (leak {self.scene_leak:.2f} > {CLEAN_LEAK}); "
                "its verdicts rest on the null measured on each photo's decoys, and the crop + resize search "
                "is not run against it"
            )
        return out

    @property
    def scene_laden(self) -> bool:
        return self.scene_leak > CLEAN_LEAK

    def as_dict(self) -> dict[str, object]:
        leak = round(self.scene_leak, 3)
        return {**asdict(self), "scene_leak": leak, "level": self.level, "warnings": self.warnings()}

    @staticmethod
    def from_dict(d: dict | None) -> Quality | None:
        if not d:
            return None
        return Quality(int(d["n_photos"]), float(d["scene_leak"]))


def scene_leak(k: np.ndarray, mean_grey: np.ndarray) -> float:
    """The fingerprint's RMS on the references' strongest edges over its RMS on their flattest half."""
    smooth = gaussian_filter(np.asarray(mean_grey, np.float32), 2.0)
    edges = np.hypot(sobel(smooth, 0), sobel(smooth, 1))
    hi, lo = edges >= np.quantile(edges, EDGE_QUANTILE), edges <= np.quantile(edges, FLAT_QUANTILE)
    k = np.asarray(k, np.float64)
    flat = float(np.mean(k[lo] ** 2)) if lo.any() else 0.0
    return float(np.sqrt(np.mean(k[hi] ** 2) / flat)) if flat > 0 and hi.any() else 1.0


def fingerprint_quality(k: np.ndarray, greys: Iterable[np.ndarray]) -> Quality:
    """:class:`Quality` of ``k`` estimated from reference photos of intensities ``greys`` (same size as ``k``),
    their mean accumulated one photo at a time."""
    total, n = None, 0
    for g in greys:
        total = np.asarray(g, np.float64) if total is None else total + g
        n += 1
    return Quality(n, scene_leak(k, total / n) if n else 1.0)


def scene_laden(qualities: Mapping[str, Quality | Mapping[str, Any] | None]) -> frozenset[str]:
    """The cameras whose fingerprints hold their references' scene (leak above :data:`CLEAN_LEAK`, or not measured):
    the crop + resize search is not run against them. A search over the scale can find the scale at which a photo
    of the same scene lines up with the scene in the fingerprint, and a mirrored decoy, whose scene is mirrored,
    cannot show that null (measured: a virtual camera's chart photo named as another camera enrolled from three
    photos of that chart, log10 P_FA -140 at scale 0.81, its decoy at chance; tests/test_size_settings.py)."""
    out = set()
    for name, q in qualities.items():
        leak = q.scene_leak if isinstance(q, Quality) else (q or {}).get("scene_leak")
        if leak is None or float(leak) > CLEAN_LEAK:
            out.add(name)
    return frozenset(out)
