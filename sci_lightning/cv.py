"""Cross-validation summaries: fold results of a sweep -> mean ± std and pooled confusion matrices.

Runs at the end of every multirun (Hydra callback ``on_multirun_end``, which reads the jobs' files from the
sweep dir, so it works under every launcher), or by hand: ``python -m sci_lightning.cv SWEEP_DIR``.
Jobs are grouped by their overrides other than ``fold``: folds of different settings are never averaged together.
"""

from __future__ import annotations

import json
import logging
import math
import re
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from sci_lightning.reporting import plot_confusion_matrix, write_json

log = logging.getLogger(__name__)

SUMMARY_KEYS = ("test/acc_patch", "test/acc_image", "test/acc_image_vote", "test/acc_macro_image",
                "test/f1_macro_patch", "test/f1_macro_image", "test/loss")


@dataclass
class Group:
    """The folds of one setting (task/data/model/... combination) in a sweep."""

    setting: str
    folds: dict[int, dict[str, Any]] = field(default_factory=dict)  # fold -> metrics.json
    job_dirs: dict[int, Path] = field(default_factory=dict)
    failed: list[tuple[int | None, str]] = field(default_factory=list)  # (fold, job dir)


# Overrides that organise a sweep or change how it runs, never its numbers: not part of a variant's name (the
# model name is taken from metrics.json).
ORGANISING_KEYS = ("experiment", "method", "logger", "torch_threads", "trainer.enable_progress_bar",
                   "trainer.enable_model_summary", "data.cache_workers")


def variant_labels(settings: list[str], models: list[str | None] | None = None) -> list[str]:
    """Short names for settings: only the overrides whose values differ between them.

    ``models`` (each group's model name from its metrics.json) lets a CNN sweep and a PRNU sweep in one folder
    be told apart by model even where one of them has no ``model=`` override.
    """
    parsed = [{k.lstrip("+~"): v for k, v in (kv.split("=", 1) for kv in _split(s) if "=" in kv)}
              for s in settings]
    for p, model in zip(parsed, models or []):
        if model:
            p["model"] = model
        for key in ORGANISING_KEYS:
            p.pop(key, None)
    keys = sorted({k for p in parsed for k in p})
    differing = [k for k in keys if len({p.get(k) for p in parsed}) > 1]
    if not differing:
        return settings
    return [", ".join(f"{k.split('.')[-1]}={p.get(k, '—')}" for k in differing) for p in parsed]


