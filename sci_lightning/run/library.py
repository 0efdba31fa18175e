"""``python library.py action=...``: validate the config (``LibrarySchema``), turn it into one typed
:class:`~sci_lightning.library.job.LibraryJob` (:func:`library_job`), then run the action
(:mod:`sci_lightning.library.actions`, usable from Python the same way)."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from omegaconf import DictConfig

from sci_lightning.clustering.action import ClusterJob, cluster_action
from sci_lightning.clustering.report import cluster_members
from sci_lightning.clustering.settings import ClusterSettings
from sci_lightning.forensic.settings import VerdictSettings
from sci_lightning.library.actions import ACTIONS
from sci_lightning.library.job import CaseSource, LibraryJob
from sci_lightning.library.settings import LibrarySettings
from sci_lightning.methods.wiring import cache_dir, prnu_settings, run_log_of, search_of, selection_of
from sci_lightning.outputs import Metrics
from sci_lightning.run.config import validate
from sci_lightning.settings import settings_from


def run(cfg: DictConfig) -> Metrics:
    """The action ``cfg.action`` of conf/library.yaml; returns what its ``metrics.json`` holds."""
    validate(cfg, "library")
    if cfg.action in OWN_JOB_ACTIONS:
        return OWN_JOB_ACTIONS[str(cfg.action)](cfg)
    return ACTIONS[str(cfg.action)](library_job(cfg))


def _cluster(cfg: DictConfig) -> Metrics:
    return cluster_action(cluster_job(cfg))


def cluster_job(cfg: DictConfig) -> ClusterJob:
    """What ``action=cluster`` works on, from the composed, validated config."""
    lib = settings_from(LibrarySettings, cfg.library)
    return ClusterJob(
        settings=settings_from(ClusterSettings, cfg.cluster),
        residual=prnu_settings(cfg).residual,
        images=str(cfg.images),
        image_extensions=tuple(cfg.get("image_extensions") or ()),
        output_dir=Path(str(cfg.paths.output_dir)),
        cache_dir=cache_dir(cfg),
        scheduler=lib.scheduler,
        workers=lib.workers,
        seed=int(cfg.get("seed", 0)),
    )


def library_job(cfg: DictConfig) -> LibraryJob:
    """What a library action (or the desk) works on, from the composed, validated config: the settings of the
    groups it reads, ``images=``, the case of ``data=`` (enrolment without ``images=``), the output and cache
    folders and the W&B run."""
    data = cfg.get("data")
    case = CaseSource(str(data.name), partial(selection_of, cfg, os.cpu_count() or 1)) if data else None
    clusters = settings_from(ClusterSettings, cfg.cluster) if cfg.get("cluster") else None
    photos, photos_source = (), ""
    if cfg.action == "enrol" and clusters is not None and clusters.csv:
        photos = tuple(cluster_members(clusters.csv, int(clusters.id)))
        photos_source = f"cluster {clusters.id} of {Path(clusters.csv).expanduser().resolve()}"
    return LibraryJob(
        library=settings_from(LibrarySettings, cfg.library),
        prnu=prnu_settings(cfg),
        verdict=settings_from(VerdictSettings, cfg.verdict),
        search=search_of(cfg),
        output_dir=Path(str(cfg.paths.output_dir)),
        cache_dir=cache_dir(cfg),
        images=str(cfg.images) if cfg.get("images") else None,
        photos=photos,
        photos_source=photos_source,
        image_extensions=tuple(cfg.get("image_extensions") or ()),
        case=case,
        seed=int(cfg.get("seed", 0)),
        run_log=run_log_of(cfg, "library"),
    )


# actions that take their own typed job rather than a LibraryJob (they need no library)
OWN_JOB_ACTIONS = {"cluster": _cluster}
