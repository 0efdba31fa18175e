"""Verdicts that hold their error rate whatever was searched (``geometry=auto|full``).

A photo's best peak is judged by its **false-alarm probability** among the hypotheses searched for it
(positions x turns x sizes, by stage, over the cameras compared;
:func:`~sci_lightning.fingerprint.significance.judged`): the more that was searched, the higher the PCE needed.

* **Bar.** A camera is named when that probability is at most ``prnu.false_alarm``, lowered where the case's own
  **impostor searches** need it: validation photos (as stored, turned, cropped, halved), searched exactly as a
  questioned photo is but without their own camera, so whatever the search names is a false attribution. The bar
  lets at most ``verdict.target_false_attribution`` of them through (their measured rate is reported).
* **P(match).** ``1 / (1 + 10^(-a * (bar - log10 P_FA)))``: 0.5 exactly at the bar, so a named camera never has
  P(match) below 0.5 and an unnamed one never above; the one slope ``a`` is fitted (maximum likelihood) on the
  validation photos' genuine and impostor pairs. Without validation photos ``a = 1`` (one decade of P_FA per
  factor 10 in the odds) and the report says so.

Pure NumPy / SciPy: fed scores, it computes no residual.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.stats import beta

from sci_lightning.fingerprint.significance import photo_log10_pfa, sci, tally
from sci_lightning.forensic.decisions import UNKNOWN, Skipped, Verdict, best_per_class, photo_verdicts
from sci_lightning.forensic.rules import FalseAlarmRule

DEFAULT_SLOPE = 1.0


def effective_bar(log10_alpha: float, impostors: Sequence[float], target: float) -> float:
    """``log10`` of the decision bar: ``log10_alpha``, or lower so that at most ``target`` of the ``impostors``
    (their best ``log10 P_FA`` with their own camera absent) reach it."""
    values = np.sort(np.asarray(impostors, dtype=np.float64))
    if not len(values):
        return log10_alpha
    allowed = int(math.floor(target * len(values)))
    if allowed >= len(values):
        return log10_alpha
    return min(log10_alpha, float(np.nextafter(values[allowed], -np.inf)))


def p_match(log10_pfa: float, bar: float, slope: float) -> float:
    """P(match) of a peak whose false-alarm probability is ``10^log10_pfa``: 0.5 at the bar."""
    z = slope * (bar - log10_pfa) * math.log(10.0)
    return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


def fit_slope(log10_pfa: Sequence[float], is_match: Sequence[bool], bar: float) -> float:
    """The slope ``a`` of :func:`p_match` that is most probable given labelled pairs (bounded 0.01..20).

    A prior ``ln a ~ N(0, 1)`` keeps it finite: a handful of validation photos usually separates genuine from
    impostor pairs perfectly, where the maximum-likelihood slope is infinite (every score 0 or 1)."""
    x = np.asarray(log10_pfa, dtype=np.float64)
    y = np.asarray(is_match, dtype=np.float64)
    if len(set(y.tolist())) < 2:
        return DEFAULT_SLOPE
    d = np.clip(bar - x, -300, 300) * math.log(10.0)

    def loss(a: float) -> float:
        z = a * d
        return float(np.sum(np.logaddexp(0, -z) * y + np.logaddexp(0, z) * (1 - y)) + 0.5 * math.log(a) ** 2)

    return float(minimize_scalar(loss, bounds=(0.01, 20.0), method="bounded").x)


def calibrate(
    genuine: Sequence[tuple[str, float]],
    impostor_pairs: Sequence[tuple[str, float]],
    impostor_searches: Sequence[tuple[str, float]],
    alpha: float,
    target: float,
    n_images: int,
    decoys: tuple[int, int] = (0, 0),
) -> FalseAlarmRule:
    """The bar and slope from validation searches, each ``(transform, log10 P_FA)``: ``genuine`` (a photo's own
    camera), ``impostor_pairs`` (every other camera, for the slope) and ``impostor_searches`` (the best camera of a
    search without the photo's own: the false attributions the bar must hold down); ``decoys``: the decoy searches
    those searches made and how many the rule named (:func:`~sci_lightning.fingerprint.search.decoy_checks`)."""
    log_alpha = math.log10(alpha)
    bar = effective_bar(log_alpha, [v for _, v in impostor_searches], target)
    values = [v for _, v in genuine] + [v for _, v in impostor_pairs]
    labels = [True] * len(genuine) + [False] * len(impostor_pairs)
    slope = fit_slope(values, labels, bar) if values else DEFAULT_SLOPE
    per: dict[str, dict[str, int]] = {}
    for kind, rows in (("genuine", genuine), ("impostor", impostor_searches)):
        for name, v in rows:
            cell = per.setdefault(name, {"genuine": 0, "genuine_named": 0, "impostor": 0, "impostor_named": 0})
            cell[kind] += 1
            cell[f"{kind}_named"] += int(v <= bar)
    n_imp = len(impostor_searches)
    named = sum(v <= bar for _, v in impostor_searches)
    return {
        "method": "false_alarm",
        "false_alarm": alpha,
        "log10_bar": bar,
        "lowered_by_impostors": bar < log_alpha,
        "slope": slope,
        "fitted": bool(genuine) and bool(impostor_pairs),
        "target_false_attribution": target,
        "n_images": n_images,
        "n_impostor_searches": n_imp,
        "n_impostor_named": int(named),
        "impostor_false_attribution": named / n_imp if n_imp else None,
        "n_decoy_searches": int(decoys[0]),
        "n_decoy_named": int(decoys[1]),
        "n_genuine": len(genuine),
        "n_genuine_named": int(sum(v <= bar for _, v in genuine)),
        "by_transform": per,
    }


def uncalibrated(alpha: float, target: float) -> FalseAlarmRule:
    """The bar and slope where no validation photos exist: ``prnu.false_alarm`` as it is, slope 1."""
    return calibrate([], [], [], alpha, target, 0) | {"fitted": False}


def describe(cal: FalseAlarmRule) -> list[str]:
    """The report's lines on how verdicts were decided."""
    bar = sci(cal["log10_bar"])
    lines = [
        f"- A camera is named only if the false-alarm probability of its peak (among the positions, turns and "
        f"sizes searched for its camera by the stage it was found in, times the search's stages, over every "
        f"camera compared) is at most **{bar}** "
        f"(prnu.false_alarm = {cal['false_alarm']:g}"
        + ("; lowered by the case's impostor searches)." if cal["lowered_by_impostors"] else ").")
    ]
    if cal["n_impostor_searches"]:
        lines.append(
            f"- Impostor searches on the case's own validation photos (as stored and transformed, searched without "
            f"their own camera): {cal['n_impostor_named']} of {cal['n_impostor_searches']} named a camera at that "
            f"bar (rate {cal['impostor_false_attribution']:.3f}; target {cal['target_false_attribution']:g}); "
            f"{cal['n_genuine_named']} of {cal['n_genuine']} genuine searches cleared it."
        )
    if cal.get("n_decoy_searches"):
        lines.append("- " + decoy_line("the validation searches", cal["n_decoy_searches"], cal["n_decoy_named"]))
    lines.append(
        f"- P(match) = 1 / (1 + 10^(-{cal['slope']:.3g} x (log10 bar - log10 P_FA))): 0.5 exactly at the bar, "
        + (
            f"slope fitted on {cal['n_images']} validation photos."
            if cal["fitted"]
            else "**slope not fitted** (no validation photos with genuine and impostor pairs): 1 by default."
        )
    )
    return lines


def upper_bound(named: int, n: int, confidence: float = 0.95) -> float:
    """The one-sided Clopper-Pearson upper bound of a rate seen ``named`` times in ``n`` trials."""
    return float(beta.ppf(confidence, named + 1, n - named)) if named < n else 1.0


def decoy_line(where: str, n: int, named: int) -> str:
    """The report's line on decoy searches: each nameable camera's mirrored / flipped fingerprint searched the
    same way and judged as a camera against the null measured without it."""
    return (
        f"Decoy searches in {where} (a nameable camera's fingerprint mirrored or flipped, searched the same way and "
        f"judged as if it were a camera, against the null measured without it): {named} of {n} named at the bar "
        f"(rate {named / n:.3f}, 95 % upper bound {upper_bound(named, n):.3f})."
    )


def searched_verdicts(
    paths: list[str],
    scored: list[dict],
    camera_class: dict[str, int],
    classes: list[str],
    cal: FalseAlarmRule,
    truth: dict[str, str] | None,
) -> tuple[list[Verdict], list[Skipped]]:
    """``(verdicts, skipped)`` from geometry-searched scores (``scored[i]``: ``scores``, ``geometry``,
    ``hypotheses``, ``family``): classes ranked by the false-alarm probability of their best camera's peak (among
    the hypotheses it is the best of, combined over the cameras compared:
    :func:`~sci_lightning.fingerprint.significance.photo_log10_pfa`); the top one named if it clears the bar."""
    bar, slope = cal["log10_bar"], cal["slope"]

    def verdict(path: str, s: dict[str, Any]) -> Verdict:
        n = int(s.get("hypotheses", 0))
        best = best_per_class(photo_log10_pfa(s), camera_class, classes, lower=True)  # class -> (log10 P_FA, cam)
        order = sorted(best, key=lambda c: best[c][0])
        if not order:
            return unplaceable(path, s)
        top_lp, top_cam = best[order[0]]
        g = s["geometry"][top_cam]
        checks = [g.get("decoy_checks", (0, 0)) for g in s["geometry"].values()]
        return {
            "path": path,
            "decoys": tally(checks),
            "ranked": [(c, p_match(best[c][0], bar, slope)) for c in order],
            "decision": order[0] if top_lp <= bar else UNKNOWN,
            "pce": {c: s["scores"][best[c][1]][0] for c in order},
            "columns": {
                "pce": f"{s['scores'][top_cam][0]:.1f}",
                "hypotheses": g["hypotheses"],
                "hypotheses_searched": n,
                "log10_p_false_alarm": f"{top_lp:.2f}",
                **{k: g[k] for k in ("transform", "rotation", "mirror", "scale", "offset_y", "offset_x")},
            },
            "heat_map": s.get("heat_map"),
            "heat_origin": s.get("heat_origin"),
            "heat_camera": s.get("heat_camera"),
            "detail": (
                f"Best peak: {top_cam}, PCE {s['scores'][top_cam][0]:.1f}, found as {describe_transform(g)}; "
                f"false-alarm probability {sci(top_lp)} (the best of {g['hypotheses']:,} hypotheses for this "
                f"camera, {null_words(g)}, {s.get('stages', 1)} search stages, {s.get('family', '?')} cameras "
                f"compared; {n:,} hypotheses searched in all; bar {sci(bar)})."
            ),
        }

    return photo_verdicts(paths, scored, truth, verdict)


def null_words(g: dict[str, Any]) -> str:
    """How the null of a camera's peak was set, in words (the report says it for every photo)."""
    if g.get("null_sources"):
        return f"judged against the null measured on {g['null_sources']}"
    return "judged against the Gaussian null (its peak did not reach the bar, so no decoys were searched)"


def unplaceable(path: str, s: dict[str, Any]) -> Verdict:
    """The verdict of a photo no camera could be compared with (larger than every frame, in every orientation
    searched, or smaller than any search allows): unknown, and why."""
    shape = s.get("shape")
    size = f"{shape[1]}x{shape[0]} px " if shape else ""
    return {
        "path": path,
        "decoys": (0, 0),
        "ranked": [],
        "decision": UNKNOWN,
        "pce": {},
        "columns": {"pce": "", "hypotheses": 0, "hypotheses_searched": 0, "log10_p_false_alarm": ""},
        "heat_map": None,
        "heat_origin": None,
        "heat_camera": None,
        "detail": (
            f"No camera was compared: the photo ({size.strip() or 'its size'}) fits no enrolled camera's frame in any "
            "orientation searched (a camera's photos are never larger than its sensor), so none of them can have "
            "taken it as it is."
        ),
    }


def describe_transform(g: dict[str, Any]) -> str:
    """``turned 90°, cropped at (y, x)`` etc.: the transform a search found, in words."""
    parts = {"aligned": ["as stored"], "whole": ["the whole frame"], "crop": ["a crop"], "resize": ["resized"]}[
        g["transform"]
    ]
    if g["rotation"]:
        parts.append(f"turned {g['rotation']}°")
    if g["mirror"]:
        parts.append("mirrored")
    if g["transform"] == "resize" or g["scale"] != 1:
        parts.append(f"scale {g['scale']:.4g}")
    if g["transform"] in ("crop", "resize") and (g["offset_y"] or g["offset_x"] or g["transform"] == "crop"):
        parts.append(f"offset ({g['offset_y']}, {g['offset_x']}) px in the sensor")
    return ", ".join(parts)
