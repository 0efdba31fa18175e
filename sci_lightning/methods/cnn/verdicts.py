"""The forensic protocol for the CNN: calibration on validation images, verdicts on questioned photos.

Training calls :func:`after_test` once the test loop has run with the best weights: it fits the calibration
(:mod:`sci_lightning.forensic.calibration`) on the validation images, stores it in the run's checkpoints (so
``evaluate.py ckpt_path=... images=DIR`` gives calibrated verdicts), and, on a fixed split, writes verdicts for
every questioned image, including those of cameras left out of the references.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sci_lightning.data.cache import PatchSettings
from sci_lightning.data.datamodule import SCIDataModule
from sci_lightning.forensic.calibration import Calibration, calibrate, calibrated_probs, reliability
from sci_lightning.forensic.decisions import UNKNOWN, Skipped, Verdict, decide, size_mismatch
from sci_lightning.forensic.figures import draw_patch_heatmap, plot_reliability
from sci_lightning.forensic.report import write_verdicts
from sci_lightning.methods.cnn.checkpoint import store_calibration
from sci_lightning.methods.cnn.inference import score_files, validation_probs
from sci_lightning.methods.cnn.module import SCIClassifier
from sci_lightning.outputs import Metrics, write_json

log = logging.getLogger(__name__)


def calibration_header(cal: Calibration | None, what: str) -> list[str]:
    """The lines that open a verdict report: what decided, how scores were calibrated, and how well."""
    if cal is None:
        return [
            f"Decided by {what}.",
            "",
            "**Scores are not calibrated** (a checkpoint from before calibration was stored): read them as "
            "raw mean patch probabilities; no 'unknown' verdicts are given.",
        ]
    thr = "none" if cal.threshold is None else f"{cal.threshold:.3f}"
    return [
        f"Decided by {what}.",
        "",
        f"- Scores: class probabilities calibrated by temperature scaling (T = {cal.temperature:.3f}) on "
        f"{cal.n_images} validation images (never trained or tested on): their mean top-1 score equals their "
        "accuracy, smoothed by Laplace's rule.",
        f"- Calibration on those images: expected calibration error {cal.ece_before:.3f} before, "
        f"{cal.ece_after:.3f} after (reliability diagram: `reliability.png`).",
        f"- A camera is named only if its calibrated probability is at least {thr}; otherwise the verdict is "
        f"**unknown**. "
        + (
            f"The threshold lets at most {cal.target_false_attribution:.0%} of validation images through when "
            "scored as if their own camera were not among the candidates (an imitation of an unknown camera)."
            if cal.threshold_rule == "impostor"
            else f"With two candidate cameras an unknown camera cannot be imitated on validation images, so the "
            f"threshold rejects at most {cal.target_false_attribution:.0%} of the correctly attributed "
            "validation images instead."
        ),
    ]


def cnn_verdicts(
    module: SCIClassifier,
    paths: Sequence[Path],
    settings: PatchSettings,
    classes: list[str],
    cal: Calibration | None,
    truth: Mapping[str, str] | None = None,
) -> tuple[list[Verdict], list[Skipped]]:
    """Score photos and turn the scores into verdicts; returns ``(verdicts, skipped rows)``."""
    rows = score_files(module, paths, settings)
    verdicts, skipped = [], []
    for row in rows:
        if row.get("reason"):
            skipped.append(row)
            continue
        t = cal.temperature if cal else 1.0
        probs = calibrated_probs(row["mean_probs"][None], t)[0]
        order = np.argsort(-probs)
        ranked = [(classes[i], float(probs[i])) for i in order]
        v = {
            "path": row["path"],
            "ranked": ranked,
            "decision": decide(ranked, cal.threshold if cal else None),
            "probs": probs,
            "n_patches": row["n_patches"],
            "patch_probs": row["patch_probs"],
            "positions": row["positions"],
            "detail": f"{row['n_patches']} patches; votes: "
            + ", ".join(f"{classes[i]} {int(n)}" for i, n in enumerate(row["votes"]) if n),
        }
        note = frame_note(row["path"], cal.frames.get(ranked[0][0], []) if cal else [])
        if note:
            v["detail"] += f"\n\n**{note}**"
            v["columns"] = {"size_matches_camera": "no"}
        if truth is not None:
            v["true"] = truth.get(row["path"], UNKNOWN)
        verdicts.append(v)
    return verdicts, skipped


def reference_frames(records: Sequence[Any], label_field: str) -> dict[str, list[list[int]]]:
    """The distinct frame sizes ``[height, width]`` of each class's reference photos (read from file headers)."""
    frames: dict[str, set[tuple[int, int]]] = {}
    for r in records:
        try:
            with Image.open(r.path) as img:
                frames.setdefault(r.label(label_field), set()).add((img.height, img.width))
        except OSError:
            continue
    return {c: sorted([list(f) for f in sizes]) for c, sizes in frames.items()}


