"""PRNU verdicts (:mod:`sci_lightning.forensic.pce`: best PCE wins if it reaches ``prnu.pce_threshold``, P(match)
by Platt scaling, local-NCC heat maps) on a fixed split's questioned photos or a folder of unlabelled ones."""

from __future__ import annotations

import logging
import os
from typing import Any

from omegaconf import DictConfig

from sci_lightning.data.selection import questioned_files
from sci_lightning.fingerprint.references import require_scored
from sci_lightning.fingerprint.scoring import HEAT_BLOCK, score_images
from sci_lightning.forensic.pce import calibrate_pce, pce_ranking, pce_verdicts, write_pce_report
from sci_lightning.forensic.report import REPORT_NAME, write_folder_outputs
from sci_lightning.methods.prnu.scoring import References
from sci_lightning.tracking import log_run

log = logging.getLogger(__name__)

DECIDED_BY = (
    "Decided by the PRNU baseline: wavelet noise residual against per-camera fingerprints estimated "
    "from the reference photos; best PCE wins."
)


def _decide_and_write(
    cfg: DictConfig, refs: References, paths: list[str], scored: list[dict], truth: dict[str, str] | None
) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """Score what is not scored yet, calibrate, decide and write the report: ``(verdicts, skipped, metrics)``
    (threshold, calibrated or not, open-set rates). ``scored`` holds the first ``len(scored)`` paths' scores."""
    workers = os.cpu_count() or 1
    threshold = float(cfg.prnu.pce_threshold)
    cal = calibrate_pce(refs.sel, refs.residuals, refs.window, workers)
    todo = paths[len(scored) :]
    more = score_images(todo, refs.fingerprints, refs.residuals, workers, "PRNU verdicts", HEAT_BLOCK, refs.window)
    require_scored(more, todo)
    verdicts, skipped = pce_verdicts(paths, scored + more, refs.camera_class, refs.sel.classes, cal, threshold, truth)
    max_heatmaps = int(cfg.verdict.max_heatmaps)
    metrics = {
        "prnu/pce_threshold": threshold,
        "calibrated": cal is not None,
        **write_pce_report(refs.out_dir, verdicts, cal, threshold, max_heatmaps, DECIDED_BY),
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
        pce_ranking,
    )
    log_run(cfg, "prnu", metrics, {"reliability": out_dir / "reliability.png"})
    log.info(
        "PRNU verdicts for %d questioned images (%d unknown) -> %s",
        len(verdicts),
        metrics["n_unknown_verdicts"],
        out_dir / REPORT_NAME,
    )
    return metrics
