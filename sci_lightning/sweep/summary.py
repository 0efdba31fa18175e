"""Cross-validation summaries: fold results of a sweep -> mean ± std and pooled confusion matrices.

Runs at the end of every multirun (:mod:`.callback`), or by hand: ``python -m sci_lightning.sweep summary
SWEEP_DIR``. Writes ``cv_summary.json``, ``cv_summary.md`` and ``cv_confusion_matrix_<level>[_<variant>].png``.
Jobs are grouped by their overrides other than ``fold`` (read with Hydra's own override parser): folds of
different settings are never averaged together.
"""

from __future__ import annotations

import json
import logging
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from sci_lightning.outputs import Metrics, plot_confusion_matrix, write_json

log = logging.getLogger(__name__)

SUMMARY_KEYS = (
    "test/acc_patch",
    "test/acc_image",
    "test/acc_image_vote",
    "test/acc_macro_image",
    "test/f1_macro_patch",
    "test/f1_macro_image",
    "test/loss",
    "test/acc_crop",
    "test/roc_auc",
    "test/tpr_at_fpr_0.01",
    "test/eer",
)


@dataclass
class Group:
    """The folds of one setting (task/data/model/... combination) in a sweep."""

    setting: str
    overrides: list[str] = field(default_factory=list)  # the setting's overrides (fold and hydra.* left out)
    folds: dict[int, dict[str, Any]] = field(default_factory=dict)  # fold -> metrics.json
    job_dirs: dict[int, Path] = field(default_factory=dict)
    failed: list[tuple[int | None, str]] = field(default_factory=list)  # (fold, job dir)


# Overrides that organise a sweep or change how it runs, never its numbers: not part of a variant's name (the
# model name is taken from metrics.json).
ORGANISING_KEYS = (
    "experiment",
    "method",
    "logger",
    "torch_threads",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "data.cache_workers",
)


def _parsed(overrides: list[str]) -> dict[str, str]:
    """``{key: value}`` of Hydra override strings (``+``/``~`` prefixes and bracketed lists understood)."""
    return {
        o.key_or_group: o.get_value_element_as_str() if not o.is_delete() else "~"
        for o in OverridesParser.create().parse_overrides(overrides)
    }


def variant_labels(overrides: list[list[str]], models: list[str | None] | None = None) -> list[str]:
    """Short names for settings (each a list of overrides): only the overrides whose values differ between them.

    ``models`` (each group's model name from its metrics.json) lets a CNN sweep and a PRNU sweep in one folder
    be told apart by model even where one of them has no ``model=`` override.
    """
    parsed = [_parsed(o) for o in overrides]
    for p, model in zip(parsed, models or []):
        if model:
            p["model"] = model
        for key in ORGANISING_KEYS:
            p.pop(key, None)
    keys = sorted({k for p in parsed for k in p})
    differing = [k for k in keys if len({p.get(k) for p in parsed}) > 1]
    if not differing:
        return [",".join(sorted(o)) or "default" for o in overrides]
    return [", ".join(f"{k.split('.')[-1]}={p.get(k, '—')}" for k in differing) for p in parsed]


def _job_overrides(job_dir: Path) -> list[str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    return list(yaml.safe_load(path.read_text()) or []) if path.is_file() else []


def _setting_and_fold(overrides: list[str]) -> tuple[list[str], int | None]:
    """The overrides that make a setting (sorted) and the fold of a job's overrides."""
    fold, rest = None, []
    for ov in OverridesParser.create().parse_overrides(overrides):
        if ov.key_or_group == "fold":
            fold = int(ov.value())
        elif not ov.key_or_group.startswith("hydra"):
            rest.append(ov.input_line)
    return sorted(rest), fold


def collect(sweep_dir: Path) -> dict[str, Group]:
    """Every job dir under ``sweep_dir`` (those holding ``.hydra/``), grouped by setting."""
    groups: dict[str, Group] = {}
    for hydra_dir in sorted(sweep_dir.glob("**/.hydra")):
        job_dir = hydra_dir.parent
        if job_dir == sweep_dir:
            continue
        rest, fold = _setting_and_fold(_job_overrides(job_dir))
        setting = ",".join(rest) or "default"
        g = groups.setdefault(setting, Group(setting, rest))
        metrics_file = job_dir / "metrics.json"
        if not metrics_file.is_file():
            g.failed.append((fold, str(job_dir)))
            continue
        m = json.loads(metrics_file.read_text())
        g.folds[int(m["fold"])] = m
        g.job_dirs[int(m["fold"])] = job_dir
    return groups


def _stats(values: list[float]) -> dict[str, float]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "n": len(values)}


