"""What a library search and a reverse search hand back: typed results, built once from the scores and the
decisions, then written to ``search.csv`` / ``reverse.csv`` (:mod:`.reports`) and shown by the desk from the same
objects (the desk never reads the files back).

``cells()`` is each result's one text form (the CSV's cells, the desk's table): numbers rounded as they mean,
empty where there is nothing to say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sci_lightning.fingerprint.significance import photo_log10_pfa
from sci_lightning.forensic import false_alarm
from sci_lightning.forensic.pce import p_match as platt_p_match

GEOMETRY_COLUMNS = ("transform", "rotation", "mirror", "scale", "offset_y", "offset_x")


def _num(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _peak_cells(
    p_match: float | None, lp: float | None, hypotheses: int | None, geometry: dict[str, Any], z: float | None
) -> dict[str, str]:
    """The cells a search row and a reverse-search row share: how the peak was judged and where it was found."""
    return {
        "p_match": _num(p_match, ".4g"),
        "log10_p_false_alarm": _num(lp, ".2f"),
        "hypotheses": "" if hypotheses is None else str(hypotheses),
        **{k: str(geometry.get(k, "")) for k in GEOMETRY_COLUMNS},
        "index_z": _num(z, ".2f"),
    }


def p_match_of(pce: float, lp: float | None, cal: dict[str, Any] | None) -> float | None:
    """P(match) of one peak under the library's rule: from its false-alarm probability against the bar, or the
    Platt fit of PCE (None where the library has neither)."""
    if cal is not None and cal.get("method") == "false_alarm" and lp is not None:
        return false_alarm.p_match(lp, cal["log10_bar"], cal["slope"])
    return platt_p_match(pce, cal)


@dataclass(frozen=True)
class Candidate:
    """One ranked camera of a searched photo (a row of ``search.csv``)."""

    rank: int
    camera: str
    device: str
    pce: float
    ncc: float
    p_match: float | None
    log10_p_false_alarm: float | None  # among the photo's hypotheses (geometry search only)
    hypotheses: int | None
    geometry: dict[str, Any] = field(default_factory=dict)  # GEOMETRY_COLUMNS of the transform found
    index_z: float | None = None

    def cells(self) -> dict[str, str]:
        return {
            "rank": str(self.rank),
            "camera": self.camera,
            "device": self.device,
            "pce": f"{self.pce:.4g}",
            "ncc": f"{self.ncc:.4g}",
            **_peak_cells(self.p_match, self.log10_p_false_alarm, self.hypotheses, self.geometry, self.index_z),
        }


@dataclass(frozen=True)
class PhotoVerdict:
    """One searched photo: its verdict, its best cameras (best first) and its heat map, if one was drawn."""

    path: str
    decision: str
    candidates: tuple[Candidate, ...]
    heat_png: Path | None = None


@dataclass(frozen=True)
class SearchOutcome:
    """A library search: its ``metrics.json`` and every decided photo (skipped ones are in the metrics)."""

    metrics: dict[str, Any]
    photos: tuple[PhotoVerdict, ...]


def candidates_of(
    scored: dict[str, Any], devices: dict[str, str], cal: dict[str, Any] | None, top_k: int
) -> tuple[Candidate, ...]:
    """A photo's best ``top_k`` cameras from its scores: by false-alarm probability where the geometry search ran,
    then by PCE."""
    lps = photo_log10_pfa(scored) if "geometry" in scored else {}
    ranked = sorted(scored.get("scores", {}).items(), key=lambda kv: (lps.get(kv[0], 0.0), -kv[1][0]))[:top_k]
    n = scored.get("hypotheses")
    return tuple(
        Candidate(
            rank,
            cam,
            devices.get(cam, ""),
            float(pce_value),
            float(ncc_value),
            p_match_of(pce_value, lps.get(cam), cal),
            None if cal is None or cal.get("method") != "false_alarm" or cam not in lps else float(lps[cam]),
            None if n in (None, "") else int(n),
            dict(scored.get("geometry", {}).get(cam, {})),
            scored["z"].get(cam),
        )
        for rank, (cam, (pce_value, ncc_value)) in enumerate(ranked, 1)
    )


@dataclass(frozen=True)
class ReverseRow:
    """One photo of a reverse search (a row of ``reverse.csv``): verified by PCE or not, and decided."""

    path: str
    decision: str  # match | no match | not verified
    pce: float | None
    p_match: float | None
    log10_p_false_alarm: float | None
    hypotheses: int | None
    geometry: dict[str, Any]
    index_z: float | None

    def cells(self) -> dict[str, str]:
        return {
            "path": self.path,
            "decision": self.decision,
            "pce": _num(self.pce, ".4g"),
            **_peak_cells(self.p_match, self.log10_p_false_alarm, self.hypotheses, self.geometry, self.index_z),
        }


def reverse_row(r: dict[str, Any], cal: dict[str, Any] | None) -> ReverseRow:
    """The typed row of one decided reverse-search photo (:func:`~.search.reverse_decisions`)."""
    pce_value, lp = r["pce"], r.get("log10_p_false_alarm")
    hyp = r.get("hypotheses")
    return ReverseRow(
        r["path"],
        r["decision"],
        pce_value,
        None if pce_value is None else p_match_of(pce_value, lp, cal),
        lp,
        None if hyp in (None, "") else int(hyp),
        {k: r[k] for k in GEOMETRY_COLUMNS if k in r},
        r["z"],
    )


@dataclass(frozen=True)
class ReverseOutcome:
    """A reverse search: its ``metrics.json`` and every photo's row, best PCE first."""

    metrics: dict[str, Any]
    rows: tuple[ReverseRow, ...]
