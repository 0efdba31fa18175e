"""Library ingestion throughput: a 2-worker Dask local cluster vs a single process, same photos, same run.

    python bench/library_ingest.py [--photos 24] [--width 2000] [--height 1500] [--repeats 2]

Ingestion = what ``python library.py action=ingest images=DIR`` does per photo: decode, wavelet residual
(written to the residual store), index code, catalogue commit. Photo-like JPEGs (bench/common.py). Each run
starts from an empty residual store and library; runs alternate single / Dask, best of ``--repeats``. The Dask
end-to-end time includes starting and stopping the local cluster (what a user waits for, a fixed cost of a few
seconds); the throughput compares first submission to last result (what scales with the photo set). Also
checks that both produce the same codes and residual bytes.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.library import FingerprintLibrary, ingest_photos

from common import machine_line, write_photo

RESIDUAL = {"sigma": 5.0, "levels": 4, "wavelet": "db4", "grey_first": True}


def run(root: Path, photos: list[str], scheduler: str, tag: str) -> tuple[float, float, FingerprintLibrary, Path]:
    """(end-to-end seconds, seconds from first submission to last result, library, residual store folder)."""
    lib = FingerprintLibrary(root / f"lib-{tag}", create=True, residual=RESIDUAL, side=512)
    cache = root / f"cache-{tag}"
    t0 = time.perf_counter()
    done = ingest_photos(lib, photos, ResidualStore(cache, RESIDUAL), scheduler, 2)
    elapsed = time.perf_counter() - t0
    assert done["n_ingested"] == len(photos), done
    return elapsed, done["seconds"]["run"], lib, cache


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=24)
    ap.add_argument("--width", type=int, default=2000)
    ap.add_argument("--height", type=int, default=1500)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(machine_line())
    root = Path(tempfile.mkdtemp(prefix="ingestbench-"))
    try:
        photos = [str(write_photo(root / f"p{i:03d}.jpg", args.width, args.height, seed=i)) for i in range(args.photos)]
        print(f"{args.photos} photos of {args.width}x{args.height} px")
        best = {"single": float("inf"), "local": float("inf")}
        steady = {"single": float("inf"), "local": float("inf")}
        for rep in range(args.repeats):
            outs = {}
            for scheduler in ("single", "local"):
                elapsed, running, lib, cache = run(root, photos, scheduler, f"{scheduler}{rep}")
                best[scheduler] = min(best[scheduler], elapsed)
                steady[scheduler] = min(steady[scheduler], running)
                outs[scheduler] = (lib, cache)
                print(
                    f"  repeat {rep}: {scheduler:>6}: {elapsed:.1f} s end to end "
                    f"({args.photos / elapsed:.2f} photos/s), "
                    f"{running:.1f} s first submission to last result ({args.photos / running:.2f} photos/s)"
                )
            rows = "SELECT sha256, code FROM photos ORDER BY sha256"
            same_codes = outs["single"][0].cat.query(rows) == outs["local"][0].cat.query(rows)
            same_res = all(
                np.array_equal(np.load(f)["w"], np.load(outs["local"][1] / f.relative_to(outs["single"][1]))["w"])
                for f in outs["single"][1].rglob("*.npz")
            )
            print(f"  repeat {rep}: same codes {same_codes}, same residual bytes {same_res}")
        print(
            f"best end to end: single {best['single']:.1f} s, Dask 2 workers {best['local']:.1f} s -> "
            f"{best['single'] / best['local']:.2f}x (cluster start and stop included)"
        )
        print(
            f"best throughput (cluster up): single {args.photos / steady['single']:.2f} photos/s, Dask 2 workers "
            f"{args.photos / steady['local']:.2f} photos/s -> {steady['single'] / steady['local']:.2f}x"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
