"""PRNU verdicts: ranked cameras with a calibrated match probability, "unknown" below the PCE threshold.

* **Decision.** The camera whose fingerprint gives the highest PCE, if that PCE reaches ``prnu.pce_threshold``
  (60, the value used in forensic practice: for a non-matching camera PCE behaves like a chi-square with one
  degree of freedom, so 60 is a false-match probability of the order of 1e-14); otherwise **unknown**.
* **Calibrated score.** P(match | PCE) by Platt scaling (logistic regression on signed log(1+|PCE|)), fitted on
  the validation images scored against fingerprints estimated from the training references only; its
  reliability (ECE over image x camera pairs) is written to the report. The final fingerprints use all
  references, which makes the PCE of matching cameras somewhat higher than in the fit: the probabilities are, if
  anything, conservative for matches.
* **Heat map.** NCC between the residual and the best camera's fingerprint in 64 px tiles: where the
  fingerprint shows (flat, bright, unsaturated regions carry it best).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from sci_lightning.data.selection import questioned_files
from sci_lightning.fingerprint.references import fingerprints_of, require_scored
from sci_lightning.forensic.calibration import fit_platt, platt_probability
from sci_lightning.forensic.decisions import UNKNOWN
from sci_lightning.forensic.figures import draw_block_heatmap, plot_reliability
from sci_lightning.forensic.report import REPORT_NAME, write_folder_outputs, write_verdicts
from sci_lightning.methods.prnu.scoring import HEAT_BLOCK, References, score_images
from sci_lightning.outputs import write_json
from sci_lightning.tracking import log_run

log = logging.getLogger(__name__)


def calibrate_pce(refs: References, workers: int) -> dict[str, Any] | None:
    """Platt scaling of PCE -> P(match), fitted on validation images vs training-only fingerprints (scored on the
    same crops, ``eval.crop``, as the questioned photos)."""
    sel, residuals = refs.sel, refs.residuals
    val = sel.split_records("val")
    if not val:
        log.warning("no validation images: PRNU scores are reported as raw PCE (no calibrated probability)")
        return None
    fps = fingerprints_of(sel.split_records("train"), residuals, workers, "PRNU fingerprints (calibration)")
    paths = [str(r.path) for r in val]
    scored = score_images(paths, fps, residuals, workers, "PRNU validation residuals", window=refs.window)
    require_scored(scored, paths)
    pairs = [(p, cam == r.camera) for r, s in zip(val, scored) for cam, (p, _) in s.get("scores", {}).items()]
    cal = fit_platt(np.array([p for p, _ in pairs]), np.array([m for _, m in pairs])) if pairs else None
    return {**cal, "n_images": len(val)} if cal else None


def p_match(pce_value: float, cal: dict[str, Any] | None) -> float | None:
    if cal is None:
        return None
    return float(platt_probability(np.array([pce_value]), cal["a"], cal["b"])[0])


def _verdicts(
    paths: list[str],
    scored: list[dict],
    camera_class: dict[str, int],
    classes: list[str],
    cal: dict | None,
    threshold: float,
    truth: dict[str, str] | None,
) -> tuple[list[dict], list[dict]]:
    verdicts, skipped = [], []
    for path, s in zip(paths, scored):
        if "reason" in s:
            log.warning("skipped %s: %s", path, s["reason"])
            skipped.append({"path": path, "reason": s["reason"]})
            continue
        best_pce: dict[str, float] = {}
        for cam, (value, _) in s["scores"].items():
            cls = classes[camera_class[cam]]
            best_pce[cls] = max(best_pce.get(cls, -np.inf), value)
        order = sorted(best_pce, key=lambda c: -best_pce[c])
        ranked = [(c, p_match(best_pce[c], cal) if cal else best_pce[c]) for c in order]
        top_pce = best_pce[order[0]]
        v = {
            "path": path,
            "ranked": ranked,
            "decision": order[0] if top_pce >= threshold else UNKNOWN,
            "pce": best_pce,
            "heat_map": s.get("heat_map"),
            "heat_origin": s.get("heat_origin"),
            "heat_camera": s.get("heat_camera"),
            "detail": "PCE: " + ", ".join(f"{c} {best_pce[c]:.1f}" for c in order) + f" (threshold {threshold:g})",
        }
        if truth is not None:
            v["true"] = truth.get(path, UNKNOWN)
        verdicts.append(v)
    return verdicts, skipped


def _write(
    out_dir: Path, verdicts: list[dict], cal: dict | None, threshold: float, max_heatmaps: int
) -> dict[str, Any]:
    if cal:
        plot_reliability(
            [("validation (image x camera pairs)", cal["bins_after"])],
            out_dir / "reliability.png",
            "PRNU: P(match | PCE) reliability",
            xlabel="P(match) or 1 - P(match), the larger",
        )
        write_json(out_dir / "calibration.json", cal)
    header = [
        "Decided by the PRNU baseline: wavelet noise residual against per-camera fingerprints estimated "
        "from the reference photos; best PCE wins.",
        "",
        f"- A camera is named only if its PCE reaches {threshold:g}; otherwise the verdict is **unknown**.",
    ]
    header.append(
        f"- Scores: P(match | PCE), Platt scaling fitted on {cal['n_images']} validation images "
        f"({cal['n_pairs']} image x camera pairs, fingerprints from the training references only); "
        f"expected calibration error on those pairs {cal['ece_after']:.3f} (`reliability.png`)."
        if cal
        else "- **Scores are raw PCE values** (no validation images to calibrate them on)."
    )

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

    return write_verdicts(out_dir, verdicts, header, heatmap, max_heatmaps, score_name="P(match)" if cal else "PCE")


def _decide_and_write(
    cfg: DictConfig, refs: References, paths: list[str], scored: list[dict], truth: dict[str, str] | None
) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """Score what is not scored yet, calibrate, decide and write the report: ``(verdicts, skipped, metrics)``
    (threshold, calibrated or not, open-set rates). ``scored`` holds the first ``len(scored)`` paths' scores."""
    workers = os.cpu_count() or 1
    threshold = float(cfg.prnu.pce_threshold)
    cal = calibrate_pce(refs, workers)
    todo = paths[len(scored) :]
    more = score_images(todo, refs.fingerprints, refs.residuals, workers, "PRNU verdicts", HEAT_BLOCK, refs.window)
    require_scored(more, todo)
    verdicts, skipped = _verdicts(paths, scored + more, refs.camera_class, refs.sel.classes, cal, threshold, truth)
    max_heatmaps = int(cfg.verdict.max_heatmaps)
    metrics = {
        "prnu/pce_threshold": threshold,
        "calibrated": cal is not None,
        **_write(refs.out_dir, verdicts, cal, threshold, max_heatmaps),
    }
    return verdicts, skipped, metrics


