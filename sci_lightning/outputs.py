"""Per-run outputs every method writes: metrics.json, predictions.csv, skipped_images.csv, confusion matrices.

Figures use matplotlib's object API (:class:`~matplotlib.figure.Figure`), never pyplot's global state, so
importing this module changes no backend and figures drawn in worker threads or a notebook do not interfere.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
from matplotlib.figure import Figure

# What a run's summary may hold: JSON's values, NumPy scalars (write_json makes them plain numbers) and paths as
# strings. A summary's keys are partly the data's own (per camera, per transform, per setting), so it is a mapping
# and not a dataclass; its fixed-shape parts (verdict rows, search results, rules) are typed where they are made.
JsonScalar: TypeAlias = str | int | float | bool | None | np.generic
JsonValue: TypeAlias = JsonScalar | list["JsonValue"] | tuple["JsonValue", ...] | dict[str, "JsonValue"]
Metrics: TypeAlias = dict[str, JsonValue]
"""A JSON-writable summary: metrics.json, a sweep's summary, an action's outcome as printed and logged."""


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """JSON with NumPy/torch scalars as plain numbers and non-finite values as null."""
    path.write_text(json.dumps({k: _plain(v) for k, v in data.items()}, indent=2, sort_keys=False) + "\n")


def plot_confusion_matrix(matrix: np.ndarray, classes: Sequence[str], path: Path, title: str) -> Path:
    """Save a confusion matrix (rows = true class) with counts and row-normalised percentages in each cell."""
    matrix = np.asarray(matrix, dtype=np.int64)
    row_sum = matrix.sum(axis=1, keepdims=True)
    pct = np.divide(matrix, row_sum, out=np.zeros(matrix.shape, float), where=row_sum > 0) * 100
    n = len(classes)
    fig = Figure(figsize=(1.6 + 1.1 * n, 1.2 + 1.0 * n), dpi=110)
    ax = fig.subplots()
    ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    ax.set_xticks(range(n), labels=classes, rotation=45, ha="right")
    ax.set_yticks(range(n), labels=classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    total = matrix.sum()
    acc = np.trace(matrix) / total * 100 if total else float("nan")
    ax.set_title(f"{title}\n{total} samples, accuracy {acc:.1f}%", fontsize=10)
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                f"{matrix[i, j]}\n{pct[i, j]:.1f}%",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if pct[i, j] > 60 else "black",
            )
    fig.tight_layout()
    fig.savefig(path)
    return path


def write_test_predictions(
    path: Path, image_paths: Sequence[str], classes: Sequence[str], results: Mapping[str, Any]
) -> None:
    """One row per test image: path, true and predicted class (mean probability and vote), probabilities."""
    probs = np.asarray(results["mean_probs"])
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["path", "true", "predicted", "predicted_vote", "correct", "n_patches", *[f"prob_{c}" for c in classes]]
        )
        for row, img in enumerate(np.asarray(results["image"])):
            true, pred = classes[int(results["target"][row])], classes[int(probs[row].argmax())]
            w.writerow(
                [
                    image_paths[int(img)],
                    true,
                    pred,
                    classes[int(results["vote_pred"][row])],
                    int(true == pred),
                    int(results["n_patches"][row]),
                    *[f"{p:.6f}" for p in probs[row]],
                ]
            )


def write_ranked_predictions(path: Path, classes: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """Unlabelled images: the classes ranked by mean patch probability, or the reason an image was skipped."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "predicted", "ranking", "n_patches", "skipped_reason", *[f"prob_{c}" for c in classes]])
        for r in rows:
            if r.get("reason"):
                w.writerow([r["path"], "", "", 0, r["reason"], *[""] * len(classes)])
                continue
            p = np.asarray(r["mean_probs"])
            order = np.argsort(-p, kind="stable")
            ranking = " > ".join(f"{classes[k]} ({p[k]:.3f})" for k in order)
            w.writerow([r["path"], classes[order[0]], ranking, r["n_patches"], "", *[f"{v:.6f}" for v in p]])


