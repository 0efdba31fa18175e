"""The examiner's desk: a local web app over the fingerprint library (``python serve.py library.path=LIB``).

Server-rendered pages (Jinja2, a few lines of JavaScript for the progress bar and the heat-map toggle, no build
step): the library and its cameras, enrolment, search with a job and a progress bar, reverse search, grouping
photos by camera with no references (a cluster enrolled as a camera), the case report (HTML and PDF) and the audit
log. Every action is one of the library's own (:mod:`.work`), so the desk and
``library.py`` decide alike; every action is written to the audit log with the SHA-256 of its inputs.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from PIL import Image

from sci_lightning.clustering.settings import ClusterSettings
from sci_lightning.data.images import SkippedImage, load_rgb
from sci_lightning.desk import work
from sci_lightning.desk.casefile import CaseFolder, Rejected, Upload, safe_name
from sci_lightning.desk.jobs import Job, JobRunner
from sci_lightning.desk.results import JobResult, ShownPhoto
from sci_lightning.desk.settings import ServeSettings
from sci_lightning.errors import SCIConfigError
from sci_lightning.forensic.case_report import HTML_NAME, PDF_NAME
from sci_lightning.library.actions import open_library
from sci_lightning.library.job import LibraryJob
from sci_lightning.outputs import Metrics

log = logging.getLogger(__name__)
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
THUMB = 360  # px: the longer side of a photo shown on a page


class Desk:
    """What the pages share: the library job every desk job varies, the case folder, the job queue."""

    def __init__(self, serve: ServeSettings, base: LibraryJob, clusters: ClusterSettings) -> None:
        root = Path(serve.case_dir).expanduser() if serve.case_dir else base.output_dir / "case"
        self.case = CaseFolder(root, list(serve.roots), int(serve.max_upload_mb * 2**20))
        if base.cache_dir is not None:  # residuals too stay in the case folder
            base = dataclasses.replace(base, cache_dir=self.case.root / "cache")
        self.base, self.clusters = base, clusters
        self.max_files = serve.max_files
        self.runner = JobRunner()
        self.library_path = str(base.library.path)
        if not (base.path / "catalogue.sqlite").is_file():
            log.warning("no library at %s: creating an empty one (enrol cameras from the desk)", self.library_path)
        open_library(base, create=True)  # it must open (and be of this residual setting) before the desk serves it

        for job in self.runner.restore(self.case.jobs):  # jobs outlive the desk; the cut-off ones are said so
            self.case.audit(f"{job.kind} interrupted", "desk", [], {"job": job.id, "status": job.status})
            log.warning("job %s (%s) was cut off when the desk stopped: marked interrupted", job.id, job.title)

    def library(self):
        return open_library(self.base)  # a fresh reader per page: it sees every committed enrolment

    def job(self, job_id: str) -> Job:
        job = self.runner.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r} in {self.case.jobs}")
        return job

    def launch(self, request: Request, kind: str, params: dict[str, Any], rerun_of: str = "") -> RedirectResponse:
        """A new job of ``kind`` from ``params`` (what the form asked, kept with the job so it can run again)."""
        job_id, job_dir = self.case.new_job_dir()
        ups = [
            Upload(Path(u["path"]), u["sha256"], u["name"], u["height"], u["width"], False)
            for u in params.get("uploads", [])
        ]
        for u in ups:
            if not u.path.is_file():
                raise Rejected(f"{u.name}: its upload ({u.path}) is no longer in the case folder")
        again = f" (again: {rerun_of})" if rerun_of else ""
        if kind == "search":
            job = Job(job_id, kind, job_dir, f"search {len(ups)} photo(s){again}", total=len(ups))
            fn = partial(work.search, base=self.base, uploads=ups)
            inputs = [{"name": u.name, "sha256": u.sha256} for u in ups]
            outcome = _verdicts_outcome
        elif kind == "enrol":
            source = Path(params["folder"]) if params.get("folder") else job_dir / "photos"
            if not params.get("folder"):
                work.link_photos(ups, source)
            job = Job(job_id, kind, job_dir, f"enrol {params['camera']}{again}")
            camera, device, replace = params["camera"], params["device"], params["replace"]
            fn = partial(work.enrol, base=self.base, camera=camera, device=device, folder=source, replace=replace)
            inputs = (
                [{"folder": params["folder"]}]
                if params.get("folder")
                else [{"name": u.name, "sha256": u.sha256} for u in ups]
            )
            outcome = lambda out: _summary(out["metrics"])  # noqa: E731
        elif kind == "group":
            folder = params.get("folder")
            source = Path(folder) if folder else job_dir / "photos"
            names = {} if folder else {p: u.name for p, u in work.link_photos(ups, source).items()}
            what = f"the photos of {folder}" if folder else f"{len(ups)} photo(s)"
            job = Job(job_id, kind, job_dir, f"group {what} by camera{again}")
            fn = partial(work.group, base=self.base, settings=self.clusters, folder=source, names=names)
            inputs = [{"folder": folder}] if folder else [{"name": u.name, "sha256": u.sha256} for u in ups]
            outcome = lambda out: _summary(out["metrics"])  # noqa: E731
        elif kind == "reverse":
            job = Job(job_id, kind, job_dir, f"reverse search of {params['camera']}{again}")
            fn = partial(work.reverse, base=self.base, camera=params["camera"], folder=Path(params["folder"]))
            inputs = [{"camera": params["camera"], "folder": params["folder"]}]
            outcome = _matches_outcome
        else:
            raise Rejected(f"no such kind of job: {kind!r}")
        job.params, job.rerun_of = params, rerun_of
        return self.start(request, job, inputs, fn, outcome)

    def start(
        self,
        request: Request,
        job: Job,
        inputs: list[dict[str, Any]],
        fn: Callable[[Job], JobResult],
        outcome: Callable[[JobResult], Metrics],
    ) -> RedirectResponse:
        """Queue ``fn`` as ``job``: the request and, when it has run, its ``outcome`` go to the audit log; the
        examiner is sent to the job's page."""

        def run(j: Job) -> JobResult:
            out = fn(j)
            self.case.audit(f"{j.kind} done", "desk", inputs, {"job": j.id, **outcome(out)})
            return out

        self.case.audit(job.kind, _client(request), inputs, {"job": job.id})
        self.runner.submit(job, run)
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    async def uploads(self, files: list[UploadFile]) -> list[Upload]:
        """Every uploaded file kept, or :class:`Rejected` naming each refused one (then none of them is kept)."""
        if not files or all(not f.filename for f in files):
            raise Rejected("no photos were uploaded")
        if len(files) > self.max_files:
            raise Rejected(f"{len(files)} files: at most {self.max_files} per request (serve.max_files)")
        kept, problems = [], []
        for f in files:
            try:
                kept.append(self.case.save_upload(f.filename or "", _chunks(f)))
            except Rejected as err:
                problems.append(str(err))
        if problems:
            for u in kept:  # nothing of a refused request stays (a photo an earlier request kept does)
                if u.new:
                    u.path.unlink(missing_ok=True)
            raise Rejected("; ".join(problems))
        return kept


