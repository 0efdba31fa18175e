"""The verdict report every method writes: ``verdicts.csv``, ``verdict_report.md`` and one heat map per photo.

Method-agnostic: the CNN passes calibrated class probabilities and per-patch probabilities, the PRNU baseline
passes PCE scores, calibrated match probabilities and a block map of local correlation with its best camera.

Also the one end every run of its kind shares: :func:`finish_folder_verdicts` (a folder of questioned photos: any
method, the library; :func:`folder_verdicts` for ``evaluate.py images=DIR``) and :func:`finish_test` (a labelled
test of PRNU or the matcher).
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sci_lightning.forensic.decisions import UNKNOWN, open_set_metrics
from sci_lightning.outputs import Metrics, write_json, write_skipped
from sci_lightning.tracking import RunLog, log_run

log = logging.getLogger(__name__)

REPORT_NAME = "verdict_report.md"


def _slug(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem)[:60]


def write_verdicts(
    out_dir: Path,
    verdicts: list[dict[str, Any]],
    header: list[str],
    heatmap: Callable[[dict[str, Any], Path], Path] | None,
    max_heatmaps: int = 200,
    score_name: str = "probability",
) -> Metrics:
    """``verdicts.csv``, one heat-map PNG per image (up to ``max_heatmaps``) and ``verdict_report.md``.

    Each verdict holds ``path``, ``ranked`` [(camera, score)...], ``decision`` and optionally ``true`` (the
    camera, or "unknown" for a camera without references), ``detail`` (extra text) and ``columns`` (extra
    ``verdicts.csv`` cells by name, e.g. the transform a geometry search found). Returns open-set metrics when
    true cameras are known.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    folder = out_dir / "verdicts"
    folder.mkdir(exist_ok=True)
    k = max((len(v["ranked"]) for v in verdicts), default=0)
    extra = list(dict.fromkeys(key for v in verdicts for key in v.get("columns", {})))
    with (out_dir / "verdicts.csv").open("w", newline="") as fh:
        wr = csv.writer(fh)
        ranks = [f"{s}{i + 1}" for i in range(k) for s in ("camera", "score")]
        wr.writerow(["path", "decision", "true", *extra, *ranks])
        for v in verdicts:
            cells = [x for cam, score in v["ranked"] for x in (cam, f"{score:.4g}")]
            more = [v.get("columns", {}).get(key, "") for key in extra]
            wr.writerow([v["path"], v["decision"], v.get("true", ""), *more, *cells])
    lines = [
        "# Verdict report",
        "",
        *header,
        "",
        "| # | image | decision | candidates (" + score_name + ") | true |",
        "|---|---|---|---|---|",
    ]
    for i, v in enumerate(verdicts):
        cands = ", ".join(f"{c} {s:.3g}" for c, s in v["ranked"][:3])
        decision = f"**{v['decision']}**"
        lines.append(f"| {i + 1} | `{Path(v['path']).name}` | {decision} | {cands} | {v.get('true', '—')} |")
    lines.append("")
    for i, v in enumerate(verdicts):
        lines += [f"## {i + 1}. `{Path(v['path']).name}` → **{v['decision']}**", "", f"`{v['path']}`", ""]
        lines += [f"- {c}: {s:.4g}" for c, s in v["ranked"]]
        if v.get("detail"):
            lines += ["", v["detail"]]
        if heatmap is not None and i < max_heatmaps:
            png = folder / f"{i + 1:04d}_{_slug(v['path'])}.png"
            try:
                heatmap(v, png)
                v["heat_png"] = str(png)  # for the case report, which inlines it
                lines += ["", f"![heat map of {Path(v['path']).name}](verdicts/{png.name})"]
            except Exception as err:  # a figure must never cost the verdicts: say why it is missing
                log.warning("no heat map for %s: %s", v["path"], err)
        lines.append("")
    if len(verdicts) > max_heatmaps:
        lines.append(
            f"(heat maps drawn for the first {max_heatmaps} of {len(verdicts)} images: "
            "raise verdict.max_heatmaps for more)"
        )
    (out_dir / REPORT_NAME).write_text("\n".join(lines) + "\n")
    return open_set_metrics(verdicts)


