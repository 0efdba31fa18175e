"""The forensic protocol for the CNN: calibration on validation images, verdicts on questioned photos.

``train.py`` calls :func:`after_test` once the test loop has run with the best weights: it fits the calibration
(:mod:`sci_lightning.calibration`) on the validation images, stores it in the run's checkpoints (so
``evaluate.py ckpt_path=... images=DIR`` gives calibrated verdicts), and, on a fixed split, writes verdicts for
every questioned image, including those of cameras left out of the references.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sci_lightning.calibration import Calibration, calibrate, calibrated_probs, plot_reliability, reliability
from sci_lightning.data.cache import PatchSettings
from sci_lightning.data.datamodule import SCIDataModule
from sci_lightning.inference import patch_probabilities, score_files
from sci_lightning.module import SCIClassifier
from sci_lightning.reporting import write_json
from sci_lightning.verdict import UNKNOWN, decide, draw_patch_heatmap, write_verdicts

log = logging.getLogger(__name__)

CKPT_KEY = "sci_calibration"


@torch.no_grad()
def split_image_probs(module: SCIClassifier, dm: SCIDataModule, stage: str, batch_size: int = 1024) -> np.ndarray:
    """Mean patch probabilities of every image of a split, in the order of ``dm.split_records(stage)``."""
    module.eval()
    ds = dm.datasets[stage]
    n_images = len(dm.splits[stage])
    sums = np.zeros((n_images, len(dm.classes)))
    counts = np.zeros(n_images)
    for start in range(0, len(ds), batch_size):
        x, _, owner = ds.__getitems__(list(range(start, min(len(ds), start + batch_size))))
        p = patch_probabilities(module, x)
        np.add.at(sums, owner.numpy(), p)
        np.add.at(counts, owner.numpy(), 1)
    return sums / np.clip(counts, 1, None)[:, None]


def calibration_header(cal: Calibration | None, what: str) -> list[str]:
    """The lines that open a verdict report: what decided, how scores were calibrated, and how well."""
    if cal is None:
        return [f"Decided by {what}.", "",
                "**Scores are not calibrated** (a checkpoint from before calibration was stored): read them as "
                "raw mean patch probabilities; no 'unknown' verdicts are given."]
    thr = "none" if cal.threshold is None else f"{cal.threshold:.3f}"
    return [f"Decided by {what}.", "",
            f"- Scores: class probabilities calibrated by temperature scaling (T = {cal.temperature:.3f}) on "
            f"{cal.n_images} validation images (never trained or tested on): their mean top-1 score equals their "
            "accuracy, smoothed by Laplace's rule.",
            f"- Calibration on those images: expected calibration error {cal.ece_before:.3f} before, "
            f"{cal.ece_after:.3f} after (reliability diagram: `reliability.png`).",
            f"- A camera is named only if its calibrated probability is at least {thr}; otherwise the verdict is "
            f"**unknown**. " + (
                f"The threshold lets at most {cal.target_false_attribution:.0%} of validation images through when "
                "scored as if their own camera were not among the candidates (an imitation of an unknown camera)."
                if cal.threshold_rule == "impostor" else
                f"With two candidate cameras an unknown camera cannot be imitated on validation images, so the "
                f"threshold rejects at most {cal.target_false_attribution:.0%} of the correctly attributed "
                "validation images instead.")]


def cnn_verdicts(module: SCIClassifier, paths: Sequence[Path], settings: PatchSettings, classes: list[str],
                 cal: Calibration | None, truth: Mapping[str, str] | None = None) -> tuple[list[dict], list[dict]]:
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
        v = {"path": row["path"], "ranked": ranked, "decision": decide(ranked, cal.threshold if cal else None),
             "probs": probs, "n_patches": row["n_patches"],
             "patch_probs": row["patch_probs"], "positions": row["positions"],
             "detail": f"{row['n_patches']} patches; votes: " + ", ".join(
                 f"{classes[i]} {int(n)}" for i, n in enumerate(row["votes"]) if n)}
        if truth is not None:
            v["true"] = truth.get(row["path"], UNKNOWN)
        verdicts.append(v)
    return verdicts, skipped


def write_cnn_verdicts(out_dir: Path, verdicts: list[dict], classes: list[str], settings: PatchSettings,
                       cal: Calibration | None, what: str, max_heatmaps: int = 200) -> dict[str, Any]:
    if cal is not None and not (out_dir / "reliability.png").exists():  # evaluate.py: from the stored bins
        out_dir.mkdir(parents=True, exist_ok=True)
        plot_reliability([("validation, raw", cal.bins_before), ("validation, calibrated", cal.bins_after)],
                         out_dir / "reliability.png", f"image-level reliability (T = {cal.temperature:.2f})")

    def heatmap(v: dict, png: Path) -> Path:
        return draw_patch_heatmap(v["path"], v["positions"], v["patch_probs"], settings.size, classes, png,
                                  f"{Path(v['path']).name}: {v['decision']} (patch colour = camera it points to)")

    return write_verdicts(out_dir, verdicts, calibration_header(cal, what), heatmap, max_heatmaps)


def store_calibration(cal: Calibration, ckpt_paths: Sequence[str | Path]) -> None:
    """Add the calibration to checkpoints (plain values only: they still load with ``weights_only=True``)."""
    for path in {str(p) for p in ckpt_paths if p and Path(p).is_file()}:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        ckpt[CKPT_KEY] = cal.to_dict()
        tmp = Path(f"{path}.tmp")
        torch.save(ckpt, tmp)
        tmp.replace(path)


def after_test(module: SCIClassifier, dm: SCIDataModule, out_dir: Path, verdict_cfg: Mapping[str, Any],
               ckpt_paths: Sequence[str | Path], what: str) -> dict[str, Any]:
    """Calibrate on the validation images, store it, and (fixed splits) write verdicts; returns metrics."""
    if not len(dm.splits["val"]):
        log.warning("no validation images: scores stay uncalibrated and no 'unknown' verdicts are possible")
        return {}
    target = float(verdict_cfg.get("target_false_attribution", 0.05))
    val_probs = split_image_probs(module, dm, "val")
    cal = calibrate(val_probs, dm.split_labels("val"), target)
    # The test loop already aggregated the test images with the same weights: reuse its scores.
    test_probs, test_labels = module.test_results["mean_probs"].numpy(), module.test_results["target"].numpy()
    ece_test_before, _ = reliability(calibrated_probs(test_probs, 1.0), test_labels)
    ece_test_after, bins_test_after = reliability(calibrated_probs(test_probs, cal.temperature), test_labels)
    write_json(out_dir / "calibration.json", {**cal.to_dict(), "ece_test_before": ece_test_before,
                                              "ece_test_after": ece_test_after, "bins_test_after": bins_test_after})
    plot_reliability([("validation, raw", cal.bins_before), ("validation, calibrated", cal.bins_after),
                      ("test, calibrated", bins_test_after)], out_dir / "reliability.png",
                     f"image-level reliability (T = {cal.temperature:.2f})")
    store_calibration(cal, ckpt_paths)
    metrics = {"calibration/temperature": cal.temperature, "calibration/threshold": cal.threshold,
               "calibration/ece_val_before": cal.ece_before, "calibration/ece_val_after": cal.ece_after,
               "calibration/ece_test_before": ece_test_before, "calibration/ece_test_after": ece_test_after}
    log.info("calibration: T=%.3f, ECE val %.3f -> %.3f, test %.3f -> %.3f, unknown below %s", cal.temperature,
             cal.ece_before, cal.ece_after, ece_test_before, ece_test_after, cal.threshold)
    if dm.mode != "kfold":
        metrics.update(questioned_verdicts(module, dm, out_dir, cal, what, int(verdict_cfg.get("max_heatmaps", 200))))
    return metrics


def questioned_verdicts(module: SCIClassifier, dm: SCIDataModule, out_dir: Path, cal: Calibration | None, what: str,
                        max_heatmaps: int = 200) -> dict[str, Any]:
    """Verdicts on a fixed split's questioned images (those of cameras without references included)."""
    questioned = dm.split_records("test") + dm.unknown_records()
    truth = {str(r.path): r.label(dm.label_field) for r in dm.split_records("test")}
    verdicts, _ = cnn_verdicts(module, [r.path for r in questioned], dm.settings, dm.classes, cal, truth)
    return write_cnn_verdicts(out_dir, verdicts, dm.classes, dm.settings, cal, what, max_heatmaps)


def score_rows_for_csv(verdicts: list[dict], skipped: list[dict]) -> list[dict]:
    """Rows for ``write_ranked_predictions``: calibrated probabilities in place of the raw mean."""
    return [{"path": v["path"], "mean_probs": v["probs"], "n_patches": v["n_patches"]} for v in verdicts] + skipped