def _chunks(f: UploadFile, size: int = 1 << 20):
    f.file.seek(0)
    while chunk := f.file.read(size):
        yield chunk


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status)


def create_app(serve: ServeSettings, base: LibraryJob, clusters: ClusterSettings | None = None) -> FastAPI:
    """The desk's ASGI app: ``serve``'s settings over the library of ``base`` (every job a variation of it; the
    run layer builds both from the config: :func:`sci_lightning.run.serve.desk_app`); ``clusters``: how its
    grouping jobs cluster (``cluster.*``)."""
    desk = Desk(serve, base, clusters or ClusterSettings())
    app = FastAPI(title="sci-lightning examiner's desk", docs_url=None, redoc_url=None)
    app.state.desk = desk

    @app.exception_handler(Rejected)
    async def rejected(request: Request, err: Rejected) -> Response:
        desk.case.audit("refused", _client(request), [], {"path": request.url.path, "reason": str(err)})
        return _page(request, "error.html", 400, message=str(err))

    @app.exception_handler(SCIConfigError)
    async def config_error(request: Request, err: SCIConfigError) -> Response:
        return _page(request, "error.html", 400, message=str(err))

    @app.get("/")
    def home() -> RedirectResponse:
        return RedirectResponse("/cameras", status_code=303)

    @app.get("/cameras", response_class=HTMLResponse)
    def cameras(request: Request, q: str = "") -> HTMLResponse:
        rows = desk.library().cameras()
        needle = q.strip().lower()
        shown = [r for r in rows if needle in r["name"].lower() or needle in r["device"].lower()] if needle else rows
        return _page(request, "cameras.html", rows=shown, total=len(rows), q=q, library=desk.library_path)

    @app.get("/cameras/{name}", response_class=HTMLResponse)
    def camera(request: Request, name: str) -> HTMLResponse:
        lib = desk.library()
        row, damaged = lib.camera(name), lib.damaged([name]).get(name)
        return _page(request, "camera.html", row=row, damaged=damaged, repair=lib.repair_command(name))

    @app.get("/cameras/{name}/export")
    def export(request: Request, name: str) -> FileResponse:
        job_id, folder = desk.case.new_job_dir()
        target = desk.library().export(name, folder / "camera.npz")
        desk.case.audit("export", _client(request), [{"camera": name}], {"file": str(target)})
        return FileResponse(target, filename=f"{safe_name(name)}.npz", media_type="application/octet-stream")

    @app.get("/enrol", response_class=HTMLResponse)
    def enrol_form(request: Request) -> HTMLResponse:
        return _page(request, "enrol.html", roots=desk.case.roots)

    @app.post("/enrol")
    async def enrol(
        request: Request,
        camera: str = Form(...),
        device: str = Form(""),
        folder: str = Form(""),
        replace: bool = Form(False),
        files: list[UploadFile] | None = None,
    ) -> RedirectResponse:
        if not camera.strip():
            raise Rejected("name the camera to enrol")
        ups = [] if folder.strip() else await desk.uploads(files or [])  # refused: nothing kept, no job
        source = str(desk.case.confine(folder)) if folder.strip() else None
        params = {"camera": camera.strip(), "device": device.strip(), "replace": bool(replace), "folder": source}
        return desk.launch(request, "enrol", {**params, "uploads": [_upload_params(u) for u in ups]})

    @app.get("/search", response_class=HTMLResponse)
    def search_form(request: Request) -> HTMLResponse:
        return _page(request, "search.html", max_mb=desk.case.max_upload_bytes / 2**20, max_files=desk.max_files)

    @app.post("/search")
    async def search(request: Request, files: list[UploadFile]) -> RedirectResponse:
        ups = await desk.uploads(files)
        return desk.launch(request, "search", {"uploads": [_upload_params(u) for u in ups]})

    @app.get("/reverse", response_class=HTMLResponse)
    def reverse_form(request: Request) -> HTMLResponse:
        names = [r["name"] for r in desk.library().cameras()]
        return _page(request, "reverse.html", cameras=names, roots=desk.case.roots)

    @app.post("/reverse")
    def reverse(request: Request, camera: str = Form(...), folder: str = Form(...)) -> RedirectResponse:
        desk.library().camera(camera)  # an unknown camera is refused now, naming the ones there are
        return desk.launch(request, "reverse", {"camera": camera, "folder": str(desk.case.confine(folder))})

    @app.get("/group", response_class=HTMLResponse)
    def group_form(request: Request) -> HTMLResponse:
        return _page(request, "group.html", roots=desk.case.roots, max_files=desk.max_files)

    @app.post("/group")
    async def group(request: Request, folder: str = Form(""), files: list[UploadFile] | None = None) -> Response:
        ups = [] if folder.strip() else await desk.uploads(files or [])
        source = str(desk.case.confine(folder)) if folder.strip() else None
        return desk.launch(request, "group", {"folder": source, "uploads": [_upload_params(u) for u in ups]})

    @app.post("/jobs/{job_id}/clusters/{cluster_id}/enrol")
    def enrol_cluster(
        request: Request, job_id: str, cluster_id: int, camera: str = Form(...), device: str = Form("")
    ) -> RedirectResponse:
        """A cluster of a grouping job enrolled as a camera of the library (its members are the photos)."""
        job = desk.job(job_id)
        if job.kind != "group" or job.status != "done":
            raise Rejected(f"job {job_id} is not a finished grouping")
        members = [g for g in job.result.get("grouped", []) if g["cluster"] == cluster_id]
        if not members:
            raise Rejected(f"job {job_id} has no cluster {cluster_id}")
        if not camera.strip():
            raise Rejected("name the camera to enrol the cluster as")
        ups = [{k: g[k] for k in ("path", "sha256", "name", "height", "width")} for g in members]
        params = {"camera": camera.strip(), "device": device.strip(), "replace": False, "folder": None}
        return desk.launch(request, "enrol", {**params, "uploads": ups, "cluster": f"{job_id}/{cluster_id}"})

    @app.get("/jobs/{job_id}/clusters.html")
    def cluster_report(request: Request, job_id: str) -> FileResponse:
        job = desk.job(job_id)
        file = job.folder / "out" / "cluster_report.html"
        if job.kind != "group" or job.status != "done" or not file.is_file():
            raise HTTPException(404, "the report is written when a grouping has finished")
        desk.case.audit("report", _client(request), [{"job": job_id}], {"file": file.name})
        return FileResponse(file, media_type="text/html")

    @app.post("/jobs/{job_id}/again")
    def again(request: Request, job_id: str) -> RedirectResponse:
        """Run a job again with what it was asked (an interrupted or failed one, or any finished one)."""
        job = desk.job(job_id)
        if job.status in ("queued", "running"):
            raise Rejected(f"job {job_id} is still {job.status}")
        return desk.launch(request, job.kind, job.params, rerun_of=job.id)

    @app.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(request: Request, job_id: str) -> HTMLResponse:
        return _page(request, "job.html", job=desk.job(job_id))

    @app.get("/api/jobs/{job_id}")
    def job_state(job_id: str) -> JSONResponse:
        return JSONResponse(desk.job(job_id).state())

    @app.get("/jobs/{job_id}/heat/{k}")
    def heat(job_id: str, k: int) -> FileResponse:
        job = desk.job(job_id)
        photo = _photo(job, k)
        if not photo.get("heat"):
            raise HTTPException(404, "no heat map for this photo")
        heat = Path(photo["heat"])
        if job.folder.resolve() not in heat.resolve().parents:  # a job's state is read back from disk: its own only
            raise HTTPException(404, "no heat map for this photo")
        return FileResponse(heat, media_type="image/png")

    @app.get("/jobs/{job_id}/photo/{k}")
    def photo(job_id: str, k: int) -> Response:
        job = desk.job(job_id)
        if job.kind in ("reverse", "group"):
            rows = job.result.get("rows" if job.kind == "reverse" else "grouped", [])
            if not 0 <= k < len(rows):
                raise HTTPException(404, "no such photo")
            path = Path(rows[k]["path"])
            if job.folder.resolve() not in path.resolve().parents:  # a server folder's photo: under serve.roots
                path = desk.case.confine(str(path.parent)) / path.name
        else:
            path = Path(_photo(job, k)["path"])
        return Response(_thumbnail(path), media_type="image/jpeg")

    @app.get("/jobs/{job_id}/report.html")
    def report_html(request: Request, job_id: str) -> FileResponse:
        return _report(request, desk, job_id, HTML_NAME, "text/html")

    @app.get("/jobs/{job_id}/report.pdf")
    def report_pdf(request: Request, job_id: str) -> FileResponse:
        return _report(request, desk, job_id, PDF_NAME, "application/pdf")

    @app.get("/audit", response_class=HTMLResponse)
    def audit(request: Request) -> HTMLResponse:
        return _page(request, "audit.html", rows=desk.case.audit_lines())

    return app


