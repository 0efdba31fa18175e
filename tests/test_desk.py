"""The examiner's desk in process (FastAPI's test client) and on a real server under load: enrol from uploads and
from a folder, search with progress, ranking and heat maps, the case report (HTML self-contained, PDF with every
heat map), reverse search, the audit log, and hostile inputs refused with a message and nothing changed."""

from __future__ import annotations

import hashlib
import io
import re
import socket
import threading
import time
import zlib
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from sci_lightning.errors import SCIConfigError
from sci_lightning.run.config import validate
from sci_lightning.run.library import library_job
from sci_lightning.run.serve import desk_app

from conftest import compose_config
from fakedata import camera_image, textured_image, write_jpeg

pytestmark = pytest.mark.timeout(600)
CAMS = [("A", "A1"), ("B", "B1"), ("C", "C1")]
RESIDUAL = {"sigma": 5.0, "levels": 4, "wavelet": "db4", "grey_first": True}


def _jpeg(device: str, camera: str, k: int) -> bytes:
    return _encoded(camera_image(device, camera, k))


def _encoded(img) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def desk_config(tmp: Path, *extra: str):
    photos = tmp / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    cfg = compose_config(
        "serve",
        f"library.path={tmp / 'lib'}",
        f"serve.case_dir={tmp / 'case'}",
        f"serve.roots=[{photos}]",
        "library.index_side=64",
        "cluster.min_side=64",  # the test photos are 96 x 128 px
        f"paths.cache_dir={tmp / 'cache'}",
        *extra,
        run_dir=tmp / "run",
    )
    validate(cfg, "serve")
    return cfg


def _enrol_all(client: TestClient, n: int = 6) -> None:
    for device, camera in CAMS:
        files = [("files", (f"{camera}_{k}.jpg", _jpeg(device, camera, k), "image/jpeg")) for k in range(n)]
        r = client.post("/enrol", data={"camera": camera, "device": device}, files=files, follow_redirects=False)
        assert r.status_code == 303, r.text
        job_id = r.headers["location"].rsplit("/", 1)[1]
        job = client.app.state.desk.runner.wait(job_id)
        assert job.status == "done", job.error


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    """A desk over a library of 3 cameras enrolled through the desk itself (uploads)."""
    from sci_lightning.library.store import FingerprintLibrary

    tmp = tmp_path_factory.mktemp("desk")
    FingerprintLibrary(tmp / "lib", create=True, residual=RESIDUAL, side=64)
    cfg = desk_config(tmp)
    client = TestClient(desk_app(cfg))
    _enrol_all(client)
    return client, tmp


def _search(client: TestClient, files: list[tuple[str, bytes]]):
    r = client.post("/search", files=[("files", (n, b, "image/jpeg")) for n, b in files], follow_redirects=False)
    assert r.status_code == 303, r.text
    job_id = r.headers["location"].rsplit("/", 1)[1]
    return job_id, client.app.state.desk.runner.wait(job_id, timeout=120)


def desk_sha(page: str) -> bool:
    """Whether the camera page shows a 64-hex-digit fingerprint SHA-256."""
    import re

    return bool(re.search(r"fingerprint SHA-256</th><td class=\"sha\">[0-9a-f]{64}<", page))


def test_library_pages_list_filter_and_show_cameras(desk):
    client, _ = desk
    page = client.get("/cameras")
    assert page.status_code == 200 and all(c in page.text for _, c in CAMS) and "3 cameras" in page.text
    only = client.get("/cameras", params={"q": "B1"})
    assert "B1" in only.text and "A1</a>" not in only.text
    cam = client.get("/cameras/A1")
    assert cam.status_code == 200 and cam.text.count('class="sha"') >= 6  # every reference photo with its SHA-256
    assert 'id="quality"' in cam.text and "scene leak" in cam.text  # the fingerprint says how far to trust it
    assert desk_sha(cam.text)  # the stored fingerprint's SHA-256 is shown, not an empty cell
    assert "Be wary of this fingerprint" in cam.text and "thin:" in cam.text  # a handful of references
    export = client.get("/cameras/A1/export")
    assert export.status_code == 200 and export.content[:2] == b"PK"  # an .npz (zip)


