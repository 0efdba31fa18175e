"""The library's catalogue: one SQLite database (``catalogue.sqlite``) holding every camera's metadata and index
code, the ingested photos' codes, and the library's settings.

Why SQLite: it is in the standard library, queryable by anyone (``sqlite3 LIB/catalogue.sqlite "select name,
device, n_photos from cameras"``), and transactional: a camera is in the library exactly when its row is
committed, so a killed enrolment leaves either the old catalogue or the new one. WAL mode lets any number of
readers (searches) run while one writer enrols; ``synchronous=FULL`` makes a commit survive power loss.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sci_lightning.errors import SCIConfigError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cameras (
    name TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    height INTEGER NOT NULL,
    width INTEGER NOT NULL,
    n_photos INTEGER NOT NULL,
    photos TEXT NOT NULL,          -- JSON [[path, sha256], ...]: the photos the fingerprint was estimated from
    source TEXT NOT NULL,          -- where the references came from (a case's data config, a folder)
    enrolled_at TEXT NOT NULL,     -- UTC, ISO 8601
    array TEXT NOT NULL,           -- the fingerprint's Zarr array under arrays/
    fp_sha256 TEXT NOT NULL,       -- SHA-256 of the fingerprint's float32 bytes (C order)
    code BLOB,                     -- packed sign bits of the index area (NULL: sensor smaller than the area)
    code_sha256 TEXT,
    quality TEXT                   -- JSON: photo count, scene leak, warnings (fingerprint/quality.py), NULL: older
);
CREATE TABLE IF NOT EXISTS photos (
    sha256 TEXT NOT NULL,          -- of the file (the residual store keys residuals by it: copies share one)
    path TEXT PRIMARY KEY,
    height INTEGER NOT NULL,
    width INTEGER NOT NULL,
    code BLOB,
    code_sha256 TEXT,
    ingested_at TEXT NOT NULL,
    size INTEGER NOT NULL,         -- file size and mtime when ingested: a rerun skips unchanged files by stat
    mtime_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS photos_by_sha256 ON photos (sha256);
"""

CAMERA_FIELDS = ("name", "device", "height", "width", "n_photos", "photos", "source", "enrolled_at", "array", "quality")


class Catalogue:
    """Connection to ``catalogue.sqlite``; every error of the database file becomes a :class:`SCIConfigError`
    naming the file and the fix."""

    def __init__(self, file: Path, create: bool) -> None:
        self.file = file
        if not create and not file.is_file():
            raise SCIConfigError(
                "library.path",
                f"{file.parent} is not a fingerprint library (no {file.name})",
                "enrol a camera first (python library.py action=enrol ...) or fix library.path",
            )
        with self._guard():
            self.db = sqlite3.connect(file, timeout=60, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            if create:
                with self.write():  # statement by statement: executescript() would commit on its own
                    for statement in _statements():
                        self.db.execute(statement)
            self.db.execute("SELECT count(*) FROM cameras").fetchone()
            self._migrate()

    def _migrate(self) -> None:
        """Columns added since a library was made (its rows keep NULL there); a read-only library stays as it is
        and reads NULL for them."""
        have = {r[1] for r in self.db.execute("PRAGMA table_info(cameras)").fetchall()}
        self.missing = set()
        for column, kind in (("quality", "TEXT"),):
            if column in have:
                continue
            try:
                with self.write():
                    self.db.execute(f"ALTER TABLE cameras ADD COLUMN {column} {kind}")
            except (sqlite3.OperationalError, SCIConfigError):
                self.missing.add(column)

    def select(self, fields: tuple[str, ...]) -> str:
        """The SQL column list for ``fields`` (NULL for a column an older, read-only library lacks)."""
        return ", ".join(f"NULL AS {f}" if f in self.missing else f for f in fields)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as err:
            raise SCIConfigError(
                "library.path",
                f"the catalogue {self.file} is damaged or not a library catalogue ({err})",
                "restore the library folder from a backup, or re-enrol the cameras into a new library.path",
            ) from None

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction (``BEGIN IMMEDIATE``: one writer at a time); committed only if the block completes."""
        with self._guard():
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._guard():
            return self.db.execute(sql, args).fetchall()

    def meta(self, key: str, default: Any = None) -> Any:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    @staticmethod
    def set_meta(db: sqlite3.Connection, key: str, value: Any) -> None:
        """Inside :meth:`write`: set one setting (JSON)."""
        db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value, sort_keys=True)))

    @staticmethod
    def bump_generation(db: sqlite3.Connection) -> None:
        """Inside :meth:`write`: the camera set changed (derived index files of older generations are stale)."""
        row = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        Catalogue.set_meta(db, "generation", (json.loads(row[0]) if row else 0) + 1)

    def close(self) -> None:
        self.db.close()


def _statements() -> list[str]:
    return [s.strip() for s in SCHEMA.split(";") if s.strip()]