def _split(setting: str) -> list[str]:
    """Split 'a=1,b=[1,2],c=x' on the commas that are not inside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in setting:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur] if cur else parts


def _job_overrides(job_dir: Path) -> list[str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    return list(yaml.safe_load(path.read_text()) or []) if path.is_file() else []


def _setting_and_fold(overrides: list[str]) -> tuple[str, int | None]:
    fold, rest = None, []
    for ov in overrides:
        key, _, value = ov.partition("=")
        if key.lstrip("+~") == "fold":
            fold = int(value)
        elif not key.startswith("hydra"):
            rest.append(ov)
    return ",".join(sorted(rest)) or "default", fold


def collect(sweep_dir: Path) -> dict[str, Group]:
    """Every job dir under ``sweep_dir`` (those holding ``.hydra/``), grouped by setting."""
    groups: dict[str, Group] = {}
    for hydra_dir in sorted(sweep_dir.glob("**/.hydra")):
        job_dir = hydra_dir.parent
        if job_dir == sweep_dir:
            continue
        setting, fold = _setting_and_fold(_job_overrides(job_dir))
        g = groups.setdefault(setting, Group(setting))
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


def summarise(sweep_dir: str | Path) -> dict[str, Any]:
    """Write ``cv_summary.json`` / ``cv_summary.md`` and pooled confusion PNGs in ``sweep_dir``."""
    sweep_dir = Path(sweep_dir)
    groups = collect(sweep_dir)
    if not groups:
        raise FileNotFoundError(f"no job folders (with .hydra/) under {sweep_dir}")
    summary: dict[str, Any] = {"sweep_dir": str(sweep_dir), "groups": []}
    md = [f"# Cross-validation summary\n\nSweep: `{sweep_dir}`\n"]
    # File names carry only what tells the settings apart (e.g. model=tuama), not every shared override.
    models = [next(iter(g.folds.values()), {}).get("model") for g in groups.values()]
    labels = dict(zip(groups, variant_labels(list(groups), models)))
    if len(set(labels.values())) < len(labels):  # not told apart by the short names: use the full settings
        labels = {s: s for s in groups}
    for g in groups.values():
        first = next(iter(g.folds.values()), {})
        n_folds = int(first.get("n_folds", 0))
        missing = sorted(set(range(n_folds)) - set(g.folds)) if n_folds else []
        entry: dict[str, Any] = {
            "setting": g.setting, "task": first.get("task"), "data": first.get("data"), "model": first.get("model"),
            "n": len(g.folds), "n_folds": n_folds, "folds": sorted(g.folds), "missing_folds": missing,
            "failed_jobs": [{"fold": f, "dir": d} for f, d in g.failed],
            "metrics": {k: _stats([g.folds[f].get(k) for f in sorted(g.folds)]) for k in SUMMARY_KEYS},
            "per_fold": {str(f): {k: g.folds[f].get(k) for k in (*SUMMARY_KEYS, "n_test_images")}
                         for f in sorted(g.folds)},
        }
        suffix = "" if len(groups) == 1 else f"_{_slug(labels[g.setting])}"
        for level in ("image", "patch"):
            pooled = _pooled(g, level)
            if pooled:
                classes, matrix = pooled
                name = f"cv_confusion_matrix_{level}{suffix}.png"
                plot_confusion_matrix(matrix, classes, sweep_dir / name,
                                      f"{level} level, pooled over {len(g.folds)} folds")
                entry[f"pooled_confusion_{level}"] = {"classes": classes, "matrix": matrix.tolist(), "png": name}
        summary["groups"].append(entry)
        md += _markdown(entry)
    (sweep_dir / "cv_summary.md").write_text("\n".join(md) + "\n")
    write_json(sweep_dir / "cv_summary.json", summary)
    log.info("cross-validation summary written to %s", sweep_dir / "cv_summary.md")
    return summary


def _markdown(e: dict[str, Any]) -> list[str]:
    cols = ("test/acc_patch", "test/acc_image", "test/acc_image_vote", "test/f1_macro_image")
    out = [f"## {e['task']} / {e['data']} / {e['model']}  (`{e['setting']}`)\n",
           f"{e['n']} of {e['n_folds']} folds finished."]
    if e["missing_folds"]:
        out.append(f"**Not in this summary:** folds {e['missing_folds']} (not run or failed).")
    for job in e["failed_jobs"]:
        out.append(f"**Failed job** (no metrics.json): fold {job['fold']} in `{job['dir']}`")
    out += ["", "| fold | test images | " + " | ".join(c.removeprefix("test/") for c in cols) + " |",
            "|---" * (len(cols) + 2) + "|"]
    for fold, row in e["per_fold"].items():
        out.append(f"| {fold} | {row['n_test_images']} | " + " | ".join(_fmt(row.get(c)) for c in cols) + " |")
    stats = e["metrics"]
    out.append("| **mean ± std** | | " + " | ".join(f"**{_fmt(stats[c]['mean'])} ± {_fmt(stats[c]['std'])}**"
                                               for c in cols) + " |")
    if "pooled_confusion_image" in e:
        m = np.asarray(e["pooled_confusion_image"]["matrix"])
        out.append(f"\nPooled image-level accuracy: {int(np.trace(m))} / {int(m.sum())} = "
                   f"{np.trace(m) / max(1, m.sum()):.3f}; confusion matrix: `{e['pooled_confusion_image']['png']}`")
    return out + [""]


def _fmt(v: Any) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def log_summary_runs(summary: dict[str, Any], wandb_cfg: DictConfig) -> list[str]:
    """One W&B run per setting, in the sweep's group (``job_type=cv-summary``), carrying the fold table, the
    mean ± std and the pooled confusion matrices. Returns the offline run dirs (to sync later)."""
    import wandb

    from sci_lightning.loggers import sweep_group, wandb_settings

    settings = wandb_settings(wandb_cfg)
    if settings is None:
        return []
    sweep_dir = Path(summary["sweep_dir"])
    offline = []
    for e in summary["groups"]:
        run = wandb.init(project=settings["project"], dir=str(sweep_dir), mode=settings["mode"],
                         group=sweep_group(str(sweep_dir), e["task"], e["data"], e["model"]),
                         job_type="cv-summary", name=f"cv-{e['task']}-{e['data']}-{e['model']}",
                         config={"setting": e["setting"], "folds": e["folds"], "n_folds": e["n_folds"]}, reinit=True)
        try:
            cols = ["fold", *SUMMARY_KEYS]
            table = wandb.Table(columns=cols, data=[[int(f), *[row.get(k) for k in SUMMARY_KEYS]]
                                                   for f, row in e["per_fold"].items()])
            run.log({"cv/folds": table, **{f"cv/{lvl}_confusion": wandb.Image(str(sweep_dir / e[f"pooled_confusion_{lvl}"]["png"]))
                                           for lvl in ("image", "patch") if f"pooled_confusion_{lvl}" in e}})
            run.summary.update({f"cv/{k}_{stat}": v[stat] for k, v in e["metrics"].items() for stat in ("mean", "std")})
            run.summary.update({"cv/n_folds_finished": e["n"], "cv/missing_folds": str(e["missing_folds"])})
            if settings["mode"] == "offline":
                offline.append(str(Path(run.dir).parent))
        finally:
            run.finish()
    return offline


class CVSummaryCallback(Callback):
    """Hydra callback: summarise the sweep's folds when a multirun ends (in the launching process)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            summary = summarise(sweep_dir)
        except FileNotFoundError as err:
            log.warning("no cross-validation summary: %s", err)
            return
        wandb_cfg = (config.get("logger") or {}).get("wandb")
        if wandb_cfg and log_summary_runs(summary, wandb_cfg):
            log.info("W&B runs of this sweep were saved offline. Upload all of them with:\n    wandb sync %s",
                     f"{sweep_dir}/wandb/offline-run-* {sweep_dir}/*/wandb/offline-run-*")


def sweep_dir_cli(argv: list[str], usage: str, write: Callable[[str], Path]) -> int:
    """The shared shape of ``python -m sci_lightning.{cv,report} SWEEP_DIR``: write, then print the markdown."""
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(usage)
        return 2
    try:
        path = write(argv[0])
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(path.read_text())
    return 0


def _write_summary(sweep_dir: str) -> Path:
    summarise(sweep_dir)
    return Path(sweep_dir) / "cv_summary.md"


def main(argv: list[str]) -> int:
    usage = "usage: python -m sci_lightning.cv SWEEP_DIR   (writes cv_summary.json/.md and pooled matrices)"
    return sweep_dir_cli(argv, usage, _write_summary)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main(sys.argv[1:]))
