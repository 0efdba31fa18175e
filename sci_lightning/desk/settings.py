"""The ``serve`` config group: the examiner's desk (``serve.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sci_lightning.errors import require
from sci_lightning.settings import schema_of, setting


@dataclass(frozen=True)
class ServeSettings:
    """Where the desk listens, where it writes, what it may read, and its upload limits."""

    host: str = setting("127.0.0.1", "where the desk listens (another host than loopback is logged as a warning)")
    port: int = setting(8000, "the desk's port")
    case_dir: str | None = setting(None, "the case folder: uploads, jobs, reports, audit.jsonl (null: <run dir>/case)")
    roots: tuple[str, ...] = setting((), "folders a form may name (enrol from a folder, reverse search)")
    max_upload_mb: float = setting(200.0, "per uploaded file")
    max_files: int = setting(200, "files per request")

    def __post_init__(self) -> None:
        require(1 <= self.port <= 65535, "serve.port", f"is {self.port}", "use a free port, e.g. 8000")
        require(self.max_upload_mb > 0, "serve.max_upload_mb", f"is {self.max_upload_mb}", "use e.g. 200")
        require(self.max_files >= 1, "serve.max_files", f"is {self.max_files}", "use e.g. 200")
        for root in self.roots:
            require(
                Path(str(root)).expanduser().is_dir(),
                "serve.roots",
                f"{root} is not a folder",
                "list existing folders, e.g. serve.roots=[/cases/photos]",
            )


ServeSettingsSchema = schema_of(ServeSettings)  # what Hydra composes the group onto (sci_lightning.settings)
