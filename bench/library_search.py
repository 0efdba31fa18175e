"""Fingerprint library search at scale: indexed (shortlist + PCE) vs the exhaustive PCE scan, same run.

    python bench/library_search.py [--sizes 1000 10000] [--side 256] [--queries 100] [--timed 3] [--shortlist 20]

Builds libraries of N synthetic fingerprints (``--side`` x ``--side`` px, float32: each a white Gaussian PRNU
K, 1 % std, plus the estimation noise of a fingerprint from ~20 photos) with the real enrolment path
(``FingerprintLibrary.enrol``: Zarr array + catalogue row + code), then questions it with synthetic photos:
residual W = I*K + noise, I a smooth random scene, the noise set so the whole-frame PCE against the library's
fingerprint spans ~60 to ~3000 (log-uniform; the range of real natural photos, vision-3: 116 to 10 460), and
20 % of the queries from cameras *not* in the library (the right answer: unknown).

For each N: per-photo latency of the indexed search (index scan + PCE of the shortlist, fingerprints read from
the library; the residual is an input here, the same cost for both) and of the exhaustive scan (every
fingerprint read from the library and PCE'd), on ``--timed`` queries, one process, interleaved; then on ``--queries``
queries the indexed decision (camera or unknown, PCE >= 60) against the truth at every N, and against the
exhaustive scan's decision at the ``--agreement-at`` sizes (that scan on 2 processes with the fingerprints in
memory, to save time: agreement does not depend on timing) for shortlists of 5 to 100, by PCE band, with the
index rank of the camera the exhaustive scan names. Also prints the
index's storage per camera against the float32 fingerprint.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from sci_lightning.fingerprint.scoring import score_residual
from sci_lightning.library.index import photo_code, shortlist, z_scores
from sci_lightning.library.search import Searcher, SearchSettings
from sci_lightning.library.store import FingerprintLibrary

from common import machine_line

RESIDUAL = {"sigma": 5.0, "levels": 4, "wavelet": "db4", "grey_first": True}
THRESHOLD = 60.0
PRNU_STD = 0.01


def true_prnu(cam: int, side: int) -> np.ndarray:
    return np.random.default_rng(10_000_000 + cam).normal(0, PRNU_STD, (side, side)).astype(np.float32)


def estimate(cam: int, side: int) -> np.ndarray:
    """The library's fingerprint: the true PRNU plus estimation noise (fingerprint of ~20 photos)."""
    noise = np.random.default_rng(20_000_000 + cam).normal(0, PRNU_STD * 0.5, (side, side))
    return (true_prnu(cam, side) + noise).astype(np.float32)


