"""Where W&B runs go: online when it can be, offline by itself when not, disabled on request.

``WANDB_MODE`` is honoured as set. When it is not set and no API key can be found (``WANDB_API_KEY`` or a
``~/.netrc`` entry for the W&B host), runs go offline without touching the network, and the command that
uploads them later is printed when they end. Plain Python (no Lightning): the CNN's Lightning loggers, the
sweep summaries and methods without Lightning all decide the same way.
"""

from __future__ import annotations

import json
import logging
import netrc
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)


def wandb_api_key_available() -> bool:
    """True if W&B could authenticate: an API key in the environment or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def sweep_group(sweep_dir: str, task: str, data: str, model: str) -> str:
    """The W&B group of a sweep: its settings and the sweep's time stamp (the sweep dir's name)."""
    return f"{task}-{data}-{model}-{Path(sweep_dir).name}"


def wandb_settings(offline: bool, project: str | None) -> dict[str, str] | None:
    """Project and mode (online/offline) a W&B logger's settings resolve to here, or None when disabled."""
    decided = offline_decision(offline)
    if decided is None:
        return None
    return {"project": project or "sci-lightning", "mode": "offline" if decided else "online"}


def offline_decision(configured_offline: bool) -> bool | None:
    """Offline (True), online (False) or disabled (None), from WANDB_MODE, the config and the API key."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode == "disabled":
        return None
    if mode in ("offline", "dryrun"):
        return True
    if mode != "online" and not configured_offline and not wandb_api_key_available():
        log.warning("W&B: no API key found (WANDB_API_KEY or `wandb login`), logging offline instead")
        return True
    return configured_offline


def confusion_chart(classes: list[str], matrix: list[list[int]], title: str) -> Any:
    """A confusion matrix as W&B's own chart (the table behind ``wandb.plot.confusion_matrix``, built from the
    counts: that function wants every photo's label, and the runs keep only the matrix)."""
    import wandb

    rows = [[classes[i], classes[j], int(n)] for i, row in enumerate(matrix) for j, n in enumerate(row)]
    table = wandb.Table(columns=["Actual", "Predicted", "nPredictions"], data=rows)
    fields = {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"}
    return wandb.plot_table("wandb/confusion_matrix/v1", table, fields, {"title": title})


def confusion_charts(matrices: Path, prefix: str = "") -> dict[str, Any]:
    """``{prefix}confusion_matrix_<level>_chart``: W&B charts of a run's ``confusion_matrices.json`` (every level
    it holds a matrix for; none when the file is absent), logged beside the PNGs so the dashboard can filter and
    compare them."""
    if not matrices.is_file():
        return {}
    data = json.loads(matrices.read_text())
    return {
        f"{prefix}confusion_matrix_{level}_chart": confusion_chart(data["classes"], data[level], f"{level} level")
        for level in ("patch", "image")
        if data.get(level)
    }


@dataclass(frozen=True)
class RunLog:
    """Where one W&B run of a method without Lightning goes (PRNU, the matcher, the library): built by the
    wiring layer from the run's ``logger.wandb`` settings (:func:`sci_lightning.methods.wiring.run_log_of`)."""

    project: str
    mode: str  # online | offline
    save_dir: Path
    name: str
    group: str | None
    job_type: str | None
    config: dict[str, Any]  # the run's composed config, as plain data


def log_run(
    run_log: RunLog | None, metrics: Mapping[str, Any], images: Mapping[str, Path], matrices: Path | None = None
) -> str | None:
    """One W&B run: ``run_log``'s identity and config, the final ``metrics`` (summary) and figures; nothing
    when ``run_log`` is None (W&B disabled, or ``logger=csv`` / ``none``).

    The run is finished before returning (multiruns never merge runs). ``matrices``: the run's
    ``confusion_matrices.json``, logged as W&B charts too. Returns the offline run dir, if any (the sync command
    is logged).
    """
    if run_log is None:
        return None
    import wandb

    run_log.save_dir.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=run_log.project,
        dir=str(run_log.save_dir),
        mode=run_log.mode,
        name=run_log.name,
        group=run_log.group,
        job_type=run_log.job_type,
        config=run_log.config,
        reinit="finish_previous",
    )
    try:
        run.log({key: wandb.Image(str(path)) for key, path in images.items() if Path(path).is_file()})
        if matrices is not None:
            run.log(confusion_charts(matrices))
        run.summary.update({k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) and v is not None})
        offline = str(Path(run.dir).parent) if run_log.mode == "offline" else None
    finally:
        run.finish()
    if offline:
        log.info("W&B run saved offline. Upload it later with:\n    wandb sync %s", offline)
    return offline
