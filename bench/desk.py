"""The examiner's desk: page latency with 1 000 cameras enrolled, and what a search through the desk costs beyond
``library.py action=search`` for the same photo, side by side in one run.

    python bench/desk.py [--cameras 1000] [--side 256] [--repeats 20] [--library LIB --photo FILE]

Pages: a real uvicorn server on localhost, a library of ``--cameras`` synthetic fingerprints (the enrolment path of
bench/library_search.py), each page requested ``--repeats`` times over HTTP (httpx): median and worst latency.
Search: the same photo searched ``--searches`` times each way, interleaved: the library action in this process
(what ``library.py action=search`` runs after Hydra has started) and the desk (upload, SHA-256, job queue, the
same action, results read back; the client polls every 20 ms). With ``--library`` / ``--photo`` the search part
uses a real library and photo (e.g. vision-3's, a 12 MP JPEG) instead of the synthetic one.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from hydra import compose, initialize_config_dir
from PIL import Image

import sci_lightning.run.schema  # noqa: F401 (the settings' schemas, before any config is composed)
from sci_lightning.library.actions import search
from sci_lightning.run.library import library_job
from sci_lightning.run.serve import desk_app, freeze_heap

from common import machine_line
from library_search import build

REPO = Path(__file__).resolve().parents[1]


def config(lib: Path, tmp: Path, side: int):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="serve",
            overrides=[
                f"library.path={lib}",
                f"library.index_side={side}",
                f"serve.case_dir={tmp / 'case'}",
                f"paths.output_dir={tmp / 'run'}",
                f"paths.cache_dir={tmp / 'cache'}",
                f"paths.root_dir={REPO}",
                "prnu.residual_cache=false",
            ],
        )
    return cfg


def serve(cfg) -> tuple[str, object]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = desk_app(cfg)
    freeze_heap()  # as serve.py does
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", app


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def desk_search(client: httpx.Client, photo: Path) -> str:
    r = client.post("/search", files=[("files", (photo.name, photo.read_bytes(), "image/jpeg"))])
    job = r.headers["location"].rsplit("/", 1)[1]
    while (state := client.get(f"/api/jobs/{job}").json())["status"] in ("queued", "running"):
        time.sleep(0.02)
    if state["status"] != "done":
        raise SystemExit(f"the desk's search failed: {state['error']}")
    return job


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", type=int, default=1000)
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--searches", type=int, default=5)
    ap.add_argument("--library", type=Path, help="a real library for the search part")
    ap.add_argument("--photo", type=Path, help="a real photo for the search part")
    args = ap.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        t0 = time.perf_counter()
        build(tmp / "lib", args.cameras, args.side)
        print(f"library of {args.cameras} synthetic cameras ({args.side} px) built in {time.perf_counter() - t0:.1f} s")
        cfg = config(tmp / "lib", tmp, args.side)
        base, app = serve(cfg)
        photo = tmp / "photo.jpg"
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 255, (args.side, args.side, 3), dtype=np.uint8)).save(photo, quality=92)
        with httpx.Client(base_url=base, timeout=120) as client:
            job = desk_search(client, photo)
            pages = {
                "/cameras (all)": "/cameras",
                "/cameras?q= (filter)": "/cameras?q=cam0042",
                "/cameras/<name>": "/cameras/cam00042",
                "/search (form)": "/search",
                "/reverse (form)": "/reverse",
                "/jobs/<id> (results)": f"/jobs/{job}",
                "/api/jobs/<id>": f"/api/jobs/{job}",
                "/audit": "/audit",
            }
            print(f"\npages with {args.cameras} cameras enrolled, {args.repeats} requests each over HTTP on localhost:")
            print(f"{'page':<24} {'median ms':>10} {'p95 ms':>7} {'worst ms':>9}  status")
            for label, url in pages.items():
                status = client.get(url).status_code
                t = timed(lambda u=url: client.get(u), args.repeats)
                ms = [1000 * x for x in sorted(t)]
                p95 = ms[max(0, int(round(0.95 * len(ms))) - 1)]
                print(f"{label:<24} {statistics.median(ms):>10.1f} {p95:>7.1f} {ms[-1]:>9.1f}  {status}")

        if args.library and args.photo:
            cfg = config(args.library, tmp / "real", 1024)
            base, app = serve(cfg)
            photo = args.photo
        folder = tmp / "cli_photos"
        folder.mkdir()
        (folder / photo.name).write_bytes(photo.read_bytes())
        action_times, desk_times = [], []
        with httpx.Client(base_url=base, timeout=600) as client:
            desk_search(client, photo)  # warm both paths once
            for k in range(args.searches):
                job = library_job(cfg).varied(str(folder), tmp / f"cli{k}")
                action_times += timed(lambda j=job: search(j), 1)
                desk_times += timed(lambda: desk_search(client, photo), 1)
        a, d = statistics.median(action_times), statistics.median(desk_times)
        print(f"\nsearch of one photo ({photo.name}), {args.searches} times each way, interleaved:")
        print(f"  library action in process (library.py action=search without Hydra's start): median {a:.3f} s")
        print(f"  through the desk (upload, hash, queue, same action, results read back):   median {d:.3f} s")
        print(f"  desk overhead: {d - a:+.3f} s per search (target <= 0.5 s); ratio {d / a:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
