"""PCE verdicts: ranked cameras with a calibrated match probability, "unknown" below the PCE threshold.

Shared by the PRNU baseline (fingerprints estimated per run) and the fingerprint library (fingerprints enrolled
once), so both give the same verdict for the same fingerprints and photo.

* **Decision.** The camera whose fingerprint gives the highest PCE, if that PCE reaches ``prnu.pce_threshold``
  (60, the value used in forensic practice: for a non-matching camera PCE behaves like a chi-square with one
  degree of freedom, so 60 is a false-match probability of the order of 1e-14); otherwise **unknown**.
* **Calibrated score.** P(match | PCE) by Platt scaling (logistic regression on signed log(1+|PCE|)), fitted on
  validation images scored against fingerprints estimated from the training references only; its reliability
  (ECE over image x camera pairs) is written to the report. The final fingerprints use all references, which
  makes the PCE of matching cameras somewhat higher than in the fit: the probabilities are, if anything,
  conservative for matches.
* **Heat map.** NCC between the residual and the best camera's fingerprint in 64 px tiles: where the
  fingerprint shows (flat, bright, unsaturated regions carry it best).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sci_lightning.fingerprint.core import HEAT_BLOCK
from sci_lightning.fingerprint.quality import CLEAN_LEAK
from sci_lightning.fingerprint.significance import sci, tally
from sci_lightning.forensic import false_alarm
from sci_lightning.forensic.calibration import fit_platt, platt_probability
from sci_lightning.forensic.case_report import write_case_report
from sci_lightning.forensic.decisions import UNKNOWN, Skipped, Verdict, best_per_class, photo_verdicts
from sci_lightning.forensic.figures import draw_block_heatmap, plot_reliability
from sci_lightning.forensic.report import write_verdicts
from sci_lightning.forensic.rules import FalseAlarmRule, PlattRule, Rule
from sci_lightning.outputs import Metrics, write_json

log = logging.getLogger(__name__)


def calibrate(scores: Mapping[str, Any], alpha: float, target: float) -> Rule | None:
    """The verdicts' calibration from the case's validation scores
    (:func:`sci_lightning.fingerprint.impostors.validation_scores`): the false-alarm bar and P(match) slope when
    photos are searched, else Platt scaling of PCE (None without validation photos)."""
    if scores["searched"]:
        return calibrate_searched(scores, alpha, target)
    return calibrate_pce(scores)


def calibrate_pce(pairs: Mapping[str, Any]) -> PlattRule | None:
    """Platt scaling of PCE -> P(match), fitted on validation (photo, camera) pairs (``pce``, ``match``,
    ``n_images``) scored against training-only fingerprints on the questioned photos' crops."""
    if not pairs["n_images"]:
        log.warning("no validation images: PRNU scores are reported as raw PCE (no calibrated probability)")
        return None
    cal = fit_platt(np.array(pairs["pce"]), np.array(pairs["match"])) if pairs["pce"] else None
    return {**cal, "n_images": pairs["n_images"]} if cal else None


def calibrate_searched(runs: Mapping[str, Any], alpha: float, target: float) -> FalseAlarmRule:
    """The false-alarm bar and P(match) slope of ``geometry=auto|full`` verdicts, from the validation photos'
    genuine and impostor searches (:mod:`sci_lightning.forensic.false_alarm`)."""
    if not runs["n_images"]:
        log.warning("no validation images: the bar is prnu.false_alarm as set, P(match) with an unfitted slope")
        return false_alarm.uncalibrated(alpha, target)
    cal = false_alarm.calibrate(
        runs["genuine"],
        runs["impostor_pairs"],
        runs["impostor_searches"],
        alpha,
        target,
        runs["n_images"],
        tuple(runs.get("decoys", (0, 0))),
    )
    log.info(
        "false-alarm bar %s (prnu.false_alarm %g): %d of %d impostor searches named a camera there",
        sci(cal["log10_bar"]),
        alpha,
        cal["n_impostor_named"],
        cal["n_impostor_searches"],
    )
    return cal


def decide(
    paths: list[str],
    scored: list[dict],
    camera_class: dict[str, int],
    classes: list[str],
    cal: dict | None,
    threshold: float,
    truth: dict[str, str] | None,
) -> tuple[list[Verdict], list[Skipped]]:
    """Verdicts by the rule ``cal`` was made for: the false-alarm bar (geometry searched) or the PCE threshold."""
    if cal is not None and cal.get("method") == "false_alarm":
        return false_alarm.searched_verdicts(paths, scored, camera_class, classes, cal, truth)
    return pce_verdicts(paths, scored, camera_class, classes, cal, threshold, truth)


def p_match(pce_value: float, cal: dict[str, Any] | None) -> float | None:
    """P(match) of one PCE value under the Platt calibration ``cal`` (None without one)."""
    if cal is None:
        return None
    return float(platt_probability(np.array([pce_value]), cal["a"], cal["b"])[0])