def test_search_ranks_the_true_camera_with_heat_map_and_a_report_that_stands_alone(desk):
    client, tmp = desk
    job_id, job = _search(client, [("questioned one.jpg", _jpeg("B", "B1", 40)), ("q2.jpg", _jpeg("C", "C1", 41))])
    assert job.status == "done", job.error
    assert job.done == job.total == 2
    photos = job.result["photos"]
    assert [p["name"] for p in photos] == ["questioned one.jpg", "q2.jpg"]
    assert [p["ranked"][0]["camera"] for p in photos] == ["B1", "C1"]
    assert [p["decision"] for p in photos] == ["B1", "C1"] and photos[0]["words"].startswith("Taken by B1")
    page = client.get(f"/jobs/{job_id}")
    assert "questioned one.jpg" in page.text and "P(match)" in page.text and f"/jobs/{job_id}/heat/0" in page.text
    heat = client.get(f"/jobs/{job_id}/heat/0")
    assert heat.status_code == 200 and heat.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"/jobs/{job_id}/photo/0").content[:2] == b"\xff\xd8"
    assert client.get(f"/api/jobs/{job_id}").json()["status"] == "done"
    html = client.get(f"/jobs/{job_id}/report.html").text
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", html)  # nothing outside the file
    assert html.count("data:image/png;base64,") == 2 and "What “unknown” means" in html
    sha = photos[0]["sha256"]
    assert len(sha) == 64 and sha in html and "sci-lightning" in html
    pdf = client.get(f"/jobs/{job_id}/report.pdf").content
    assert pdf[:5] == b"%PDF-" and _pdf_images(pdf) == 2  # every heat map in the PDF


def test_a_heic_photo_is_searched_like_a_jpeg(desk):
    client, _ = desk
    buf = io.BytesIO()
    Image.fromarray(camera_image("C", "C1", 95)).save(buf, format="HEIF", quality=95)
    job_id, job = _search(client, [("iphone.HEIC", buf.getvalue())])
    assert job.status == "done", job.error
    (photo,) = job.result["photos"]
    assert photo["name"] == "iphone.HEIC" and photo["ranked"][0]["camera"] == "C1"
    assert next(job.folder.joinpath("photos").iterdir()).suffix == ".heic"


def test_two_uploads_of_the_same_name_keep_their_own_hash_and_verdict(desk):
    client, _ = desk
    a, b = _jpeg("A", "A1", 96), _jpeg("B", "B1", 96)
    job_id, job = _search(client, [("same.jpg", a), ("same.jpg", b)])
    assert job.status == "done", job.error
    first, second = job.result["photos"]
    assert first["sha256"] == hashlib.sha256(a).hexdigest() and second["sha256"] == hashlib.sha256(b).hexdigest()
    assert (first["decision"], second["decision"]) == ("A1", "B1")


def test_a_photo_of_a_camera_not_enrolled_is_unknown(desk):
    client, _ = desk
    job_id, job = _search(client, [("stranger.jpg", _jpeg("X", "X1", 5))])
    assert job.status == "done", job.error
    (photo,) = job.result["photos"]
    assert photo["decision"] == "unknown" and photo["words"].startswith("Unknown")
    assert "unknown" in client.get(f"/jobs/{job_id}/report.html").text


def _pdf_images(pdf: bytes) -> int:
    """Image XObjects in a PDF (fpdf2 writes them uncompressed at the object level)."""
    return len(re.findall(rb"/Subtype\s*/Image", pdf))


def test_the_desk_decides_as_library_py(desk):
    """The same photo searched through the desk and with ``library.py action=search``: the same verdicts file."""
    client, tmp = desk
    job_id, job = _search(client, [("x.jpg", _jpeg("A", "A1", 50))])
    folder = tmp / "cli_photos"
    write_jpeg(folder / "x.jpg", camera_image("A", "A1", 50))
    from sci_lightning.library.actions import search

    search(library_job(desk_config(tmp, f"images={folder}")).varied(str(folder), tmp / "cli_out"))
    desk_rows = (job.folder / "out" / "verdicts.csv").read_text().splitlines()
    cli_rows = (tmp / "cli_out" / "verdicts.csv").read_text().splitlines()
    assert [r.split(",")[1:] for r in desk_rows] == [r.split(",")[1:] for r in cli_rows]  # all but the path


