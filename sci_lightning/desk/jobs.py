"""Jobs of the examiner's desk: searches, enrolments, reverse searches and groupings run one at a time, in
submission order, on one worker thread, while the web server keeps answering.

Each job's state is written to its folder (``jobs/<id>/job.json``, atomically) whenever it changes, so a job
outlives the desk: a restarted desk reads its jobs back (:meth:`JobRunner.restore`), finished ones as they were,
and a job the desk was killed in the middle of (queued or running) is marked ``interrupted``, with what it was
asked (``params``) kept so it can be run again.

One at a time on purpose: a search already uses the machine's cores (FFTs), the library's fingerprint caches and the
geometry search's spectra cache are per process, and an enrolment writes the library; queueing keeps every job's
outputs its own (nothing mixed up) without locks around the science code.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from sci_lightning.desk.results import JobResult
from sci_lightning.errors import SCIConfigError

log = logging.getLogger(__name__)


class JobState(TypedDict):
    """What ``/api/jobs/<id>`` answers of a job."""

    id: str
    kind: str
    title: str
    status: str  # queued | running | done | failed | interrupted
    done: int  # photos done so far ...
    total: int  # ... of this many
    error: str
    seconds: float


@dataclass
class Job:
    """One unit of work and what is known of it so far (read by the pages, written by the worker)."""

    id: str
    kind: str  # search | enrol | reverse | group
    folder: Path
    title: str
    status: str = "queued"  # queued | running | done | failed | interrupted (the desk stopped while it ran)
    done: int = 0
    total: int = 0
    result: JobResult = field(default_factory=JobResult)
    error: str = ""
    submitted: float = field(default_factory=time.time)
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)  # what it was asked: enough to run it again (JSON)
    rerun_of: str = ""  # the job this one runs again, if any

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        self.save()

    def save(self) -> None:
        """``job.json`` in the job's folder, replaced whole (a reader never sees half a state)."""
        data = {**self.state(), "submitted": self.submitted, "params": self.params, "result": self.result}
        data["rerun_of"] = self.rerun_of
        tmp = self.folder / f".job.{threading.get_ident()}.json"
        tmp.write_text(json.dumps(data, default=_plain))
        os.replace(tmp, self.folder / "job.json")

    @classmethod
    def load(cls, folder: Path) -> Job:
        """The job whose ``job.json`` is in ``folder``."""
        data = json.loads((folder / "job.json").read_text())
        keys = ("id", "kind", "title", "status", "done", "total", "error", "seconds", "submitted", "params")
        return cls(
            folder=folder,
            result=data.get("result") or {},
            rerun_of=data.get("rerun_of", ""),
            **{k: data[k] for k in keys if k in data},
        )

    def state(self) -> JobState:
        """What ``/api/jobs/<id>`` answers."""
        return JobState(
            id=self.id,
            kind=self.kind,
            title=self.title,
            status=self.status,
            done=self.done,
            total=self.total,
            error=self.error,
            seconds=round(self.seconds, 3),
        )


def _plain(value: Any) -> Any:
    """What ``json`` cannot write itself in a job's result (paths, NumPy numbers)."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


class JobRunner:
    """A queue of jobs and the one thread that runs them."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self._queue: queue.Queue[tuple[Job, Callable[[Job], dict[str, Any]]]] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="desk-jobs", daemon=True)
        self._thread.start()

    def submit(self, job: Job, fn: Callable[[Job], dict[str, Any]]) -> Job:
        self.jobs[job.id] = job
        job.save()
        self._queue.put((job, fn))
        return job

    def restore(self, jobs_dir: Path) -> list[Job]:
        """Read back every job a previous desk left in ``jobs_dir``; returns the ones it was killed in the middle
        of, now marked ``interrupted`` (saved so)."""
        cut = []
        for state in sorted(jobs_dir.glob("*/job.json")):
            try:
                job = Job.load(state.parent)
            except (OSError, ValueError, TypeError, KeyError) as err:
                log.warning("job state %s cannot be read (%s): not shown", state, err)
                continue
            if job.status in ("queued", "running"):
                job.error = f"the desk stopped while this job was {job.status} (killed or crashed): run it again"
                job.status = "interrupted"
                job.save()
                cut.append(job)
            self.jobs.setdefault(job.id, job)
        return cut

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
            job.save()
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
                try:
                    job.save()
                except (OSError, TypeError, ValueError) as err:  # the job's outcome stands in memory regardless
                    log.error("job %s: its state could not be saved (%s)", job.id, err)
                self._queue.task_done()
