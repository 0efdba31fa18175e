"""The ``prnu`` config group: the noise residual every fingerprint method shares, and PRNU's decision settings."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sci_lightning.errors import require
from sci_lightning.settings import schema_of, setting

DECISIONS = ("pce", "ncc")
RESIDUAL_KEYS = ("sigma", "levels", "wavelet", "grey_first")  # what a residual (and a library) is made with


@dataclass(frozen=True)
class PrnuSettings:
    """Lukas-Fridrich-Goljan residual and the PRNU decision (``method=prnu``; the residual serves the matcher and
    the library too)."""

    sigma: float = setting(5.0, "noise std (8-bit units) of the wavelet Wiener shrinkage")
    levels: int = setting(4, "wavelet decomposition levels of the denoiser")
    wavelet: str = setting("db4", "the denoiser's wavelet (PyWavelets name)")
    grey_first: bool = setting(
        True,
        "denoise the grey image once (2x faster, same accuracy); false: each colour channel, then grey (Lukas et "
        "al.; the residual of the numbers measured before 2026-11-25 16:00)",
    )
    decision: str = setting("pce", "pce (peak-to-correlation energy, robust to scale) | ncc (normalised correlation)")
    pce_threshold: float = setting(60.0, "geometry=none verdicts: below this best PCE the camera is 'unknown'")
    false_alarm: float = setting(
        1e-4,
        "geometry=auto|full verdicts: a camera is named only if the false-alarm probability of its peak, among "
        "every hypothesis searched, is at most this; the case's impostor searches can only lower it",
    )
    residual_cache: bool = setting(
        True, "keep every photo's noise residual under paths.cache_dir (float32, CRC-checked); false: recompute"
    )

    def __post_init__(self) -> None:
        require(
            self.decision.lower() in DECISIONS,
            "prnu.decision",
            f"is {self.decision!r}",
            f"use one of {', '.join(DECISIONS)}",
        )
        require(
            self.sigma > 0 and self.levels >= 1,
            "prnu.sigma / prnu.levels",
            "the wavelet denoiser needs sigma > 0 and at least one level",
            "use sigma=5.0 levels=4",
        )
        require(math.isfinite(self.pce_threshold), "prnu.pce_threshold", "must be a number", "use e.g. 60")
        fa = self.false_alarm
        require(0 < fa < 1, "prnu.false_alarm", f"must be in (0, 1) (got {fa})", "use e.g. 1e-4")

    @property
    def residual(self) -> dict[str, object]:
        """The residual's settings (what a residual store and a library are made with)."""
        return {k: getattr(self, k) for k in RESIDUAL_KEYS}


PrnuSettingsSchema = schema_of(PrnuSettings)  # what Hydra composes the group onto (sci_lightning.settings)