def test_reverse_search_from_a_folder_under_the_roots(desk):
    client, tmp = desk
    roots = tmp / "photos" / "mixed"
    for k in range(3):
        write_jpeg(roots / f"a{k}.jpg", camera_image("A", "A1", 60 + k))
        write_jpeg(roots / f"b{k}.jpg", camera_image("B", "B1", 60 + k))
    r = client.post("/reverse", data={"camera": "A1", "folder": str(roots)}, follow_redirects=False)
    assert r.status_code == 303
    job_id = r.headers["location"].rsplit("/", 1)[1]
    job = client.app.state.desk.runner.wait(job_id, timeout=120)
    assert job.status == "done", job.error
    matched = sorted(Path(r["path"]).name for r in job.result["rows"] if r["decision"] == "match")
    assert matched == ["a0.jpg", "a1.jpg", "a2.jpg"]
    page = client.get(f"/jobs/{job_id}")
    assert page.text.count(f"/jobs/{job_id}/photo/") == 3
    k = next(i for i, r in enumerate(job.result["rows"]) if r["decision"] == "match")
    assert client.get(f"/jobs/{job_id}/photo/{k}").content[:2] == b"\xff\xd8"


def _bomb_png() -> bytes:
    """A PNG header claiming 30000 x 30000 px (900 Mpx) over a tiny body: more than Pillow's safety limit."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = (30000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("bomb.png", _bomb_png(), "too many pixels"),
        ("notes.jpg", b"this is not a photo at all, only text", "not an image"),
        ("empty.jpg", b"", "empty file"),
        ("../../etc/evil.jpg", None, "may not be empty or contain"),
    ],
)
def test_hostile_uploads_get_a_clear_message_and_change_nothing(desk, name, data, message):
    client, tmp = desk
    data = _jpeg("A", "A1", 70) if data is None else data
    before = sorted(p.name for p in (tmp / "case" / "uploads").iterdir())
    jobs_before = len(client.app.state.desk.runner.jobs)
    cams_before = client.get("/cameras").text.count("<tr>")
    r = client.post("/search", files=[("files", (name, data, "application/octet-stream"))], follow_redirects=False)
    assert r.status_code == 400 and message in r.text and "Nothing was kept" in r.text
    assert sorted(p.name for p in (tmp / "case" / "uploads").iterdir()) == before
    assert len(client.app.state.desk.runner.jobs) == jobs_before
    assert client.get("/cameras").text.count("<tr>") == cams_before
    assert not (tmp / "etc").exists() and not (tmp / "case" / "etc").exists()
    assert client.app.state.desk.case.audit_lines(1)[0]["action"] == "refused"


def test_oversized_uploads_and_folders_outside_the_roots_are_refused(tmp_path):
    from sci_lightning.library.store import FingerprintLibrary

    FingerprintLibrary(
        tmp_path / "lib",
        create=True,
        residual=RESIDUAL,
        side=64,
    )
    client = TestClient(desk_app(desk_config(tmp_path, "serve.max_upload_mb=0.001")))
    r = client.post("/search", files=[("files", ("big.jpg", _jpeg("A", "A1", 1), "image/jpeg"))])
    assert r.status_code == 400 and "upload limit" in r.text
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    r = client.post("/enrol", data={"camera": "Z", "folder": str(outside)})
    assert r.status_code == 400 and "outside the folders this desk may read" in r.text
    sneaky = tmp_path / "photos" / ".." / "elsewhere"  # resolves outside the root
    r = client.post("/reverse", data={"camera": "Z", "folder": str(sneaky)})
    assert r.status_code == 400
    assert FingerprintLibrary(tmp_path / "lib").names() == []


def test_nothing_is_written_outside_the_library_and_the_case_folder(desk):
    client, tmp = desk
    _search(client, [("inside.jpg", _jpeg("A", "A1", 90))])
    case = client.app.state.desk.case.root
    assert client.app.state.desk.base.cache_dir == case / "cache"  # the residual store too
    assert any((case / "cache").rglob("*.npz"))
    # beside the library and the case: only what this test module's command-line comparison writes itself
    assert {p.name for p in tmp.iterdir()} <= {"lib", "case", "photos", "run", "cli_photos", "cli_out", "cache"}


def test_audit_log_records_every_action_with_input_hashes(desk):
    client, _ = desk
    job_id, job = _search(client, [("audited.jpg", _jpeg("C", "C1", 80))])
    assert client.get(f"/jobs/{job_id}/report.pdf").status_code == 200
    rows = client.app.state.desk.case.audit_lines()
    actions = {r["action"] for r in rows}
    assert {"enrol", "enrol done", "search", "search done", "report"} <= actions
    search = next(r for r in rows if r["action"] == "search")
    assert all(len(i["sha256"]) == 64 for i in search["inputs"]) and search["client"]
    page = client.get("/audit")
    assert page.status_code == 200 and "search done" in page.text


def test_a_new_desk_creates_its_library_and_enrols_from_a_folder_under_the_roots(tmp_path):
    client = TestClient(desk_app(desk_config(tmp_path)))  # no library there yet: an empty one is made
    assert "0 cameras" in client.get("/cameras").text
    folder = tmp_path / "photos" / "refs"
    for k in range(6):
        write_jpeg(folder / f"r{k}.jpg", camera_image("A", "A1", k))
    r = client.post("/enrol", data={"camera": "A1", "device": "A", "folder": str(folder)}, follow_redirects=False)
    assert r.status_code == 303
    job = client.app.state.desk.runner.wait(r.headers["location"].rsplit("/", 1)[1])
    assert job.status == "done", job.error
    page = client.get("/cameras/A1").text
    assert page.count('class="sha"') == 1 + 6 and str(folder / "r0.jpg") in page  # fingerprint + 6 photos


def test_serve_config_is_validated(tmp_path):
    with pytest.raises(SCIConfigError, match="serve.port"):
        desk_config(tmp_path, "serve.port=0")
    with pytest.raises(SCIConfigError, match="library.path"):
        cfg = compose_config("serve", run_dir=tmp_path / "run")
        validate(cfg, "serve")


def serve_in_thread(app):
    """``app`` on a real uvicorn server on a free localhost port, in a thread: ``(base url, stop)``."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture(scope="module")