def ranked_predictions(
    classes: list[str],
    column: str,
    cell: Callable[[dict[str, Any], str], float],
    ranking: Callable[[dict[str, Any]], str],
) -> Callable[[Path, list[dict[str, Any]]], None]:
    """A ``predictions.csv`` writer for verdicts of a fingerprint method: decision, ranking and one
    ``<column>_<class>`` score per class."""

    def write(file: Path, verdicts: list[dict[str, Any]]) -> None:
        with file.open("w", newline="") as fh:
            wr = csv.writer(fh)
            wr.writerow(["path", "decision", "ranking", *[f"{column}_{c}" for c in classes]])
            for v in verdicts:
                wr.writerow([v["path"], v["decision"], ranking(v), *[f"{cell(v, c):.4g}" for c in classes]])

    return write


def finish_folder_verdicts(
    out_dir: Path,
    who: str,
    head: dict[str, Any],
    verdicts: list[dict[str, Any]],
    skipped: list[dict[str, str]],
    tail: dict[str, Any] | None = None,
    predictions: Callable[[Path, list[dict[str, Any]]], None] | None = None,
) -> Metrics:
    """The end of every run that gave verdicts on a folder of questioned photos (any method, the library):
    ``predictions.csv`` (when the method writes one), ``skipped_images.csv`` and ``metrics.json`` (``head``, the
    counts, ``tail``); logs where the report is. The verdict report itself is already written."""
    if predictions is not None:
        predictions(out_dir / "predictions.csv", verdicts)
    if skipped:
        write_skipped(out_dir / "skipped_images.csv", [(r["path"], r["reason"]) for r in skipped])
    metrics = {
        **head,
        "n_images": len(verdicts),
        "n_skipped_images": len(skipped),
        "n_unknown_verdicts": sum(v["decision"] == UNKNOWN for v in verdicts),
        **(tail or {}),
    }
    write_json(out_dir / "metrics.json", metrics)
    log.info(
        "%s: verdicts for %d photos (%d skipped, %d unknown) -> %s",
        who,
        len(verdicts),
        len(skipped),
        metrics["n_unknown_verdicts"],
        out_dir / REPORT_NAME,
    )
    return metrics


Decider = Callable[[list[str]], tuple[list[dict[str, Any]], list[dict[str, str]], dict[str, Any]]]


def folder_verdicts(
    paths: list[str],
    task: str,
    method: str,
    classes: list[str],
    out_dir: Path,
    decide: Decider,
    predictions: Callable[[Path, list[dict[str, Any]]], None],
    run_log: RunLog | None,
) -> Metrics:
    """``evaluate.py method=M images=DIR``: the folder's photos ``paths`` (their ``eval.transform`` copies)
    decided by ``decide(paths) -> (verdicts, skipped, metrics)`` (which writes the verdict report), then the files
    every folder run ends with (:func:`finish_folder_verdicts`) and the W&B run."""
    verdicts, skipped, decided = decide(paths)
    head = {"method": method, "task": task, **decided, "classes": classes}
    metrics = finish_folder_verdicts(out_dir, method, head, verdicts, skipped, predictions=predictions)
    log_run(run_log, metrics, {"reliability": out_dir / "reliability.png"})
    return metrics


def finish_test(
    fold: int,
    method: str,
    out_dir: Path,
    metrics: dict[str, Any],
    skipped: list[tuple[str, str]],
    run_log: RunLog | None,
) -> Metrics:
    """The end of a labelled test of a method without Lightning (PRNU, the matcher): ``skipped_images.csv``,
    ``metrics.json`` (last: it marks the run finished), the W&B run with the figures, one log line."""
    if skipped:
        write_skipped(out_dir / "skipped_images.csv", skipped)
    write_json(out_dir / "metrics.json", metrics)
    figures = {"confusion_matrix_image": out_dir / "confusion_matrix_image.png", "roc": out_dir / "roc.png"}
    log_run(run_log, metrics, figures, out_dir / "confusion_matrices.json")
    log.info(
        "%s fold %d: image acc %.4f, crop acc %.4f on %d images -> %s",
        method,
        fold,
        metrics["test/acc_image"],
        metrics["test/acc_crop"],
        metrics["n_test_images"],
        out_dir / "metrics.json",
    )
    return metrics
