"""The library's records as its functions hand them back: a camera's catalogue row, a check of the whole store,
and the outcomes of enrolment, repair and ingestion. TypedDicts (not dataclasses) because each is also printed
and logged as the action's JSON outcome and read back by the desk and the tests by key, as before."""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np


class CameraRow(TypedDict, total=False):
    """One camera of ``catalogue.sqlite`` (:data:`~sci_lightning.library.catalogue.CAMERA_FIELDS`, decoded)."""

    name: str
    device: str
    height: int  # its fingerprint's frame, px
    width: int
    n_photos: int  # reference photos it was estimated from
    photos: list[tuple[str, str]]  # (path, SHA-256) of each
    source: str  # where they came from (a folder, a case)
    enrolled_at: str  # UTC, ISO 8601
    array: str  # its fingerprint's folder under arrays/
    quality: dict[str, Any] | None  # the fingerprint's quality (photo count, scene leak, warnings)
    indexed: bool  # has an index code
    fp_sha256: str  # the stored fingerprint's checksum (one camera's row only)


class LibraryCheck(TypedDict):
    """``action=verify``: everything checked (SQLite, every fingerprint's SHA-256 and CRC-32C, the index)."""

    n_cameras: int
    problems: list[str]  # each with its repair where one exists
    damaged: list[str]  # cameras whose stored fingerprint is damaged
    orphan_arrays: list[str]  # arrays no camera names (left by an interrupted enrolment)


class IngestedPhoto(TypedDict, total=False):
    """One photo ingested by a worker: its index code and what the catalogue keeps; ``reason`` if unreadable."""

    path: str
    sha256: str
    height: int
    width: int
    code: bytes | None  # its index code (None: too small for one)
    stat: list[int]  # [size, mtime_ns], to skip it when unchanged
    reason: str


class Estimate(TypedDict, total=False):
    """One camera's fingerprint estimated by a worker; ``reason`` if none of its photos is readable."""

    name: str
    device: str
    fingerprint: np.ndarray  # float32, the frame's size
    photos: list[tuple[str, str]]  # (path, SHA-256) it was estimated from
    quality: dict[str, Any]
    reason: str


class Enrolment(TypedDict):
    """``action=enrol``'s outcome."""

    enrolled: list[str]  # the cameras enrolled (or rebuilt) now
    already: list[str]  # enrolled before from the same photos: left as they are
    skipped: list[dict[str, str]]  # {"name", "reason"}: cameras none of whose photos could be read


class Repair(TypedDict):
    """``action=repair``'s outcome: one camera rebuilt from its stored source photos."""

    camera: str
    was_damaged: bool
    same_as_enrolled: bool  # the rebuilt fingerprint's SHA-256 is the catalogue's


class Ingestion(TypedDict):
    """``action=ingest``'s outcome."""

    n_photos: int
    n_ingested: int
    n_skipped: int
    skipped: list[dict[str, str]]  # {"path", "reason"}
    seconds: dict[str, float]  # where the time went
