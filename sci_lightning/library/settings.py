"""The ``library`` config group (``library.py`` and the desk)."""

from __future__ import annotations

from dataclasses import dataclass

from sci_lightning.errors import require
from sci_lightning.settings import schema_of, setting


@dataclass(frozen=True)
class LibrarySettings:
    """Where the library is and how it enrols, indexes and searches."""

    path: str | None = setting(None, "the library folder (created by the first enrolment); required")
    index_side: int = setting(
        1024, "px side of the central square whose sign bits are the index (fixed at creation; a multiple of 8)"
    )
    camera: str | None = setting(
        None, "the camera to enrol (images=DIR, or one of a case's), show, remove, export, repair or reverse-search"
    )
    device: str | None = setting(None, "enrol with images=DIR: the device model (default: the name); list: filter")
    shortlist: int = setting(20, "search: the cameras (reverse: photos) with the best index scores verified by PCE")
    min_z: float | None = setting(4.0, "... plus every one whose index score z reaches this (null hits: z ~ N(0, 1))")
    top_k: int = setting(5, "search: cameras listed per photo")
    exhaustive: bool = setting(False, "verify every camera (or photo) by PCE, no index")
    scheduler: str = setting(
        "local", "enrol / ingest / reverse: local (Dask) | single (this process) | tcp://HOST:8786"
    )
    workers: int = setting(2, "scheduler=local: worker processes")
    replace: bool = setting(False, "enrol: re-enrol a camera already in the library from other photos")
    calibrate: bool = setting(True, "enrol from a case: fit the decision rule on its validation photos and keep it")
    to: str | None = setting(None, "export: the .npz file (default: <output dir>/<camera>.npz)")

    def __post_init__(self) -> None:
        side = self.index_side
        require(side >= 64 and side % 8 == 0, "library.index_side", f"is {side}", "use a multiple of 8, e.g. 512")
        require(self.shortlist >= 1, "library.shortlist", f"is {self.shortlist}", "use 1 or more, e.g. 20")
        require(self.top_k >= 1, "library.top_k", f"is {self.top_k}", "use 1 or more, e.g. 5")
        require(
            self.scheduler in ("local", "single") or "://" in self.scheduler,
            "library.scheduler",
            f"is {self.scheduler!r}",
            "use local (a Dask local cluster), single (this process) or a scheduler address tcp://HOST:8786",
        )
        require(self.workers >= 1, "library.workers", f"is {self.workers}", "use 1 or more")


LibrarySettingsSchema = schema_of(LibrarySettings)  # what Hydra composes the group onto (sci_lightning.settings)
