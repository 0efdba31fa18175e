"""The rules verdicts are decided by, as stored with a case, a library or weights (``calibration.json``, the
catalogue's meta, a checkpoint): typed here, in a module that imports nothing heavy, so the library's store and the
methods can name them."""

from __future__ import annotations

from typing import TypedDict


class PlattRule(TypedDict, total=False):
    """P(match | score) by Platt scaling (:func:`~sci_lightning.forensic.calibration.fit_platt`)."""

    method: str  # "platt"
    a: float  # P(match) = 1 / (1 + exp(-(a * signed_log(score) + b)))
    b: float
    n_pairs: int  # the labelled pairs it was fitted on
    n_images: int  # ... from this many validation photos, where the caller says
    ece_after: float  # its expected calibration error on those pairs
    bins_after: list[dict[str, float]]  # its reliability bins


class FalseAlarmRule(TypedDict, total=False):
    """The rule of geometry-searched verdicts (:func:`~sci_lightning.forensic.false_alarm.calibrate`): a camera
    is named only when its peak's false-alarm probability is at most the bar; P(match) is a logistic of the
    distance to the bar."""

    method: str  # "false_alarm"
    false_alarm: float  # prnu.false_alarm as set
    log10_bar: float  # the bar, log10 (lowered by the case's impostor searches where they need it)
    lowered_by_impostors: bool
    slope: float  # P(match) = 1 / (1 + 10^(-slope x (log10 bar - log10 P_FA)))
    fitted: bool  # slope fitted on validation photos (else 1)
    target_false_attribution: float
    n_images: int  # validation photos
    n_impostor_searches: int  # searches without the photo's own camera
    n_impostor_named: int  # ... that named a camera at the bar
    impostor_false_attribution: float | None  # their rate
    n_decoy_searches: int
    n_decoy_named: int
    n_genuine: int  # searches of a photo's own camera
    n_genuine_named: int  # ... that cleared the bar
    by_transform: dict[str, dict[str, int]]  # the same counts per transform of the validation photos


Rule = PlattRule | FalseAlarmRule
"""A PCE verdict's rule: Platt scaling of PCE (photos compared as stored) or the false-alarm bar (searched)."""