def _pooled(group: Group, level: str) -> tuple[list[str], np.ndarray] | None:
    total, classes = None, None
    for fold in sorted(group.job_dirs):
        path = group.job_dirs[fold] / "confusion_matrices.json"
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        if classes is not None and data["classes"] != classes:
            return None
        classes = data["classes"]
        if data.get(level) is None:  # e.g. PRNU decides per image only: no patch-level matrix
            return None
        total = np.asarray(data[level]) if total is None else total + np.asarray(data[level])
    return (classes, total) if total is not None else None


def _slug(setting: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", setting).strip("_")[:80] or "default"


def summarise(sweep_dir: str | Path) -> Metrics:
    """Write ``cv_summary.json`` / ``cv_summary.md`` and pooled confusion PNGs in ``sweep_dir``."""
    sweep_dir = Path(sweep_dir)
    groups = collect(sweep_dir)
    if not groups:
        raise FileNotFoundError(f"no job folders (with .hydra/) under {sweep_dir}")
    summary: dict[str, Any] = {"sweep_dir": str(sweep_dir), "groups": []}
    md = [f"# Cross-validation summary\n\nSweep: `{sweep_dir}`\n"]
    # File names carry only what tells the settings apart (e.g. model=tuama), not every shared override.
    models = [next(iter(g.folds.values()), {}).get("model") for g in groups.values()]
    labels = dict(zip(groups, variant_labels([g.overrides for g in groups.values()], models)))
    if len(set(labels.values())) < len(labels):  # not told apart by the short names: use the full settings
        labels = {s: s for s in groups}
    for g in groups.values():
        first = next(iter(g.folds.values()), {})
        n_folds = int(first.get("n_folds", 0))
        missing = sorted(set(range(n_folds)) - set(g.folds)) if n_folds else []
        entry: dict[str, Any] = {
            "setting": g.setting,
            "overrides": g.overrides,
            "task": first.get("task"),
            "data": first.get("data"),
            "model": first.get("model"),
            "n": len(g.folds),
            "n_folds": n_folds,
            "folds": sorted(g.folds),
            "missing_folds": missing,
            "failed_jobs": [{"fold": f, "dir": d} for f, d in g.failed],
            "metrics": {k: _stats([g.folds[f].get(k) for f in sorted(g.folds)]) for k in SUMMARY_KEYS},
            "per_fold": {
                str(f): {k: g.folds[f].get(k) for k in (*SUMMARY_KEYS, "n_test_images")} for f in sorted(g.folds)
            },
        }
        suffix = "" if len(groups) == 1 else f"_{_slug(labels[g.setting])}"
        for level in ("image", "patch"):
            pooled = _pooled(g, level)
            if pooled:
                classes, matrix = pooled
                name = f"cv_confusion_matrix_{level}{suffix}.png"
                plot_confusion_matrix(
                    matrix, classes, sweep_dir / name, f"{level} level, pooled over {len(g.folds)} folds"
                )
                entry[f"pooled_confusion_{level}"] = {"classes": classes, "matrix": matrix.tolist(), "png": name}
        summary["groups"].append(entry)
        md += _markdown(entry)
    (sweep_dir / "cv_summary.md").write_text("\n".join(md) + "\n")
    write_json(sweep_dir / "cv_summary.json", summary)
    log.info("cross-validation summary written to %s", sweep_dir / "cv_summary.md")
    return summary


def _markdown(e: dict[str, Any]) -> list[str]:
    cols = ("test/acc_patch", "test/acc_image", "test/acc_image_vote", "test/f1_macro_image")
    out = [
        f"## {e['task']} / {e['data']} / {e['model']}  (`{e['setting']}`)\n",
        f"{e['n']} of {e['n_folds']} folds finished.",
    ]
    if e["missing_folds"]:
        out.append(f"**Not in this summary:** folds {e['missing_folds']} (not run or failed).")
    for job in e["failed_jobs"]:
        out.append(f"**Failed job** (no metrics.json): fold {job['fold']} in `{job['dir']}`")
    out += [
        "",
        "| fold | test images | " + " | ".join(c.removeprefix("test/") for c in cols) + " |",
        "|---" * (len(cols) + 2) + "|",
    ]
    for fold, row in e["per_fold"].items():
        out.append(f"| {fold} | {row['n_test_images']} | " + " | ".join(_fmt(row.get(c)) for c in cols) + " |")
    stats = e["metrics"]
    out.append(
        "| **mean ± std** | | "
        + " | ".join(f"**{_fmt(stats[c]['mean'])} ± {_fmt(stats[c]['std'])}**" for c in cols)
        + " |"
    )
    if "pooled_confusion_image" in e:
        m = np.asarray(e["pooled_confusion_image"]["matrix"])
        out.append(
            f"\nPooled image-level accuracy: {int(np.trace(m))} / {int(m.sum())} = "
            f"{np.trace(m) / max(1, m.sum()):.3f}; confusion matrix: `{e['pooled_confusion_image']['png']}`"
        )
    return out + [""]


def _fmt(v: Any) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"