def _upload_params(u: Upload) -> dict[str, Any]:
    return {"path": str(u.path), "sha256": u.sha256, "name": u.name, "height": u.height, "width": u.width}


def _verdicts_outcome(out: JobResult) -> Metrics:
    return {"verdicts": [{k: p[k] for k in ("name", "sha256", "decision")} for p in out["photos"]]}


def _matches_outcome(out: JobResult) -> Metrics:
    return {"matches": [r["path"] for r in out["rows"] if r["decision"] == "match"]}


def _summary(metrics: Metrics) -> Metrics:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) and not k.startswith("seconds")}


def _photo(job: Job, k: int) -> ShownPhoto:
    photos = job.result.get("photos", [])
    if job.status != "done" or not 0 <= k < len(photos):
        raise HTTPException(404, "no such photo in this job")
    return photos[k]


def _report(request: Request, desk: Desk, job_id: str, name: str, media: str) -> FileResponse:
    job = desk.job(job_id)
    file = job.folder / "out" / name
    if job.kind != "search" or job.status != "done" or not file.is_file():
        raise HTTPException(404, "the report is written when a search has finished")
    desk.case.audit("report", _client(request), [{"job": job_id}], {"file": name})
    # the HTML opens in the browser (it stands alone: save it from there), the PDF downloads
    disposition = "inline" if name == HTML_NAME else "attachment"
    return FileResponse(
        file, media_type=media, filename=f"case-{job_id}{Path(name).suffix}", content_disposition_type=disposition
    )


def _thumbnail(path: Path) -> bytes:
    """A JPEG of the photo, its longer side ``THUMB`` px (decoded with the project's guards)."""
    try:
        img = Image.fromarray(load_rgb(path))
    except SkippedImage as err:
        raise HTTPException(404, f"cannot show {path.name}: {err}") from None
    img.thumbnail((THUMB, THUMB))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()
