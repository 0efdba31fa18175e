"""Figures for the paper's comparisons: ``python -m sci_lightning.sweep report SWEEP_DIR``.

Summarises every job under the folder (re-written each time, so a PRNU sweep run into a sub-folder such as
``SWEEP_DIR/prnu`` joins the CNN sweep) and draws, per variant (the overrides that differ between the settings,
e.g. ``model.net.filters`` in the depth ablation, or the model name), the mean patch- and
image-level test accuracy with error bars of one standard deviation over folds: ``sweep_accuracy.png`` plus
a markdown table ``sweep_report.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from sci_lightning.sweep.summary import summarise, variant_labels

LEVELS = (
    ("test/acc_patch", "patch"),
    ("test/acc_image", "image (mean prob.)"),
    ("test/acc_image_vote", "image (vote)"),
)


def _labels(groups: list[dict[str, Any]]) -> list[str]:
    return variant_labels([g["overrides"] for g in groups], [g.get("model") for g in groups])


def _cell(stats: dict[str, float]) -> str:
    # A level a method does not have (PRNU decides per image: no patch accuracy) is a dash, not "nan".
    if stats["n"] == 0:
        return "—"
    return f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def draw(summary: dict[str, Any], out_dir: Path) -> Path:
    """``sweep_accuracy.png``: mean accuracy per variant and level, error bars one std over folds."""
    groups = summary["groups"]
    labels = _labels(groups)
    x = np.arange(len(groups))
    width = 0.8 / len(LEVELS)
    fig = Figure(figsize=(max(6, 1.6 * len(groups) + 2), 4.5), dpi=110)
    ax = fig.subplots()
    for i, (key, name) in enumerate(LEVELS):
        means = [g["metrics"][key]["mean"] for g in groups]
        stds = [g["metrics"][key]["std"] for g in groups]
        ax.bar(x + (i - (len(LEVELS) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=name)
    ax.set_xticks(x, labels=labels, rotation=20, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test accuracy (mean ± std over folds)")
    first = groups[0]
    ax.set_title(
        f"{first['task']} / {first['data']}: {len(groups)} variant(s), "
        f"{min(g['n'] for g in groups)}-{max(g['n'] for g in groups)} folds each",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = out_dir / "sweep_accuracy.png"
    fig.savefig(path)
    return path


def write_report(sweep_dir: str | Path) -> Path:
    """Draw the figure and write ``sweep_report.md`` for a sweep dir; returns the markdown's path."""
    sweep_dir = Path(sweep_dir)
    # Always re-summarised: a sweep folder may have gained jobs since (e.g. a PRNU sweep run into a sub-folder).
    summary = summarise(sweep_dir)
    png = draw(summary, sweep_dir)
    labels = _labels(summary["groups"])
    lines = [
        "# Sweep report",
        "",
        f"![accuracy per variant]({png.name})",
        "",
        "| variant | model | folds | " + " | ".join(name for _, name in LEVELS) + " |",
        "|---" * (len(LEVELS) + 3) + "|",
    ]
    for label, g in zip(labels, summary["groups"]):
        cells = [_cell(g["metrics"][k]) for k, _ in LEVELS]
        lines.append(f"| {label} | {g['model']} | {g['n']} | " + " | ".join(cells) + " |")
    path = sweep_dir / "sweep_report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