def query(q: int, cam: int, side: int, target_pce: float) -> tuple[np.ndarray, np.ndarray]:
    """(residual, grey) of a synthetic photo of camera ``cam`` whose whole-frame PCE is about ``target_pce``."""
    rng = np.random.default_rng(30_000_000 + q)
    coarse = rng.uniform(60, 220, (side // 32 + 2, side // 32 + 2))
    grey = np.kron(coarse, np.ones((32, 32)))[:side, :side].astype(np.float32)
    signal = grey * true_prnu(cam, side)
    rho = np.sqrt(target_pce / (side * side)) / 0.89  # 0.89: the estimate's correlation with the true PRNU
    sigma = float(signal.std()) * np.sqrt(max(1 / rho**2 - 1, 0.0))
    return (signal + rng.normal(0, sigma, signal.shape)).astype(np.float32), grey


def build(path: Path, n: int, side: int) -> FingerprintLibrary:
    lib = FingerprintLibrary(path, create=True, residual=RESIDUAL, side=side)
    for cam in range(n):
        lib.enrol(f"cam{cam:05d}", "synthetic", estimate(cam, side), [], "bench")
    return lib


def decision(out: dict) -> str:
    scores = out["scores"]
    if not scores:
        return "unknown"
    best = max(scores, key=lambda c: scores[c][0])
    return best if scores[best][0] >= THRESHOLD else "unknown"


def queries(n_lib: int, count: int, side: int, seed: int) -> list[tuple[int, int, float]]:
    """(query id, camera, target PCE): 80 % of cameras in the library, 20 % outside it."""
    rng = np.random.default_rng(seed)
    out = []
    for q in range(count):
        known = q % 5 != 4
        cam = int(rng.integers(0, n_lib)) if known else n_lib + 1_000_000 + q
        out.append((seed * 100_000 + q, cam, float(np.exp(rng.uniform(np.log(60), np.log(3000))))))
    return out


_FPS: dict[str, np.ndarray] = {}


def _load_all(path: Path) -> None:
    lib = FingerprintLibrary(path)
    _FPS.update({name: lib.fingerprint(name) for name in lib.names()})


def _exhaustive_pce(args: tuple) -> np.ndarray:
    """PCE of one query against every fingerprint (held in this worker's memory), in library name order."""
    side, (q, cam, target) = args
    scores = score_residual(*query(q, cam, side, target), _FPS)["scores"]
    return np.array([scores[name][0] for name in sorted(_FPS)])


def _decide(pce: np.ndarray, rows: np.ndarray, names: list[str]) -> str:
    """The decision among ``rows`` only: best PCE if it reaches the threshold."""
    best = rows[np.argmax(pce[rows])]
    return names[best] if pce[best] >= THRESHOLD else "unknown"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--timed", type=int, default=3)
    ap.add_argument("--shortlist", type=int, default=20)
    ap.add_argument("--agreement-at", type=int, nargs="+", default=[1000, 10000])
    args = ap.parse_args()
    print(machine_line())
    side = args.side
    bits = side * side
    print(
        f"index: {bits // 8} bytes per camera ({bits} sign bits) vs {bits * 4} bytes float32 for the same area "
        f"({bits * 4 // (bits // 8)}x smaller); vs a 12 MP float32 fingerprint (48 000 000 bytes): "
        f"{48_000_000 // (bits // 8)}x"
    )
    root = Path(tempfile.mkdtemp(prefix="libbench-"))
    try:
        for n in args.sizes:
            t0 = time.perf_counter()
            lib = build(root / f"lib{n}", n, side)
            print(
                f"\nN = {n}: enrolled in {time.perf_counter() - t0:.0f} s "
                f"({(time.perf_counter() - t0) / n * 1000:.1f} ms per camera)"
            )
            settings = SearchSettings(shortlist=args.shortlist, min_z=4.0)
            t0 = time.perf_counter()
            indexed = Searcher(lib, None, settings)
            print(f"  open (index load + checksum): {time.perf_counter() - t0:.2f} s")
            exhaustive = Searcher(lib, None, SearchSettings(exhaustive=True), cache=0)
            t_idx, t_exh = [], []
            for q, cam, target in queries(n, args.timed, side, seed=1):
                w, grey = query(q, cam, side, target)
                t0 = time.perf_counter()
                a = indexed.search_residual(w, grey)
                t_idx.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                b = exhaustive.search_residual(w, grey)
                t_exh.append(time.perf_counter() - t0)
                print(
                    f"  query cam {cam}: indexed {t_idx[-1]:.3f} s ({len(a['scores'])} verified) -> {decision(a)}; "
                    f"exhaustive {t_exh[-1]:.1f} s -> {decision(b)}"
                )
            mi, me = float(np.median(t_idx)), float(np.median(t_exh))
            print(
                f"  latency per photo (median of {len(t_idx)}): indexed {mi:.3f} s, exhaustive {me:.1f} s, "
                f"ratio {me / mi:.0f}x"
            )
            qs = queries(n, args.queries, side, seed=2)
            got = [decision(indexed.search_residual(*query(q, cam, side, target))) for q, cam, target in qs]
            truth = [f"cam{cam:05d}" if cam < n else "unknown" for _, cam, _ in qs]
            right = sum(g == t for g, t in zip(got, truth))
            print(f"  indexed top-1 = the true camera (or unknown): {right} / {len(qs)} ({right / len(qs):.3f})")
            if n not in args.agreement_at:
                continue
            # Agreement: the exhaustive scan (every PCE) on 2 processes, fingerprints in memory, timing not measured.
            # The indexed decision at shortlist k is the best PCE among its shortlist (the same PCE values: tested),
            # so one exhaustive scan per query gives the agreement at every k; the default k is also run for real.
            with ProcessPoolExecutor(2, initializer=_load_all, initargs=(root / f"lib{n}",)) as pool:
                every = list(pool.map(_exhaustive_pce, [(side, item) for item in qs], chunksize=4))
            names, codes, _ = lib.index()
            ks = sorted({5, 10, args.shortlist, 50, 100})
            agree = dict.fromkeys(ks, 0)
            bands: dict[str, list[int]] = {}
            ranks = []
            for (q, cam, target), g, pce in zip(qs, got, every):
                everything = np.arange(len(names))
                ex = _decide(pce, everything, names)
                z = z_scores(codes, photo_code(*query(q, cam, side, target), side))
                for k in ks:
                    agree[k] += _decide(pce, shortlist(z, k, 4.0), names) == ex
                assert _decide(pce, shortlist(z, args.shortlist, 4.0), names) == g  # the real search agrees
                if ex != "unknown":
                    ranks.append(int((z > z[names.index(ex)]).sum()) + 1)
                own = pce[cam] if cam < n else float("nan")
                band = (
                    "unknown camera"
                    if cam >= n
                    else ("PCE < 200" if own < 200 else "PCE 200-1000" if own < 1000 else "PCE >= 1000")
                )
                b = bands.setdefault(band, [0, 0])
                b[0] += _decide(pce, shortlist(z, args.shortlist, 4.0), names) == ex
                b[1] += 1
            for k in ks:
                print(
                    f"  top-1 agreement with the exhaustive scan, shortlist {k}: {agree[k]} / {len(qs)} "
                    f"({agree[k] / len(qs):.3f})"
                )
            print(
                f"    by band (shortlist {args.shortlist}): "
                + ", ".join(f"{band} {ok} / {total}" for band, (ok, total) in sorted(bands.items()))
            )
            print(
                f"    index rank of the exhaustive scan's camera (named queries): median {np.median(ranks):.0f}, "
                f"max {max(ranks)}, ranks > 20: {sum(r > 20 for r in ranks)} of {len(ranks)}"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
