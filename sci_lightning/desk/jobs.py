"""Jobs of the examiner's desk: searches, enrolments and reverse searches run one at a time, in submission order,
on one worker thread, while the web server keeps answering.

One at a time on purpose: a search already uses the machine's cores (FFTs), the library's fingerprint caches and the
geometry search's spectra cache are per process, and an enrolment writes the library; queueing keeps every job's
outputs its own (nothing mixed up) without locks around the science code.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sci_lightning.errors import SCIConfigError

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One unit of work and what is known of it so far (read by the pages, written by the worker)."""

    id: str
    kind: str  # search | enrol | reverse
    folder: Path
    title: str
    status: str = "queued"  # queued | running | done | failed
    done: int = 0
    total: int = 0
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    submitted: float = field(default_factory=time.time)
    seconds: float = 0.0

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def state(self) -> dict[str, Any]:
        """What ``/api/jobs/<id>`` answers."""
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "status": self.status,
            "done": self.done,
            "total": self.total,
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }


class JobRunner:
    """A queue of jobs and the one thread that runs them."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self._queue: queue.Queue[tuple[Job, Callable[[Job], dict[str, Any]]]] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="desk-jobs", daemon=True)
        self._thread.start()

    def submit(self, job: Job, fn: Callable[[Job], dict[str, Any]]) -> Job:
        self.jobs[job.id] = job
        self._queue.put((job, fn))
        return job

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def wait(self, job_id: str, timeout: float = 60.0) -> Job:
        """Until the job has finished (tests and the command line)."""
        end = time.time() + timeout
        job = self.jobs[job_id]
        while job.status in ("queued", "running") and time.time() < end:
            time.sleep(0.05)
        return job

    def _work(self) -> None:
        while True:
            job, fn = self._queue.get()
            job.status, t0 = "running", time.perf_counter()
            try:
                job.result = fn(job)
                job.status = "done"
            except SCIConfigError as err:  # a setting or input the examiner can fix: the message, no traceback
                job.status, job.error = "failed", str(err)
            except Exception as err:  # noqa: BLE001 (a job must never take the desk down; the reason is shown)
                log.error("job %s (%s) failed:\n%s", job.id, job.kind, traceback.format_exc())
                job.status, job.error = "failed", f"{type(err).__name__}: {err}"
            finally:
                job.seconds = time.perf_counter() - t0
                self._queue.task_done()