def pce_verdicts(
    paths: list[str],
    scored: list[dict],
    camera_class: dict[str, int],
    classes: list[str],
    cal: dict | None,
    threshold: float,
    truth: dict[str, str] | None,
) -> tuple[list[Verdict], list[Skipped]]:
    """``(verdicts, skipped)`` from per-photo PCE scores (``scored[i]["scores"][camera] = (PCE, NCC)``); a class
    owning several cameras takes its best PCE; photos scored as ``{"reason": ...}`` are skipped and logged."""

    def verdict(path: str, s: dict[str, Any]) -> Verdict:
        best = best_per_class({cam: value for cam, (value, _) in s["scores"].items()}, camera_class, classes)
        best_pce = {c: value for c, (value, _) in best.items()}
        order = sorted(best_pce, key=lambda c: -best_pce[c])
        ranked = [(c, p_match(best_pce[c], cal) if cal else best_pce[c]) for c in order]
        top_pce = best_pce[order[0]] if order else -np.inf
        return {
            "path": path,
            "ranked": ranked,
            "decision": order[0] if top_pce >= threshold else UNKNOWN,
            "pce": best_pce,
            "heat_map": s.get("heat_map"),
            "heat_origin": s.get("heat_origin"),
            "heat_camera": s.get("heat_camera"),
            "detail": "PCE: " + ", ".join(f"{c} {best_pce[c]:.1f}" for c in order) + f" (threshold {threshold:g})",
        }

    return photo_verdicts(paths, scored, truth, verdict)


def write_pce_report(
    out_dir: Path,
    verdicts: list[Verdict],
    cal: Rule | None,
    threshold: float,
    max_heatmaps: int,
    decided_by: str,
    case: dict[str, Any] | None = None,
    fingerprints: dict[str, dict[str, Any]] | None = None,
) -> Metrics:
    """``verdicts.csv``, ``verdict_report.md``, heat maps and (calibrated) ``calibration.json`` /
    ``reliability.png``; ``decided_by`` opens the report (what produced the fingerprints and scores). With ``case``
    (``settings``, ``names``): the self-contained case report too (:mod:`.case_report`). ``fingerprints``: each
    camera's fingerprint quality (photo count, scene leak, warnings), listed in both reports."""
    searched = cal is not None and cal.get("method") == "false_alarm"
    n_decoys, decoys_named = tally(v["decoys"] for v in verdicts if "decoys" in v)
    if searched:
        write_json(out_dir / "calibration.json", cal)
        header = [decided_by, "", *false_alarm.describe(cal)]
        if n_decoys:
            header.append("- " + false_alarm.decoy_line("these photos' searches", n_decoys, decoys_named))
    elif cal:
        plot_reliability(
            [("validation (image x camera pairs)", cal["bins_after"])],
            out_dir / "reliability.png",
            "PRNU: P(match | PCE) reliability",
            xlabel="P(match) or 1 - P(match), the larger",
        )
        write_json(out_dir / "calibration.json", cal)
    if not searched:
        header = [
            decided_by,
            "",
            f"- A camera is named only if its PCE reaches {threshold:g}; otherwise the verdict is **unknown**.",
            f"- Scores: P(match | PCE), Platt scaling fitted on {cal['n_images']} validation images "
            f"({cal['n_pairs']} image x camera pairs, fingerprints from the training references only); "
            f"expected calibration error on those pairs {cal['ece_after']:.3f} (`reliability.png`)."
            if cal
            else "- **Scores are raw PCE values** (no validation images to calibrate them on).",
        ]

    header += fingerprint_lines(fingerprints or {}, verdicts)

    def heatmap(v: dict, png: Path) -> Path:
        if v.get("heat_map") is None or not np.size(v["heat_map"]):
            raise ValueError("image smaller than one heat-map tile")
        return draw_block_heatmap(
            v["path"],
            v["heat_map"],
            HEAT_BLOCK,
            v["heat_origin"],
            png,
            f"{Path(v['path']).name}: {v['decision']}",
            f"local NCC with {v['heat_camera']}'s fingerprint",
        )

    score_name = "P(match)" if cal else "PCE"
    metrics = write_verdicts(out_dir, verdicts, header, heatmap, max_heatmaps, score_name=score_name)
    if searched:
        metrics.update({"decoy_searches": n_decoys, "decoy_false_attributions": decoys_named})
    if case is not None:
        write_case_report(out_dir, verdicts, header, case["settings"], case.get("names"), score_name)
    return metrics


def fingerprint_lines(fingerprints: dict[str, dict[str, Any]], verdicts: list[dict]) -> list[str]:
    """The report's lines on the fingerprints the verdicts rest on (a large library: those ranked in the top 3 of
    some photo, or named): photo count, scene leak and what to be wary of."""
    shown = {v["decision"] for v in verdicts} | {c for v in verdicts for c, _ in v["ranked"][:3]}
    rows = [(c, q) for c, q in sorted(fingerprints.items()) if q and (len(fingerprints) <= 50 or c in shown)]
    if not rows:
        return []
    lines = [
        "- **Fingerprints** (reference photos; scene leak: the fingerprint's strength on the references' edges over "
        f'its strength on their flat areas, clean <= {CLEAN_LEAK}; README "Fingerprint quality"):'
    ]
    for c, q in rows:
        warn = "; ".join(q.get("warnings", []))
        plural = "s" if q["n_photos"] != 1 else ""
        lines.append(
            f"- Fingerprint of `{c}`: {q['n_photos']} photo{plural}, scene leak {q['scene_leak']:.2f} ({q['level']})"
            + (f". **Be wary**: {warn}." if warn else ".")
        )
    return lines


def pce_ranking(v: dict) -> str:
    """The report's one-line ranking of a PCE verdict."""
    return " > ".join(f"{c} (PCE {v['pce'][c]:.1f})" for c, _ in v["ranked"])
