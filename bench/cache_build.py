"""Cache build speed on full-size photos: building the patch cache vs plain PIL decoding of the same JPEGs, and
2 worker processes vs 1, measured side by side in one run.

    python bench/cache_build.py [--images 12] [--width 4000 --height 3000] [--repeats 2]

Prints images/s of (a) ``Image.open(f).load()`` (the JPEG decode alone) over the files in one process, (b) the cache
build with 1 worker (decode, 256 grid patches, content hash, write, index + checksums), (c) the build with 2
workers, and the ratios b/a (target >= 0.8) and c/b (target >= 1.7). Best of ``--repeats`` interleaved runs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from sci_lightning.data.cache import PatchSettings, load_or_build  # noqa: E402

from common import machine_line, write_photo  # noqa: E402


def plain_decode(paths: list[Path]) -> float:
    start = time.perf_counter()
    for p in paths:
        with Image.open(p) as img:
            img.load()  # the decode itself: the least any reader of these files must do
    return len(paths) / (time.perf_counter() - start)


def cache_build(paths: list[Path], cache_dir: Path, workers: int) -> float:
    shutil.rmtree(cache_dir, ignore_errors=True)
    start = time.perf_counter()
    cache = load_or_build(paths, PatchSettings(), cache_dir, num_workers=workers)
    rate = len(paths) / (time.perf_counter() - start)
    assert len(cache.patches) == 256 * len(paths)
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = [
            write_photo(Path(tmp) / f"photo_{i:03d}.jpg", args.width, args.height, seed=i) for i in range(args.images)
        ]
        mb = sum(p.stat().st_size for p in paths) / len(paths) / 2**20
        print(machine_line())
        print(
            f"{args.images} JPEGs of {args.width}x{args.height} ({args.width * args.height / 1e6:.0f} MP, "
            f"{mb:.1f} MiB each on average)"
        )
        plain_decode(paths)  # warm the page cache: every side then reads from memory
        rates: dict[str, list[float]] = {"decode": [], "build1": [], "build2": []}
        for _ in range(args.repeats):
            rates["decode"].append(plain_decode(paths))
            rates["build1"].append(cache_build(paths, Path(tmp) / "cache", 1))
            rates["build2"].append(cache_build(paths, Path(tmp) / "cache", 2))
        best = {k: max(v) for k, v in rates.items()}
        print(f"plain PIL decode, 1 process   {best['decode']:7.2f} images/s")
        print(f"cache build, 1 worker         {best['build1']:7.2f} images/s")
        print(f"cache build, 2 workers        {best['build2']:7.2f} images/s")
        print(f"ratio build(1) / decode       {best['build1'] / best['decode']:7.3f}   (target >= 0.8)")
        print(f"ratio build(2) / build(1)     {best['build2'] / best['build1']:7.3f}   (target >= 1.7)")


if __name__ == "__main__":
    main()
