"""``python library.py action=cluster images=DIR``: which photos share a camera, with no reference photos.

Each photo's residual (the residual store's, so a photo is denoised once) is cut to its central square; every pair
that could share a sensor is compared at zero shift in each turn (:mod:`.compare`), linked when it clears the bar
the run's own null sets, grouped by average linkage, and grown by cluster fingerprints (:mod:`.groups`). Writes
``clusters.csv``, ``pairs.csv``, ``left_alone.csv``, ``cluster_report.html`` and ``metrics.json`` (:mod:`.report`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from sci_lightning.clustering.compare import compare_pairs, fit_pair_null, scene_checked
from sci_lightning.clustering.groups import average_linkage, fingerprint_rounds, sparse_average_linkage
from sci_lightning.clustering.outcome import Clustering, build_outcome
from sci_lightning.clustering.photos import Photo, load_photo
from sci_lightning.clustering.report import write_outputs
from sci_lightning.clustering.settings import ClusterSettings
from sci_lightning.clustering.shortlist import shortlist_pairs
from sci_lightning.clustering.truth import scores_against
from sci_lightning.data.selection import questioned_files
from sci_lightning.errors import SCIConfigError
from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.library.engine import run_tasks
from sci_lightning.outputs import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterJob:
    """One clustering run's inputs, typed (built by :mod:`sci_lightning.run.library`)."""

    settings: ClusterSettings
    residual: dict[str, object]  # the residual's settings (prnu.*)
    images: str
    image_extensions: tuple[str, ...]
    output_dir: Path
    cache_dir: Path | None = None
    scheduler: str = "local"  # library.scheduler: where residuals are made
    workers: int = 2
    seed: int = 0


def cluster(job: ClusterJob, progress: Callable[[int, int], None] | None = None) -> Clustering:
    """The clustering of ``job.images`` (no files written); ``progress(done, total)`` after each photo read."""
    s = job.settings
    paths = [str(p) for p in questioned_files(job.images, job.image_extensions)]
    store = ResidualStore(job.cache_dir, job.residual)
    t0 = time.perf_counter()
    loaded: list[Photo | str] = [""] * len(paths)
    fn = partial(load_photo, store=store, side=s.side, min_side=s.min_side)
    for done, (i, got) in enumerate(run_tasks(fn, paths, job.scheduler, job.workers, "photos"), 1):
        loaded[i] = got
        if progress is not None:
            progress(done, len(paths))
    photos = [p for p in loaded if isinstance(p, Photo)]
    left = {paths[i]: str(got) for i, got in enumerate(loaded) if isinstance(got, str)}
    for path, reason in left.items():
        log.warning("left alone: %s (%s)", path, reason)
    t1 = time.perf_counter()
    shortlisted = len(photos) >= s.shortlist_from
    pairs, samples = (shortlist_pairs if shortlisted else compare_pairs)(photos, s, job.seed)
    null = fit_pair_null(samples)
    bar = math.log10(s.false_links)
    log10_pfas = [null.log10_pfa(p.pce, samples.hypotheses) for p in pairs]
    linked, scenes = scene_checked(photos, [p for p, lp in zip(pairs, log10_pfas, strict=True) if lp <= bar])
    if shortlisted:  # only some pairs compared: the others are unknown, not unlinked
        labels = sparse_average_linkage(len(photos), pairs, linked, s.min_link_fraction)
    else:
        labels = average_linkage(len(photos), linked, s.min_link_fraction)
    t2 = time.perf_counter()
    labels, joined, fp_hypotheses, merges = fingerprint_rounds(photos, labels, linked, s)
    t3 = time.perf_counter()
    return build_outcome(
        photos=photos,
        left=left,
        pairs=pairs,
        log10_pfas=log10_pfas,
        scenes=scenes,
        labels=np.asarray(labels),
        joined=joined,
        null=null,
        hypotheses=samples.hypotheses,
        fp_hypotheses=fp_hypotheses,
        settings=s,
        seconds={"residuals": t1 - t0, "pairs": t2 - t1, "fingerprints": t3 - t2},
        merges=merges,
        shortlisted=shortlisted,
    )


def cluster_outcome(job: ClusterJob, progress: Callable[[int, int], None] | None = None) -> tuple[Clustering, Metrics]:
    """``action=cluster``: the clustering, its files, and (with ``cluster.truth``) its scores; the typed result
    and the metrics (the desk shows the first)."""
    if not job.images:
        raise SCIConfigError("images", "is not set", "pass images=DIR (the photos to group)")
    result = cluster(job, progress)
    scores = scores_against(result, job.settings.truth, job.images) if job.settings.truth else {}
    metrics = write_outputs(result, job.output_dir, scores)
    log.info(
        "%d photos: %d clusters, %d left alone (%d unreadable or too small); %d pairs compared, %d linked; "
        "expected false links <= %s -> %s",
        result.n_photos,
        result.n_clusters,
        result.n_alone,
        len(result.left),
        len(result.pairs),
        len(result.linked),
        f"{job.settings.false_links:.2g}",
        job.output_dir / "cluster_report.html",
    )
    return result, metrics


def cluster_action(job: ClusterJob) -> Metrics:
    """``action=cluster`` (:func:`cluster_outcome`): its metrics."""
    return cluster_outcome(job)[1]