def fixed_split_verdicts(cfg: DictConfig, refs: References, test_scored: list[dict]) -> dict[str, Any]:
    """Verdicts on a fixed split's questioned images, those of cameras without references included.

    ``test_scored``: the known questioned (test) images' scores from the test run, heat maps included.
    """
    questioned, truth = refs.sel.questioned()
    return _decide_and_write(cfg, refs, [str(r.path) for r in questioned], test_scored, truth)[2]


def questioned_folder_verdicts(cfg: DictConfig, refs: References) -> dict[str, Any]:
    """``evaluate.py method=prnu images=DIR``: verdicts on unlabelled photos against the references."""
    sel, out_dir = refs.sel, refs.out_dir
    paths = [str(p) for p in questioned_files(cfg.images, cfg.image_extensions)]
    verdicts, skipped, decided = _decide_and_write(cfg, refs, paths, [], None)
    metrics = write_folder_outputs(
        out_dir,
        {"method": "prnu", "task": cfg.task.name, **{k: decided[k] for k in ("prnu/pce_threshold", "calibrated")}},
        sel.classes,
        verdicts,
        skipped,
        "pce",
        lambda v, c: v["pce"].get(c, float("nan")),
        lambda v: " > ".join(f"{c} (PCE {v['pce'][c]:.1f})" for c, _ in v["ranked"]),
    )
    log_run(cfg, "prnu", metrics, {"reliability": out_dir / "reliability.png"})
    log.info(
        "PRNU verdicts for %d questioned images (%d unknown) -> %s",
        len(verdicts),
        metrics["n_unknown_verdicts"],
        out_dir / REPORT_NAME,
    )
    return metrics
