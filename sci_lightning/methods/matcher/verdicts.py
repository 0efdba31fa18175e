"""Matcher verdicts: candidate cameras ranked by calibrated P(match), "unknown" below the open-set threshold,
and a heat map of the per-crop P(match) with the best camera (where in the photo the fingerprint was found)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from sci_lightning.data.selection import Selection
from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.fingerprint.scoring import transform_found
from sci_lightning.forensic.decisions import Skipped, Verdict, best_per_class, decide, photo_verdicts, size_mismatch
from sci_lightning.forensic.false_alarm import describe_transform
from sci_lightning.forensic.figures import draw_block_heatmap, plot_reliability
from sci_lightning.forensic.report import folder_verdicts, ranked_predictions, write_verdicts
from sci_lightning.methods.matcher import calibration
from sci_lightning.methods.matcher.calibration import MatcherRule
from sci_lightning.methods.matcher.scoring import heat_map, score_photos
from sci_lightning.methods.wiring import questioned_of, run_log_of
from sci_lightning.outputs import Metrics

log = logging.getLogger(__name__)


@dataclass
class Case:
    """Everything a matcher run decides with: its images, network, fingerprints and calibration."""

    sel: Selection
    residuals: ResidualStore
    out_dir: Path
    window: tuple[int, int | None]  # (crop side, crops per photo)
    device: str = "cpu"
    tile: int | None = None  # the side the network was trained on: larger crops are scored tile by tile
    net: Any = None
    camera_class: dict[str, int] = field(default_factory=dict)
    fingerprints: dict[str, np.ndarray] = field(default_factory=dict)
    calibration: MatcherRule | None = None
    search: Any = None  # the PRNU geometry search (``geometry=``), run on each named photo's top camera


def _verdicts(
    case: Case, paths: list[str], scored: list[dict[str, Any]], truth: dict[str, str] | None
) -> tuple[list[Verdict], list[Skipped]]:
    classes, cal = case.sel.classes, case.calibration
    threshold = calibration.threshold_of(cal)

    def verdict(path: str, s: dict[str, Any]) -> Verdict:
        best = best_per_class(s["scores"], case.camera_class, classes)  # class -> (mean logit, camera)
        prob = {c: float(calibration.probability(np.array(v[0]), cal)) for c, v in best.items()}
        ranked = sorted(prob.items(), key=lambda kv: -kv[1])
        top_camera = best[ranked[0][0]][1]
        grid, origin = heat_map(s, top_camera, case.window[0])
        v = {
            "path": path,
            "ranked": ranked,
            "decision": decide(ranked, threshold),
            "heat_map": calibration.probability(grid, cal, "crop"),
            "heat_origin": origin,
            "heat_camera": top_camera,
            "detail": f"{len(s['crop_scores'])} crops of {case.window[0]} px; mean logit: "
            + ", ".join(f"{c} {best[c][0]:.2f}" for c, _ in ranked)
            + f" (threshold P(match) {threshold:.3g})",
        }
        note = size_mismatch(s.get("shape"), case.fingerprints[top_camera].shape)
        found = None
        if note is None and case.search is not None and case.search.active:
            found = transform_found(path, top_camera, case.fingerprints[top_camera], case.residuals, case.search)
            if found is not None:
                note = (
                    f"PRNU's geometry search finds this photo {describe_transform(found)} in {top_camera}'s frame "
                    f"(PCE {found['pce']:.0f}): the matcher compared it as stored, so its score says little. "
                    "Use method=prnu for it."
                )
        if note:
            v["detail"] += f"\n\n**{note}**"
            v["columns"] = {"size_matches_camera": "no" if found is None else "yes", "geometry_found": bool(found)}
        return v

    return photo_verdicts(paths, scored, truth, verdict)


def _write(case: Case, verdicts: list[Verdict], max_heatmaps: int) -> Metrics:
    cal, threshold = case.calibration, calibration.threshold_of(case.calibration)
    if cal:
        plot_reliability(
            [("validation (photo x camera pairs)", cal["photo"]["bins_after"])],
            case.out_dir / "reliability.png",
            "matcher: P(match) reliability",
            xlabel="P(match) or 1 - P(match), the larger",
        )
    header = [
        "Decided by the learned fingerprint matcher (Mandelli et al. 2020): a network scores the photo's noise "
        f"residual against each camera's fingerprint on {case.window[0]} px co-located crops; mean over crops.",
        "",
        f"- A camera is named only if its P(match) reaches {threshold:.3g}; otherwise the verdict is **unknown**.",
        f"- P(match): Platt scaling fitted on {cal['n_images']} validation photos ({cal['photo']['n_pairs']} "
        f"photo x camera pairs, fingerprints from the training references only); ECE {cal['photo']['ece_after']:.3f}"
        f"; threshold: at most {cal['target_false_attribution']:g} of validation photos reach it with another "
        "camera (`reliability.png`)."
        if cal
        else "- **Uncalibrated**: no validation photos; P(match) is the network's own sigmoid, threshold 0.5.",
    ]
    crop = case.window[0]

    def draw(v: dict, png: Path) -> Path:
        return draw_block_heatmap(
            v["path"],
            v["heat_map"],
            crop,
            v["heat_origin"],
            png,
            f"{Path(v['path']).name}: {v['decision']}",
            f"P(match) with {v['heat_camera']} per {crop} px crop",
        )

    return write_verdicts(case.out_dir, verdicts, header, draw, max_heatmaps, score_name="P(match)")


def _decide_and_write(
    cfg: DictConfig, case: Case, paths: list[str], scored: list[dict], truth: dict[str, str] | None
) -> tuple[list[Verdict], list[Skipped], Metrics]:
    """Score the paths not scored yet (``scored`` holds the first ones), decide, write the report."""
    todo = paths[len(scored) :]
    more = score_photos(
        case.net,
        todo,
        case.fingerprints,
        case.residuals,
        case.window,
        os.cpu_count() or 1,
        "Matcher verdicts",
        case.device,
        case.tile,
    )
    verdicts, skipped = _verdicts(case, paths, scored + more, truth)
    metrics = {
        "matcher/threshold": calibration.threshold_of(case.calibration),
        "calibrated": case.calibration is not None,
        **_write(case, verdicts, int(cfg.verdict.max_heatmaps)),
    }
    return verdicts, skipped, metrics


def fixed_split_verdicts(cfg: DictConfig, case: Case, test_scored: list[dict]) -> Metrics:
    """Verdicts on a fixed split's questioned photos (cameras without references included)."""
    questioned, truth = case.sel.questioned()
    return _decide_and_write(cfg, case, [str(r.path) for r in questioned], test_scored, truth)[2]


def questioned_folder_verdicts(cfg: DictConfig, case: Case) -> Metrics:
    """``evaluate.py method=matcher images=DIR``: verdicts on unlabelled photos against the references."""
    classes = case.sel.classes
    return folder_verdicts(
        questioned_of(cfg),
        cfg.task.name,
        "matcher",
        classes,
        case.out_dir,
        lambda paths: _decide_and_write(cfg, case, paths, [], None),
        ranked_predictions(
            classes,
            "p_match",
            lambda v, c: dict(v["ranked"]).get(c, float("nan")),
            lambda v: " > ".join(f"{c} ({s:.3f})" for c, s in v["ranked"]),
        ),
        run_log_of(cfg, "matcher"),
    )
