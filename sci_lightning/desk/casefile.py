"""The case folder the examiner's desk writes in, and the rules that keep it safe.

Everything the desk writes goes under one folder (``serve.case_dir``): ``uploads/`` (each uploaded photo under its
SHA-256, never under the name it came with), ``jobs/<id>/`` (each search, enrolment or reverse search, with the
library's own outputs) and ``audit.jsonl`` (one line per action: when, who, what, the inputs' SHA-256, what came
out). Folder paths typed into a form are used only inside ``serve.roots``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sci_lightning.data.images import SkippedImage, inspect_image

# Formats a questioned or reference photo may come in (what Pillow reports, HEIC through pillow-heif).
FORMATS = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tif", "HEIF": ".heic", "HEIC": ".heic"}


class Rejected(Exception):
    """An input the desk refuses; ``str(exc)`` is the message shown to the examiner (and written to the audit)."""


@dataclass(frozen=True)
class Upload:
    """A photo kept in the case folder: where, its SHA-256, the name it was uploaded as, its size in px."""

    path: Path
    sha256: str
    name: str
    height: int
    width: int
    new: bool  # False: the same photo was already in the case folder


def check_name(name: str) -> str:
    """The name an upload came with, if it is a plain file name (never used as a path: shown only)."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or ".." in name or "\x00" in name:
        raise Rejected(f"{name!r}: a file name may not be empty or contain '/', '\\' or '..'")
    return name


def safe_name(text: str) -> str:
    """``text`` with every character but letters, digits, ``-``, ``_`` and ``.`` replaced by ``_``: a name the desk
    may write (a linked photo, a download) that can never be a path."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


class CaseFolder:
    """``serve.case_dir``: uploads, jobs and the audit log."""

    def __init__(self, root: str | Path, roots: Iterable[str | Path], max_upload_bytes: int) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uploads, self.jobs = self.root / "uploads", self.root / "jobs"
        for folder in (self.uploads, self.jobs):
            folder.mkdir(parents=True, exist_ok=True)
        self.roots = [Path(r).expanduser().resolve() for r in roots]
        self.max_upload_bytes = int(max_upload_bytes)
        self._audit_lock = threading.Lock()

    def save_upload(self, name: str, chunks: Iterable[bytes]) -> Upload:
        """Stream one uploaded file into ``uploads/<sha256><ext>``; refused (and nothing kept) when its name is not a
        plain file name, it is larger than ``serve.max_upload_mb``, or it is not a photo (empty, not an image, a
        decompression bomb)."""
        check_name(name)
        tmp = self.uploads / f".upload-{uuid.uuid4().hex}"
        digest, size = hashlib.sha256(), 0
        try:
            with tmp.open("wb") as fh:
                for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_upload_bytes:
                        raise Rejected(
                            f"{name}: larger than the upload limit ({self.max_upload_bytes / 2**20:.0f} MB, "
                            "serve.max_upload_mb)"
                        )
                    digest.update(chunk)
                    fh.write(chunk)
            try:
                fmt, h, w = inspect_image(tmp)
            except SkippedImage as err:
                raise Rejected(f"{name}: {err}") from None
            if fmt not in FORMATS:
                raise Rejected(
                    f"{name}: {fmt or 'unknown'} files are not photos the desk reads (JPEG, PNG, TIFF, HEIC)"
                )
            sha = digest.hexdigest()
            final = self.uploads / f"{sha}{FORMATS[fmt]}"
            new = not final.exists()
            os.replace(tmp, final)  # the same photo uploaded twice is one file
            return Upload(final, sha, name, h, w, new)
        finally:
            tmp.unlink(missing_ok=True)

    def confine(self, folder: str) -> Path:
        """A folder typed into a form, resolved (links followed) and accepted only inside ``serve.roots``."""
        if not folder or "\x00" in folder:
            raise Rejected("no folder given")
        path = Path(folder).expanduser().resolve()
        if not any(path == r or r in path.parents for r in self.roots):
            allowed = ", ".join(str(r) for r in self.roots) or "none (set serve.roots)"
            raise Rejected(f"{folder}: outside the folders this desk may read ({allowed})")
        if not path.is_dir():
            raise Rejected(f"{folder}: not a folder")
        return path

    def new_job_dir(self) -> tuple[str, Path]:
        job_id = uuid.uuid4().hex[:12]
        path = self.jobs / job_id
        path.mkdir(parents=True)
        return job_id, path

    def audit(self, action: str, client: str, inputs: list[dict[str, Any]], outcome: dict[str, Any]) -> None:
        """One line of ``audit.jsonl`` (appended and flushed to disk before the action's answer is sent)."""
        line = {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "client": client,
            "action": action,
            "inputs": inputs,
            "outcome": outcome,
        }
        data = (json.dumps(line, sort_keys=False) + "\n").encode("utf-8")
        with self._audit_lock, (self.root / "audit.jsonl").open("ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    def audit_lines(self, last: int = 500) -> list[dict[str, Any]]:
        """The newest ``last`` audit entries, newest first (a damaged line is shown as such, never dropped)."""
        file = self.root / "audit.jsonl"
        if not file.exists():
            return []
        rows = []
        for raw in file.read_text(encoding="utf-8", errors="replace").splitlines()[-last:]:
            try:
                rows.append(json.loads(raw))
            except ValueError:
                rows.append({"time": "?", "client": "?", "action": "damaged line", "inputs": [], "outcome": {}})
        return rows[::-1]
