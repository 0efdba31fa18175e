"""The library index's scan alone: one photo's code against N camera codes, by index side.

    python bench/library_scan.py [--sizes 1000 10000] [--sides 256 512 1024] [--repeats 5]

Random codes (the scan's cost does not depend on their values): the time of ``z_scores`` (XOR + popcount over
the packed codes, what every search pays before verifying its shortlist), best of ``--repeats``, and the
index's memory. The rest of a search (reading and PCE-ing the shortlisted fingerprints) grows with the
fingerprints' size, not with N: ``bench/library_search.py`` measures the whole search.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from sci_lightning.library.index import z_scores

from common import machine_line


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--sides", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(machine_line())
    rng = np.random.default_rng(0)
    for side in args.sides:
        per = side * side // 8
        for n in args.sizes:
            codes = rng.integers(0, 256, (n, per), dtype=np.uint8)
            query = rng.integers(0, 256, per, dtype=np.uint8)
            best = float("inf")
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                z_scores(codes, query)
                best = min(best, time.perf_counter() - t0)
            print(
                f"side {side:>4} ({per:>6} B per camera, {per * n / 2**20:7.0f} MiB in all), N = {n:>5}: "
                f"scan {best * 1000:7.1f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
