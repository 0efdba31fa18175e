"""The fingerprint library at scale with turned and resized photos: indexed search (codes for every turn and
aspect-kept size, shortlist, geometry search of the shortlist) vs the exhaustive geometry search of every camera.

    python bench/library_geometry.py [--size 10000] [--side 256] [--queries 24] [--timed 3] [--shortlist 20]

The library and the synthetic questioned photos are those of bench/library_search.py (white PRNU, whole-frame
PCE ~60-3000, 20 % of photos from cameras outside the library). Each photo is then turned by 90, 180 or 270
degrees, or resized to half its side (Lanczos, the whole frame). Both searches run with ``geometry=auto`` and
decide by the false-alarm bar (1e-4, combined over the whole library); top-1 agreement = the same camera named, or
both "unknown". The exhaustive scan runs on 2 processes with the fingerprints in memory (its timing is not the
point); the indexed latency is timed in this process, one photo at a time.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from sci_lightning.fingerprint.geometry import GeometrySettings, resample
from sci_lightning.fingerprint.scoring import Search, score_residual
from sci_lightning.fingerprint.significance import photo_log10_pfa
from sci_lightning.library.search import Searcher, SearchSettings

from common import machine_line
from library_search import build, queries, query

BAR = math.log10(1e-4)
AUTO = Search(GeometrySettings(name="auto"), BAR)
_FPS: dict[str, np.ndarray] = {}


def transformed(q: int, cam: int, side: int, target: float, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """A query photo turned (``rot90`` ...) or halved (``half``)."""
    w, grey = query(q, cam, side, target)
    if kind == "half":
        return resample(w, side // 2, side // 2), resample(grey, side // 2, side // 2)
    k = int(kind[3:]) // 90
    return np.ascontiguousarray(np.rot90(w, k)), np.ascontiguousarray(np.rot90(grey, k))


def decision(out: dict, family: int) -> str:
    if not out.get("scores"):
        return "unknown"
    lps = photo_log10_pfa({**out, "family": family})
    best = min(lps, key=lps.get)
    return best if lps[best] <= BAR else "unknown"


def _load_all(path: Path) -> None:
    from sci_lightning.library.store import FingerprintLibrary

    lib = FingerprintLibrary(path)
    _FPS.update({name: lib.fingerprint(name) for name in lib.names()})


def _exhaustive(args: tuple) -> str:
    side, (q, cam, target, kind) = args
    out = score_residual(*transformed(q, cam, side, target, kind), _FPS, search=AUTO)
    return decision(out, len(_FPS))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=10000)
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--queries", type=int, default=24)
    ap.add_argument("--timed", type=int, default=3)
    ap.add_argument("--shortlist", type=int, default=20)
    args = ap.parse_args()
    print(machine_line())
    n, side = args.size, args.side
    root = Path(tempfile.mkdtemp(prefix="libgeo-"))
    try:
        t0 = time.perf_counter()
        lib = build(root / "lib", n, side)
        print(f"N = {n} cameras of {side} px: enrolled in {time.perf_counter() - t0:.0f} s")
        indexed = Searcher(lib, None, SearchSettings(shortlist=args.shortlist, min_z=4.0, search=AUTO))
        kinds = ["rot90", "rot180", "rot270", "half"]
        for kind in kinds:
            times = []
            for q, cam, target in queries(n, args.timed, side, seed=3):
                w, grey = transformed(q, cam, side, target, kind)
                t0 = time.perf_counter()
                out = indexed.search_residual(w, grey)
                times.append(time.perf_counter() - t0)
            print(
                f"  {kind}: indexed search {np.median(times):.3f} s per photo (median of {len(times)}), "
                f"{out['n_verified']} cameras verified for the last"
            )
        qs = [
            (q, cam, target, kinds[i % len(kinds)])
            for i, (q, cam, target) in enumerate(queries(n, args.queries, side, seed=4))
        ]
        got = [decision(indexed.search_residual(*transformed(q, cam, side, t, k)), n) for q, cam, t, k in qs]
        truth = [f"cam{cam:05d}" if cam < n else "unknown" for _, cam, _, _ in qs]
        with ProcessPoolExecutor(2, initializer=_load_all, initargs=(root / "lib",)) as pool:
            every = list(pool.map(_exhaustive, [(side, item) for item in qs]))
        print("| transform | photos | indexed = exhaustive | indexed right | exhaustive right |")
        print("|---|---|---|---|---|")
        for kind in kinds:
            rows = [i for i, item in enumerate(qs) if item[3] == kind]
            same = sum(got[i] == every[i] for i in rows)
            print(
                f"| {kind} | {len(rows)} | {same} / {len(rows)} | {sum(got[i] == truth[i] for i in rows)} | "
                f"{sum(every[i] == truth[i] for i in rows)} |"
            )
        same = sum(g == e for g, e in zip(got, every))
        print(f"top-1 agreement with the exhaustive search: {same} / {len(qs)}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