def write_skipped(path: Path, skipped: Sequence[tuple[str, str]]) -> None:
    """``skipped_images.csv``: every unusable file with the reason it was skipped."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "reason"])
        w.writerows(skipped)


def write_test_outputs(
    out_dir: Path,
    classes: Sequence[str],
    test_paths: Sequence[str],
    results: Mapping[str, Any],
    metrics: dict[str, Any],
    skipped: Sequence[tuple[str, str]] = (),
) -> dict[str, Path]:
    """Write the standard test outputs of a run; returns the PNGs by name (for loggers).

    ``metrics.json`` is written last, so its presence marks a finished run (sweeps rely on it).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    write_test_predictions(out_dir / "predictions.csv", test_paths, classes, results)
    if skipped:
        write_skipped(out_dir / "skipped_images.csv", skipped)
    matrices = {level: np.asarray(results[f"confusion_{level}"]).astype(int).tolist() for level in ("patch", "image")}
    write_json(out_dir / "confusion_matrices.json", {"classes": list(classes), **matrices})
    pngs = {
        "confusion_matrix_patch": plot_confusion_matrix(
            np.asarray(matrices["patch"]), classes, out_dir / "confusion_matrix_patch.png", "patch level"
        ),
        "confusion_matrix_image": plot_confusion_matrix(
            np.asarray(matrices["image"]),
            classes,
            out_dir / "confusion_matrix_image.png",
            "image level (mean of patch probabilities)",
        ),
    }
    write_json(out_dir / "metrics.json", metrics)
    return pngs


def image_metrics(truth: Sequence[int], pred: Sequence[int], n_classes: int) -> dict[str, float]:
    """Image-level accuracy, balanced (macro) accuracy and macro F1 of class indices."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    labels = list(range(n_classes))
    return {
        "test/acc_image": accuracy_score(truth, pred),
        "test/acc_macro_image": balanced_accuracy_score(truth, pred),
        "test/f1_macro_image": f1_score(truth, pred, average="macro", labels=labels, zero_division=0),
    }


def write_image_results(
    out_dir: Path,
    classes: Sequence[str],
    truth: Sequence[int],
    pred: Sequence[int],
    title: str,
    rows: tuple[Sequence[str], Sequence[tuple[str, Sequence[str]]]] | None = None,
) -> dict[str, float]:
    """Image-level results of any method on labelled test photos: the confusion matrix (``confusion_matrices.json``
    and ``confusion_matrix_image.png`` titled ``title``) and, given ``rows`` = (extra column names, [(path, extra
    cells)] in ``truth`` order), ``predictions.csv`` (path, true, predicted, correct, the extra cells). Returns
    :func:`image_metrics`."""
    from sklearn.metrics import confusion_matrix

    classes = list(classes)
    if rows is not None:
        columns, cells = rows
        with (out_dir / "predictions.csv").open("w", newline="") as fh:
            wr = csv.writer(fh)
            wr.writerow(["path", "true", "predicted", "correct", *columns])
            for (path, extra), t, p in zip(cells, truth, pred):
                wr.writerow([path, classes[t], classes[p], int(t == p), *extra])
    matrix = confusion_matrix(truth, pred, labels=list(range(len(classes))))
    write_json(out_dir / "confusion_matrices.json", {"classes": classes, "patch": None, "image": matrix.tolist()})
    plot_confusion_matrix(matrix, classes, out_dir / "confusion_matrix_image.png", title)
    return image_metrics(truth, pred, len(classes))


def finished_metrics(out_dir: Path, fold: int) -> Metrics | None:
    """The metrics of a run dir whose fold already finished (metrics.json is written last), else None."""
    try:
        metrics = json.loads((out_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return metrics if metrics.get("fold") == fold and "test/acc_image" in metrics else None