def server(desk):
    """The same desk on a real uvicorn server on localhost (for the load test)."""
    client, tmp = desk
    base, stop = serve_in_thread(client.app)
    yield base, client, tmp
    stop()


def test_pages_read_the_library_while_an_enrolment_writes_it(server):
    base, client, _ = server
    big = [("files", (f"d{k}.jpg", _big_jpeg(k), "image/jpeg")) for k in range(6)]
    with httpx.Client(base_url=base, timeout=60) as c:
        r = c.post("/enrol", data={"camera": "D1", "device": "D"}, files=big)
        job_id = r.headers["location"].rsplit("/", 1)[1]
        seen = set()
        while c.get(f"/api/jobs/{job_id}").json()["status"] in ("queued", "running"):
            page = c.get("/cameras")
            assert page.status_code == 200  # never an error while the enrolment writes
            seen.add("D1</a>" in page.text)
        assert c.get(f"/api/jobs/{job_id}").json()["status"] == "done"
        assert "D1</a>" in c.get("/cameras").text and False in seen  # read before the new camera, then with it


def _big_jpeg(k: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(camera_image("D", "D1", k, (768, 1024))).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


@pytest.mark.slow
def test_twenty_concurrent_searches_none_lost_none_mixed_up(server):
    base, client, _ = server
    truth = {f"q{k}.jpg": CAMS[k % 3] for k in range(20)}
    jobs: dict[str, str] = {}
    errors: list[str] = []

    def one(name: str) -> None:
        device, camera = truth[name]
        try:
            with httpx.Client(base_url=base, timeout=60) as c:
                r = c.post(
                    "/search", files=[("files", (name, _jpeg(device, camera, 100 + int(name[1:-4])), "image/jpeg"))]
                )
                assert r.status_code == 303, r.text
                jobs[name] = r.headers["location"].rsplit("/", 1)[1]
        except Exception as err:  # noqa: BLE001
            errors.append(f"{name}: {err}")

    threads = [threading.Thread(target=one, args=(n,)) for n in truth]
    for t in threads:
        t.start()
    t0 = time.time()
    with httpx.Client(base_url=base, timeout=10) as c:  # the server answers pages while the searches run
        assert c.get("/cameras").status_code == 200
        latency = time.time() - t0
    for t in threads:
        t.join(120)
    assert not errors and len(jobs) == 20 and len(set(jobs.values())) == 20
    assert latency < 5.0
    runner = client.app.state.desk.runner
    for name, job_id in jobs.items():
        job = runner.wait(job_id, timeout=300)
        assert job.status == "done", job.error
        (photo,) = job.result["photos"]
        assert photo["name"] == name and photo["decision"] == truth[name][1]


def test_serve_entry_point_refuses_a_missing_library(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    proc = subprocess.run(
        [sys.executable, "serve.py", f"hydra.run.dir={tmp_path}"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "library.path" in proc.stderr


def test_photos_are_grouped_by_camera_and_a_cluster_becomes_a_camera(desk):
    client, _ = desk
    shots = [(f"{cam}_{k}.jpg", _encoded(textured_image(cam, k))) for cam in ("A1", "B1") for k in range(4)]
    tiny = io.BytesIO()
    Image.fromarray(camera_image("C", "C1", 1, size=(40, 40))).save(tiny, format="JPEG")
    files = [("files", (n, b, "image/jpeg")) for n, b in [*shots, ("tiny.jpg", tiny.getvalue())]]
    r = client.post("/group", files=files, follow_redirects=False)
    assert r.status_code == 303, r.text
    job_id = r.headers["location"].rsplit("/", 1)[1]
    job = client.app.state.desk.runner.wait(job_id, timeout=120)
    assert job.status == "done", job.error
    grouped = job.result["grouped"]
    clusters = {c["id"]: {grouped[k]["name"][:2] for k in c["members"]} for c in job.result["clusters"]}
    assert sorted(map(sorted, clusters.values())) == [["A1"], ["B1"]]  # each camera one cluster, nothing mixed
    (small,) = [g for g in grouped if g["name"] == "tiny.jpg"]
    assert small["cluster"] is None and small["reason"].startswith("too small")
    page = client.get(f"/jobs/{job_id}").text
    assert "Cluster 1: 4 photos" in page and "Left alone (1)" in page and "expected number of false links" in page
    assert page.count(f"/jobs/{job_id}/photo/") == 8
    assert client.get(f"/jobs/{job_id}/photo/0").content[:2] == b"\xff\xd8"
    assert "Cluster 2" in client.get(f"/jobs/{job_id}/clusters.html").text  # the action's own report
    a1 = next(c for c, cams in clusters.items() if cams == {"A1"})
    r = client.post(f"/jobs/{job_id}/clusters/{a1}/enrol", data={"camera": "G1", "device": "G"}, follow_redirects=False)
    assert r.status_code == 303
    enrolled = client.app.state.desk.runner.wait(r.headers["location"].rsplit("/", 1)[1], timeout=120)
    assert enrolled.status == "done", enrolled.error
    assert "G1" in client.get("/cameras").text and "Reference photos (4)" in client.get("/cameras/G1").text
    assert client.post(f"/jobs/{job_id}/clusters/99/enrol", data={"camera": "G2"}).status_code == 400
    lines = client.app.state.desk.case.audit_lines()
    assert any(x["action"] == "group done" for x in lines) and any(x["action"] == "enrol done" for x in lines)
