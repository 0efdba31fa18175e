"""Jobs outlive the desk: ``serve.py`` killed (``kill -9``) in the middle of a search and started again answers
for the earlier jobs as before, marks the cut-off ones ``interrupted`` (page, API, audit log) and runs one again."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.library import FingerprintLibrary, enrol_cameras

from conftest import REPO
from fakedata import camera_image, make_folder_tree

pytestmark = pytest.mark.timeout(600)
RESIDUAL = {"sigma": 5.0, "levels": 4, "wavelet": "db4", "grey_first": True}
CAMS = [("A", "A1"), ("B", "B1")]


def _jpeg(device: str, camera: str, k: int, size=(96, 128)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(camera_image(device, camera, k, size)).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_desk(tmp: Path, port: int) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "serve.py",
        f"library.path={tmp / 'lib'}",
        f"serve.case_dir={tmp / 'case'}",
        f"serve.port={port}",
        f"paths.output_dir={tmp / 'run'}",
        "hydra.run.dir=" + str(tmp / "run"),
    ]
    log = (tmp / f"desk-{port}.log").open("ab")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=log, env={**os.environ, "WANDB_MODE": "disabled"})
    end = time.time() + 120
    while time.time() < end:
        assert proc.poll() is None, (tmp / f"desk-{port}.log").read_text()[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/cameras", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("the desk did not start")


def _search(base: str, files: list[tuple[str, bytes]]) -> str:
    r = httpx.post(f"{base}/search", files=[("files", (n, b, "image/jpeg")) for n, b in files], timeout=60)
    assert r.status_code == 303, r.text
    return r.headers["location"].rsplit("/", 1)[1]


def _state(base: str, job_id: str) -> dict:
    return httpx.get(f"{base}/api/jobs/{job_id}", timeout=10).json()


def _until(base: str, job_id: str, ok, timeout: float = 240) -> dict:
    end = time.time() + timeout
    while not ok(s := _state(base, job_id)):
        assert time.time() < end, s
        time.sleep(0.05)
    return s


def test_jobs_survive_kill_9_of_the_desk(tmp_path):
    lib = FingerprintLibrary(tmp_path / "lib", create=True, residual=RESIDUAL, side=64)
    make_folder_tree(tmp_path / "refs", CAMS, per_camera=4)
    jobs = [(cam, dev, sorted(str(p) for p in (tmp_path / "refs" / dev / cam).glob("*.jpg"))) for dev, cam in CAMS]
    enrol_cameras(lib, jobs, ResidualStore(tmp_path / "cache", RESIDUAL), "test", "single")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    desk = _start_desk(tmp_path, port)
    try:
        finished = _search(base, [("one.jpg", _jpeg("A", "A1", 40))])
        assert _until(base, finished, lambda s: s["status"] not in ("queued", "running"))["status"] == "done"
        heat = httpx.get(f"{base}/jobs/{finished}/heat/0").content
        # a long search (photos of a camera not enrolled: every geometry stage against each camera), and one
        # queued behind it; the desk is killed while the first runs
        many = [(f"x{k}.jpg", _jpeg("X", "X1", k, (192, 256))) for k in range(30)]
        running, queued = _search(base, many), _search(base, [("two.jpg", _jpeg("B", "B1", 41))])
        _until(base, running, lambda s: s["status"] == "running")
        desk.send_signal(signal.SIGKILL)
        desk.wait(30)
    finally:
        if desk.poll() is None:
            desk.kill()

    desk = _start_desk(tmp_path, port)
    try:
        state = _state(base, finished)  # a finished job as before: its state, page, heat map and report
        assert state["status"] == "done" and state["done"] == state["total"] == 1
        assert "one.jpg" in httpx.get(f"{base}/jobs/{finished}").text
        assert httpx.get(f"{base}/jobs/{finished}/heat/0").content == heat
        assert httpx.get(f"{base}/jobs/{finished}/report.html").status_code == 200
        for cut in (running, queued):
            assert _state(base, cut)["status"] == "interrupted"
            page = httpx.get(f"{base}/jobs/{cut}").text
            assert 'id="interrupted"' in page and f"/jobs/{cut}/again" in page
        audit = [json.loads(line) for line in (tmp_path / "case" / "audit.jsonl").read_text().splitlines()]
        outcomes = {a["outcome"].get("job"): a["action"] for a in audit if a["action"].endswith("interrupted")}
        assert outcomes == {running: "search interrupted", queued: "search interrupted"}
        # run the queued one again, with what it was asked
        r = httpx.post(f"{base}/jobs/{queued}/again", timeout=60)
        assert r.status_code == 303
        again = r.headers["location"].rsplit("/", 1)[1]
        assert _until(base, again, lambda s: s["status"] not in ("queued", "running"))["status"] == "done"
        page = httpx.get(f"{base}/jobs/{again}").text
        assert "two.jpg" in page and "B1" in page and queued in page
    finally:
        desk.kill()
        desk.wait(30)
