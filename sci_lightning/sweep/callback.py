"""Hydra callback: summarise a sweep's folds when a multirun ends, and log one W&B run per setting.

``on_multirun_end`` runs in the launching process and reads the jobs' files from the sweep dir, so it works
under every launcher (``on_job_end`` does not run in the parent under the joblib/submitit launchers).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from sci_lightning.sweep.summary import SUMMARY_KEYS, summarise
from sci_lightning.tracking import confusion_chart, sweep_group, wandb_settings

log = logging.getLogger(__name__)


def log_summary_runs(summary: dict[str, Any], wandb_cfg: DictConfig) -> list[str]:
    """One W&B run per setting, in the sweep's group (``job_type=cv-summary``), carrying the fold table, the
    mean ± std and the pooled confusion matrices. Returns the offline run dirs (to sync later)."""
    import wandb

    settings = wandb_settings(bool(wandb_cfg.get("offline")), wandb_cfg.get("project"))
    if settings is None:
        return []
    sweep_dir = Path(summary["sweep_dir"])
    offline = []
    for e in summary["groups"]:
        run = wandb.init(
            project=settings["project"],
            dir=str(sweep_dir),
            mode=settings["mode"],
            group=sweep_group(str(sweep_dir), e["task"], e["data"], e["model"]),
            job_type="cv-summary",
            name=f"cv-{e['task']}-{e['data']}-{e['model']}",
            config={"setting": e["setting"], "folds": e["folds"], "n_folds": e["n_folds"]},
            reinit="finish_previous",
        )
        try:
            cols = ["fold", *SUMMARY_KEYS]
            table = wandb.Table(
                columns=cols, data=[[int(f), *[row.get(k) for k in SUMMARY_KEYS]] for f, row in e["per_fold"].items()]
            )
            run.log(
                {
                    "cv/folds": table,
                    **{
                        f"cv/{lvl}_confusion": wandb.Image(str(sweep_dir / e[f"pooled_confusion_{lvl}"]["png"]))
                        for lvl in ("image", "patch")
                        if f"pooled_confusion_{lvl}" in e
                    },
                    **{
                        f"cv/{lvl}_confusion_chart": confusion_chart(
                            e[f"pooled_confusion_{lvl}"]["classes"],
                            e[f"pooled_confusion_{lvl}"]["matrix"],
                            f"{lvl} level, pooled over {e['n']} folds",
                        )
                        for lvl in ("image", "patch")
                        if f"pooled_confusion_{lvl}" in e
                    },
                }
            )
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
            log.info(
                "W&B runs of this sweep were saved offline. Upload all of them with:\n    wandb sync %s",
                f"{sweep_dir}/wandb/offline-run-* {sweep_dir}/*/wandb/offline-run-*",
            )
