"""The ``verdict`` config group: how verdicts are reported (README "Forensic protocol")."""

from __future__ import annotations

from dataclasses import dataclass

from sci_lightning.errors import require
from sci_lightning.settings import schema_of, setting


@dataclass(frozen=True)
class VerdictSettings:
    """The forensic protocol's reporting settings, shared by train, evaluate and the library."""

    target_false_attribution: float = setting(
        0.05,
        "open set: the 'unknown' threshold lets at most this share of validation photos through when scored as if "
        "their own camera were absent; searched verdicts: the error rate the case's impostor searches are held to",
    )
    max_heatmaps: int = setting(200, "heat-map PNGs per verdict report (every photo is listed regardless)")

    def __post_init__(self) -> None:
        t = self.target_false_attribution
        require(0 < t < 1, "verdict.target_false_attribution", f"must be in (0, 1) (got {t})", "use e.g. 0.05")
        require(self.max_heatmaps >= 0, "verdict.max_heatmaps", "must be 0 or more", "use e.g. 200")


VerdictSettingsSchema = schema_of(VerdictSettings)  # what Hydra composes the group onto (sci_lightning.settings)