def frame_note(path: str | Path, frames: list[list[int]]) -> str | None:
    """The size warning of :func:`~sci_lightning.forensic.decisions.size_mismatch` when the photo is of none of
    the named class's reference frames (None when it is, or when they are not known)."""
    if not frames:
        return None
    try:
        with Image.open(path) as img:
            shape = (img.height, img.width)
    except OSError:
        return None
    if any(tuple(f) == shape for f in frames):
        return None
    return size_mismatch(shape, tuple(frames[0]))


def write_cnn_verdicts(
    out_dir: Path,
    verdicts: list[Verdict],
    classes: list[str],
    settings: PatchSettings,
    cal: Calibration | None,
    what: str,
    max_heatmaps: int,
) -> Metrics:
    """The verdict report of scored photos (and, from the stored bins, the reliability diagram if missing)."""
    if cal is not None and not (out_dir / "reliability.png").exists():  # evaluate.py: from the stored bins
        out_dir.mkdir(parents=True, exist_ok=True)
        plot_reliability(
            [("validation, raw", cal.bins_before), ("validation, calibrated", cal.bins_after)],
            out_dir / "reliability.png",
            f"image-level reliability (T = {cal.temperature:.2f})",
        )

    def heatmap(v: dict, png: Path) -> Path:
        return draw_patch_heatmap(
            v["path"],
            v["positions"],
            v["patch_probs"],
            settings.size,
            classes,
            png,
            f"{Path(v['path']).name}: {v['decision']} (patch colour = camera it points to)",
        )

    return write_verdicts(out_dir, verdicts, calibration_header(cal, what), heatmap, max_heatmaps)


def after_test(
    module: SCIClassifier,
    dm: SCIDataModule,
    out_dir: Path,
    verdict_cfg: Mapping[str, Any],
    ckpt_paths: Sequence[str | Path],
    what: str,
) -> Metrics:
    """Calibrate on the validation images, store it, and (fixed splits) write verdicts; returns metrics."""
    if not len(dm.splits["val"]):
        log.warning("no validation images: scores stay uncalibrated and no 'unknown' verdicts are possible")
        return {}
    target = float(verdict_cfg["target_false_attribution"])
    val_probs = validation_probs(module, dm)  # the selected weights' validation pass (train.validate_selected)
    cal = calibrate(val_probs, dm.split_labels("val"), target)
    cal.frames = reference_frames(dm.references(), dm.label_field)
    # The test loop already aggregated the test images with the same weights: reuse its scores.
    test_probs, test_labels = module.test_results["mean_probs"].numpy(), module.test_results["target"].numpy()
    ece_test_before, _ = reliability(calibrated_probs(test_probs, 1.0), test_labels)
    ece_test_after, bins_test_after = reliability(calibrated_probs(test_probs, cal.temperature), test_labels)
    write_json(
        out_dir / "calibration.json",
        {
            **cal.to_dict(),
            "ece_test_before": ece_test_before,
            "ece_test_after": ece_test_after,
            "bins_test_after": bins_test_after,
        },
    )
    plot_reliability(
        [
            ("validation, raw", cal.bins_before),
            ("validation, calibrated", cal.bins_after),
            ("test, calibrated", bins_test_after),
        ],
        out_dir / "reliability.png",
        f"image-level reliability (T = {cal.temperature:.2f})",
    )
    store_calibration(cal, ckpt_paths)
    metrics = {
        "calibration/temperature": cal.temperature,
        "calibration/threshold": cal.threshold,
        "calibration/ece_val_before": cal.ece_before,
        "calibration/ece_val_after": cal.ece_after,
        "calibration/ece_test_before": ece_test_before,
        "calibration/ece_test_after": ece_test_after,
    }
    log.info(
        "calibration: T=%.3f, ECE val %.3f -> %.3f, test %.3f -> %.3f, unknown below %s",
        cal.temperature,
        cal.ece_before,
        cal.ece_after,
        ece_test_before,
        ece_test_after,
        cal.threshold,
    )
    if dm.mode != "kfold":
        metrics.update(questioned_verdicts(module, dm, out_dir, cal, what, int(verdict_cfg["max_heatmaps"])))
    return metrics


def questioned_verdicts(
    module: SCIClassifier, dm: SCIDataModule, out_dir: Path, cal: Calibration | None, what: str, max_heatmaps: int
) -> Metrics:
    """Verdicts on a fixed split's questioned images (those of cameras without references included)."""
    questioned, truth = dm.questioned()
    verdicts, _ = cnn_verdicts(module, [r.path for r in questioned], dm.settings, dm.classes, cal, truth)
    return write_cnn_verdicts(out_dir, verdicts, dm.classes, dm.settings, cal, what, max_heatmaps)


def score_rows_for_csv(verdicts: list[dict], skipped: list[dict]) -> list[dict]:
    """Rows for ``write_ranked_predictions``: calibrated probabilities in place of the raw mean."""
    return [{"path": v["path"], "mean_probs": v["probs"], "n_patches": v["n_patches"]} for v in verdicts] + skipped
