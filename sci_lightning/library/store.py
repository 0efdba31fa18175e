"""A persistent camera fingerprint library: enrol once, search many times.

Layout of ``LIB/`` (``library.path``)::

    catalogue.sqlite        cameras, their metadata and index codes, ingested photos, settings (catalogue.py)
    arrays/<id>.zarr        one float32 fingerprint per camera: Zarr v3, 1024 px chunks, zstd, CRC-32C per chunk
    index/codes-g<N>.npy    the packed codes of generation N of the camera set (derived; rebuilt when stale)

Why Zarr for the fingerprints (not HDF5): each chunk is its own file, so a fingerprint is written under a
temporary name and renamed into place whole, and a crash cannot damage another camera's data, where one HDF5
file shared by all cameras can be left unreadable by a killed writer. Chunks carry a CRC-32C; every read of a
fingerprint is also checked against the SHA-256 in its catalogue row.

**Atomicity.** A camera exists when its catalogue row is committed, and the row is committed only after its
array is complete. A killed enrolment leaves at most an array no row names; :meth:`FingerprintLibrary.gc`
removes those (the first enrolment after opening the library calls it). Removal deletes the row first, then the array.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import shutil
import time
import uuid
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from sci_lightning.errors import SCIConfigError
from sci_lightning.forensic.rules import Rule
from sci_lightning.library.catalogue import CAMERA_FIELDS, Catalogue
from sci_lightning.library.index import has_code, sign_code
from sci_lightning.library.records import CameraRow, LibraryCheck

log = logging.getLogger(__name__)

LIBRARY_VERSION = 1
CHUNK = 1024
GC_AGE_S = 3600  # an unreferenced array younger than this may belong to an enrolment still running elsewhere


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def array_sha256(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()


def _cli(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FingerprintLibrary:
    """Open (or, with ``create=True``, create) the library at ``path``.

    ``residual`` (the ``prnu`` residual settings) and ``side`` (``library.index_side``) are fixed when the
    library is created; opening it with other residual settings is refused (fingerprints and residuals made with
    different denoisers do not correlate as they should).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        create: bool = False,
        residual: dict[str, Any] | None = None,
        side: int | None = None,
    ) -> None:
        self.path = Path(os.path.expanduser(str(path)))
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / "arrays").mkdir(exist_ok=True)
            (self.path / "index").mkdir(exist_ok=True)
        self.cat = Catalogue(self.path / "catalogue.sqlite", create)
        self._collected = False
        if self.cat.meta("version") is None:
            if not create or residual is None or side is None:
                raise SCIConfigError("library.path", f"{self.path} has an empty catalogue", "enrol a camera first")
            with self.cat.write() as db:
                for key, value in (
                    ("version", LIBRARY_VERSION),
                    ("residual", residual),
                    ("index_side", side),
                    ("created_at", now_utc()),
                    ("generation", 0),
                ):
                    Catalogue.set_meta(db, key, value)
        self.residual: dict[str, Any] = self.cat.meta("residual")
        self.side: int = int(self.cat.meta("index_side"))
        if self.cat.meta("version") != LIBRARY_VERSION:
            raise SCIConfigError(
                "library.path", f"{self.path} is library version {self.cat.meta('version')}", "use a matching release"
            )
        if residual is not None and {k: residual[k] for k in self.residual} != self.residual:
            raise SCIConfigError(
                "prnu",
                f"{self.path} was built with the residual settings {self.residual}, not {residual}",
                "search with the library's settings: "
                + " ".join(
                    f"prnu.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in self.residual.items()
                ),
            )

    # ---- cameras -----------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return [r[0] for r in self.cat.query("SELECT name FROM cameras ORDER BY name")]

    def cameras(self) -> list[dict[str, Any]]:
        """Every camera's metadata (no arrays), by name."""
        rows = self.cat.query(f"SELECT {self.cat.select(CAMERA_FIELDS)}, code IS NOT NULL FROM cameras ORDER BY name")
        return [self._row(r) for r in rows]

    def camera(self, name: str) -> CameraRow:
        rows = self.cat.query(
            f"SELECT {self.cat.select(CAMERA_FIELDS)}, code IS NOT NULL FROM cameras WHERE name = ?", (str(name),)
        )
        if not rows:
            known = self.names()
            raise SCIConfigError(
                "library.camera",
                f"{name!r} is not in {self.path} ({len(known)} cameras: {', '.join(known[:10])}"
                + (", ..." if len(known) > 10 else "")
                + ")",
                "use python library.py action=list to see the names",
            )
        row = self._row(rows[0])
        # the stored fingerprint's checksum, for a camera's page (the desk showed it empty: not a catalogue field)
        row["fp_sha256"] = self.cat.query("SELECT fp_sha256 FROM cameras WHERE name = ?", (str(name),))[0][0]
        return row

    @staticmethod
    def _row(r: tuple) -> CameraRow:
        row: CameraRow = dict(zip(CAMERA_FIELDS, r[: len(CAMERA_FIELDS)]))  # type: ignore[assignment]
        row["photos"] = json.loads(row["photos"])
        row["quality"] = json.loads(row["quality"]) if row.get("quality") else None
        row["indexed"] = bool(r[len(CAMERA_FIELDS)])
        return row

    def enrol(
        self,
        name: str,
        device: str,
        fingerprint: np.ndarray,
        photos: list[tuple[str, str]],
        source: str,
        quality: dict[str, Any] | None = None,
    ) -> CameraRow:
        """Store one camera (replacing one of the same name) with its fingerprint's quality
        (:meth:`~sci_lightning.fingerprint.quality.Quality.as_dict`); returns its catalogue row."""
        if not self._collected:  # once per opening: a scan of every array per enrolment would cost O(N^2)
            self.gc()
            self._collected = True
        fp = np.ascontiguousarray(fingerprint, dtype=np.float32)
        array_id = uuid.uuid4().hex
        tmp, final = self.path / "arrays" / f".tmp-{array_id}.zarr", self.path / "arrays" / f"{array_id}.zarr"
        out = zarr.create_array(
            store=str(tmp),
            shape=fp.shape,
            chunks=(min(CHUNK, fp.shape[0]), min(CHUNK, fp.shape[1])),
            dtype="float32",
            compressors=[ZstdCodec(level=3), Crc32cCodec()],
        )
        out[:] = fp
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        code = sign_code(fp, self.side).tobytes() if has_code(fp.shape, self.side) else None
        old = self.cat.query("SELECT array FROM cameras WHERE name = ?", (name,))
        row = (
            *(name, device, fp.shape[0], fp.shape[1], len(photos), json.dumps(photos), source, now_utc(), final.name),
            json.dumps(quality) if quality is not None else None,
        )
        with self.cat.write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO cameras ({', '.join(CAMERA_FIELDS)}, fp_sha256, code, code_sha256) "
                f"VALUES ({', '.join('?' * (len(CAMERA_FIELDS) + 3))})",
                (*row, array_sha256(fp), code, hashlib.sha256(code).hexdigest() if code else None),
            )
            Catalogue.bump_generation(db)
        if old:
            shutil.rmtree(self.path / "arrays" / old[0][0], ignore_errors=True)
        return self.camera(name)

    def remove(self, name: str) -> CameraRow:
        """Take a camera out of the library (row first, then its array); returns the row it had."""
        row = self.camera(name)
        with self.cat.write() as db:
            db.execute("DELETE FROM cameras WHERE name = ?", (name,))
            Catalogue.bump_generation(db)
        shutil.rmtree(self.path / "arrays" / row["array"], ignore_errors=True)
        return row

    def fingerprint(self, name: str) -> np.ndarray:
        """The camera's fingerprint, checked against its catalogue SHA-256 (and each chunk's CRC-32C)."""
        rows = self.cat.query("SELECT array, fp_sha256, height, width FROM cameras WHERE name = ?", (name,))
        if not rows:
            self.camera(name)  # raises, naming the known cameras
        array, digest, h, w = rows[0]
        file = self.path / "arrays" / array
        try:
            fp = zarr.open_array(str(file), mode="r")[:]
        except Exception as err:  # zarr raises ValueError/KeyError/OSError/... for damaged chunks and metadata
            raise self._damaged(name, file, str(err)) from None
        if fp.shape != (h, w) or array_sha256(fp) != digest:
            raise self._damaged(name, file, "its SHA-256 does not match the catalogue")
        return fp

    def _damaged(self, name: str, file: Path, why: str) -> SCIConfigError:
        return SCIConfigError(
            "library.path",
            f"the fingerprint of {name!r} ({file}) is damaged: {why}",
            "rebuild it from its stored source photos (the other cameras are not touched):"
            f"\n    {self.repair_command(name)}\n  or restore the library folder from a backup",
        )

    def repair_command(self, name: str) -> str:
        """The one command line that rebuilds camera ``name``'s fingerprint from its stored source photos."""
        return shlex.join(
            ["python", "library.py", "action=repair", f"library.path={self.path.resolve()}", f"library.camera={name}"]
        )

    def damaged(self, names: list[str] | None = None) -> dict[str, str]:
        """``name -> why`` for each camera (of ``names``, default all) whose stored fingerprint fails its checks."""
        out = {}
        for name in self.names() if names is None else names:
            try:
                self.fingerprint(name)
            except SCIConfigError as err:
                out[name] = err.problem
        return out

    def export(self, name: str, file: str | os.PathLike) -> Path:
        """One camera as a portable ``.npz`` (``fingerprint`` float32, ``metadata`` JSON), written atomically."""
        row, fp = self.camera(name), self.fingerprint(name)
        target = Path(os.path.expanduser(str(file)))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        meta = {**row, "residual": self.residual, "fp_sha256": array_sha256(fp)}
        with open(tmp, "wb") as fh:
            np.savez(fh, fingerprint=fp, metadata=np.array(json.dumps(meta)))
        os.replace(tmp, target)
        return target

    # ---- index and calibration -------------------------------------------------------------------------------
    def index(self) -> tuple[list[str], np.ndarray, list[str]]:
        """``(names, codes, unindexed)``: the packed codes of the indexed cameras (rows in ``names`` order) and the
        cameras whose sensor is smaller than the index area (always verified in full)."""
        gen = self.cat.meta("generation", 0)
        codes_file, names_file = self._index_files(gen)
        try:
            info = json.loads(names_file.read_text())
            codes = np.load(codes_file)
            if zlib.crc32(codes) != info["crc32"] or len(info["names"]) != len(codes):
                raise ValueError("checksum mismatch")
            return info["names"], codes, info["unindexed"]
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError) as err:
            log.warning("index of %s is damaged (%s): rebuilding it from the catalogue", self.path, err)
        return self._build_index(gen, codes_file, names_file)

    def _index_files(self, gen: int) -> tuple[Path, Path]:
        return self.path / "index" / f"codes-g{gen}.npy", self.path / "index" / f"names-g{gen}.json"

    def _build_index(self, gen: int, codes_file: Path, names_file: Path) -> tuple[list[str], np.ndarray, list[str]]:
        rows = self.cat.query("SELECT name, code, code_sha256 FROM cameras ORDER BY name")
        names, codes, unindexed = [], [], []
        for name, code, digest in rows:
            if code is None:
                unindexed.append(name)
                continue
            if hashlib.sha256(code).hexdigest() != digest:
                raise SCIConfigError(
                    "library.path",
                    f"the index code of {name!r} in {self.cat.file} is damaged (SHA-256 mismatch)",
                    f"re-enrol {name} or restore the library folder from a backup",
                )
            names.append(name)
            codes.append(np.frombuffer(code, dtype=np.uint8))
        matrix = np.stack(codes) if codes else np.zeros((0, self.side * self.side // 8), np.uint8)
        tag = uuid.uuid4().hex
        tmp_codes, tmp_names = codes_file.with_name(f".{tag}.npy"), names_file.with_name(f".{tag}.json")
        np.save(tmp_codes, matrix)
        tmp_names.write_text(json.dumps({"names": names, "unindexed": unindexed, "crc32": zlib.crc32(matrix)}))
        os.replace(tmp_codes, codes_file)  # codes first: a names file never points at a missing codes file
        os.replace(tmp_names, names_file)
        for old in self.path.glob("index/*-g*.*"):
            if old.name not in (codes_file.name, names_file.name):
                old.unlink(missing_ok=True)
        return names, matrix, unindexed

    @property
    def calibration(self) -> Rule | None:
        """The Platt calibration of PCE -> P(match) stored with the library (None: scores are raw PCE)."""
        return self.cat.meta("calibration")

    def set_calibration(self, cal: dict[str, Any] | None) -> None:
        with self.cat.write() as db:
            if cal is None:
                db.execute("DELETE FROM meta WHERE key = 'calibration'")
            else:
                Catalogue.set_meta(db, "calibration", cal)

    # ---- ingested photos ---------------------------------------------------------------------------------------
    def photos(self, paths: list[str]) -> dict[str, tuple[bytes | None, tuple[int, int]]]:
        """``path -> (index code, (height, width))`` of the ingested photos among ``paths`` (codes checked against
        their SHA-256; a damaged code is logged and left out, and the photo is then verified by PCE like a photo
        without a code)."""
        out: dict[str, tuple[bytes | None, tuple[int, int]]] = {}
        for start in range(0, len(paths), 500):
            part = paths[start : start + 500]
            sql = (
                "SELECT path, code, code_sha256, height, width FROM photos "
                f"WHERE path IN ({', '.join('?' * len(part))})"
            )
            for path, code, digest, h, w in self.cat.query(sql, tuple(part)):
                if code is not None and hashlib.sha256(code).hexdigest() != digest:
                    log.warning("the index code of %s in %s is damaged: verifying it by PCE", path, self.cat.file)
                    code = None
                out[path] = (code, (int(h), int(w)))
        return out

    def ingested(self) -> dict[str, tuple[int, int]]:
        """``path -> (size, mtime_ns)`` of every ingested photo (a rerun skips the unchanged ones)."""
        return {p: (size, mtime) for p, size, mtime in self.cat.query("SELECT path, size, mtime_ns FROM photos")}

    def add_photos(self, rows: list[dict[str, Any]]) -> None:
        """Commit ingested photos (:func:`~sci_lightning.library.tasks.ingest_photo` results) in one transaction."""
        with self.cat.write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO photos VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r["sha256"],
                        r["path"],
                        r["height"],
                        r["width"],
                        r["code"],
                        hashlib.sha256(r["code"]).hexdigest() if r["code"] else None,
                        now_utc(),
                        *r["stat"],
                    )
                    for r in rows
                ],
            )

    # ---- maintenance -------------------------------------------------------------------------------------------
    def gc(self) -> list[str]:
        """Remove arrays no catalogue row names (left by killed enrolments) older than :data:`GC_AGE_S`."""
        named = {r[0] for r in self.cat.query("SELECT array FROM cameras")}
        removed = []
        for entry in (self.path / "arrays").iterdir():
            name = entry.name
            if name in named or time.time() - entry.stat().st_mtime < GC_AGE_S:
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(name)
        if removed:
            log.info("library %s: removed %d arrays left by interrupted enrolments", self.path, len(removed))
        return removed

    def verify(self) -> LibraryCheck:
        """Check everything: SQLite's integrity check, every fingerprint (SHA-256, CRC-32C) and index code."""
        problems = [r[0] for r in self.cat.query("PRAGMA integrity_check") if r[0] != "ok"]
        damaged = self.damaged()
        problems += [f"{why}; repair: {self.repair_command(name)}" for name, why in damaged.items()]
        try:
            gen = self.cat.meta("generation", 0)
            self._build_index(gen, *self._index_files(gen))
        except SCIConfigError as err:
            problems.append(str(err))
        named = {r[0] for r in self.cat.query("SELECT array FROM cameras")}
        orphans = [e.name for e in (self.path / "arrays").iterdir() if e.name not in named]
        return {
            "n_cameras": len(self.names()),
            "problems": problems,
            "damaged": sorted(damaged),
            "orphan_arrays": orphans,
        }

    def close(self) -> None:
        self.cat.close()
