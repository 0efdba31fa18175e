"""What one library action works on, typed: the settings of the groups it reads, where its photos are and where
its files go. Built from the composed config once, by the run layer (:func:`sci_lightning.run.library.library_job`);
the desk varies it per job (:meth:`LibraryJob.varied`). Nothing in the library reads a config."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sci_lightning.data.selection import Selection
from sci_lightning.fingerprint.scoring import Search
from sci_lightning.fingerprint.settings import PrnuSettings
from sci_lightning.forensic.settings import VerdictSettings
from sci_lightning.library.settings import LibrarySettings
from sci_lightning.tracking import RunLog


@dataclass(frozen=True)
class CaseSource:
    """A case's photos to enrol from (``data=...`` without ``images=``): its name and how to select them."""

    name: str
    select: Callable[[], Selection]


@dataclass(frozen=True)
class LibraryJob:
    """One library action's inputs."""

    library: LibrarySettings
    prnu: PrnuSettings
    verdict: VerdictSettings
    search: Search  # the geometry search, stopping at prnu.false_alarm (the library's own bar replaces it)
    output_dir: Path  # metrics.json, the reports, the CSVs
    cache_dir: Path | None = None  # residuals kept there (None: prnu.residual_cache=false)
    images: str | None = None  # images=DIR: the photos to enrol, ingest, search or reverse-search
    photos: tuple[str, ...] = ()  # enrol: these photos as one camera (a cluster's members), instead of images=
    photos_source: str = ""  # where ``photos`` come from (the catalogue's record of the enrolment)
    image_extensions: tuple[str, ...] = ()
    case: CaseSource | None = None
    seed: int = 0
    run_log: RunLog | None = None  # the W&B run of a search

    def varied(self, images: str | None, output_dir: Path, **library: Any) -> LibraryJob:
        """This job on other photos, writing elsewhere, with ``library`` settings changed (the desk's jobs)."""
        return replace(self, images=images, output_dir=output_dir, library=replace(self.library, **library))

    @property
    def path(self) -> Path:
        """The library folder (``library.path``, ``~`` expanded)."""
        return Path(os.path.expanduser(str(self.library.path)))

    def out(self) -> Path:
        """The output folder, created."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        return self.output_dir
