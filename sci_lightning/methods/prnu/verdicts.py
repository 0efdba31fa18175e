"""PRNU verdicts (:mod:`sci_lightning.forensic.pce`: best PCE wins if it reaches ``prnu.pce_threshold``, P(match)
by Platt scaling, local-NCC heat maps) on a fixed split's questioned photos or a folder of unlabelled ones."""

from __future__ import annotations

import logging
import os

from omegaconf import DictConfig

from sci_lightning.fingerprint.core import HEAT_BLOCK
from sci_lightning.fingerprint.impostors import validation_scores
from sci_lightning.fingerprint.references import require_scored
from sci_lightning.fingerprint.scoring import Search, score_images
from sci_lightning.forensic.decisions import Skipped, Verdict
from sci_lightning.forensic.pce import calibrate, decide, pce_ranking, write_pce_report
from sci_lightning.forensic.report import folder_verdicts, ranked_predictions
from sci_lightning.forensic.rules import Rule
from sci_lightning.methods.prnu.scoring import References
from sci_lightning.methods.wiring import questioned_of, run_log_of, search_of
from sci_lightning.outputs import Metrics

log = logging.getLogger(__name__)

DECIDED_BY = (
    "Decided by the PRNU baseline: wavelet noise residual against per-camera fingerprints estimated "
    "from the reference photos; best PCE wins."
)


def searched(cfg: DictConfig, refs: References) -> bool:
    """Whether questioned photos are searched for their geometry (``geometry=auto|full`` on whole photos)."""
    return search_of(cfg).active and not refs.window[0]


def calibration(cfg: DictConfig, refs: References) -> Rule | None:
    """The verdicts' calibration: the false-alarm bar when photos are searched, else Platt scaling of PCE."""
    search = search_of(cfg) if searched(cfg, refs) else None
    scores = validation_scores(refs.sel, refs.residuals, search, refs.window, os.cpu_count() or 1, int(cfg.seed))
    return calibrate(scores, float(cfg.prnu.false_alarm), float(cfg.verdict.target_false_attribution))


def verdict_search(cfg: DictConfig, refs: References, cal: Rule | None) -> Search | None:
    """How questioned photos are scored: searched up to the calibrated bar, or as stored (None)."""
    if not searched(cfg, refs):
        return None
    return search_of(cfg, cal["log10_bar"] if cal else None).for_fingerprints(refs.quality)


def _decide_and_write(
    cfg: DictConfig,
    refs: References,
    paths: list[str],
    scored: list[dict],
    truth: dict[str, str] | None,
    cal: Rule | None = None,
) -> tuple[list[Verdict], list[Skipped], Metrics]:
    """Score what is not scored yet, calibrate (unless ``cal`` is given), decide and write the report:
    ``(verdicts, skipped, metrics)``. ``scored`` holds the first ``len(scored)`` paths' scores."""
    workers = os.cpu_count() or 1
    threshold = float(cfg.prnu.pce_threshold)
    cal = calibration(cfg, refs) if cal is None else cal
    todo = paths[len(scored) :]
    search = verdict_search(cfg, refs, cal)
    fps, store = refs.fingerprints, refs.residuals
    more = score_images(todo, fps, store, workers, "PRNU verdicts", HEAT_BLOCK, refs.window, search)
    require_scored(more, todo)
    verdicts, skipped = decide(paths, scored + more, refs.camera_class, refs.sel.classes, cal, threshold, truth)
    max_heatmaps = int(cfg.verdict.max_heatmaps)
    metrics = {
        "prnu/pce_threshold": threshold,
        "geometry": str(cfg.geometry.name) if search is not None else "none",
        "calibrated": cal is not None,
        **write_pce_report(
            refs.out_dir,
            verdicts,
            cal,
            threshold,
            max_heatmaps,
            DECIDED_BY,
            fingerprints={c: q.as_dict() for c, q in refs.quality.items()},
        ),
    }
    if search is not None:
        metrics["prnu/log10_false_alarm_bar"] = cal["log10_bar"]
        metrics["impostor_false_attribution"] = cal["impostor_false_attribution"]
    return verdicts, skipped, metrics


def fixed_split_verdicts(
    cfg: DictConfig, refs: References, test_scored: list[dict], cal: Rule | None = None
) -> Metrics:
    """Verdicts on a fixed split's questioned images, those of cameras without references included.

    ``test_scored``: the known questioned (test) images' scores from the test run, heat maps included (scored
    with the calibration ``cal``'s bar, which is reused).
    """
    questioned, truth = refs.sel.questioned()
    return _decide_and_write(cfg, refs, [str(r.path) for r in questioned], test_scored, truth, cal)[2]


def questioned_folder_verdicts(cfg: DictConfig, refs: References) -> Metrics:
    """``evaluate.py method=prnu images=DIR``: verdicts on unlabelled photos against the references."""
    return folder_verdicts(
        questioned_of(cfg),
        cfg.task.name,
        "prnu",
        refs.sel.classes,
        refs.out_dir,
        lambda paths: _decide_and_write(cfg, refs, paths, [], None),
        ranked_predictions(refs.sel.classes, "pce", lambda v, c: v["pce"].get(c, float("nan")), pce_ranking),
        run_log_of(cfg, "prnu"),
    )
