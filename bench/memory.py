"""Memory while training over the patch cache: 100k vs 1M patches, measured side by side in one run.

    python bench/memory.py [--sizes 100000 1000000] [--steps 150] [--batch-size 256]

For each size a cache folder in the pipeline's format is written straight from generated patches (no JPEGs),
then a fresh process opens it the way the DataModule does (meta + checksums, memmap) and trains the paper CNN
through the pipeline's dataset/DataLoader/SCIClassifier for the same number of steps over randomly shuffled
patches of the whole cache. Printed per size: peak anonymous RSS (what the process allocates), peak total RSS
(which adds memory-mapped cache pages: page cache the kernel may drop at any time) and the ratio of the peaks
between the largest and the smallest cache (target: flat, i.e. ~1.0, and under 2 GB).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import PeakMemory, machine_line  # noqa: E402

PER_IMAGE, SIZE, N_CLASSES = 256, 32, 5


def write_cache(folder: Path, n_patches: int) -> None:
    """A cache folder as ``sci_lightning.data.cache`` writes it, filled with generated patches."""
    from sci_lightning.data import cache as cache_mod

    folder.mkdir(parents=True)
    n_images = -(-n_patches // PER_IMAGE)
    mm = np.memmap(folder / "patches.u8", dtype=np.uint8, mode="w+", shape=(n_patches, SIZE, SIZE, 3))
    rng = np.random.default_rng(0)
    block = 65536
    for start in range(0, n_patches, block):  # written in blocks so the writer itself stays small
        stop = min(n_patches, start + block)
        mm[start:stop] = rng.integers(0, 256, (stop - start, SIZE, SIZE, 3), dtype=np.uint8)
    mm.flush()
    del mm
    counts = np.full(n_images, PER_IMAGE)
    counts[-1] = n_patches - PER_IMAGE * (n_images - 1)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    np.savez(
        folder / "index.npz",
        offsets=offsets,
        positions=np.zeros((n_patches, 2), np.int32),
        image_sizes=np.full((n_images, 2), 512, np.int32),
    )
    meta = {
        "version": cache_mod.FORMAT_VERSION,
        "n_images": n_images,
        "n_patches": n_patches,
        "settings": {"size": SIZE, "per_image": PER_IMAGE, "selection": "grid", "seed": 0},
        "files": [f"img_{i}.jpg" for i in range(n_images)],
        "skipped": {},
        "content_sha256": [""] * n_images,
        "index_sha256": cache_mod._sha256_file(folder / "index.npz"),
        "patches_sampled_sha256": cache_mod._sampled_sha256(folder / "patches.u8"),
    }
    (folder / "meta.json").write_text(json.dumps(meta))


def child(folder: Path, steps: int, batch_size: int) -> None:
    """Open the cache and train for ``steps`` steps; print peak memory as JSON."""
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader

    from sci_lightning.data import cache as cache_mod
    from sci_lightning.data.datamodule import PatchBatchDataset, keep_batch
    from sci_lightning.methods.cnn.module import SCIClassifier
    from sci_lightning.models.sci_cnn import SCICNN

    with PeakMemory() as mem:
        n_images = json.loads((folder / "meta.json").read_text())["n_images"]
        cache = cache_mod._load(folder, n_images)
        assert cache is not None, "cache failed its consistency check"
        n = len(cache.patches)
        rows, owners = cache.patch_rows(np.arange(n_images))
        labels = owners % N_CLASSES
        ds = PatchBatchDataset(cache.path / "patches.u8", cache.patches.shape, rows, labels, owners)
        loader = DataLoader(ds, batch_size=batch_size, shuffle=True, collate_fn=keep_batch)
        classes = [f"c{i}" for i in range(N_CLASSES)]
        module = SCIClassifier(SCICNN(N_CLASSES), classes, optimizer=lambda p: torch.optim.Adam(p, 1e-3))
        trainer = pl.Trainer(
            max_steps=steps,
            accelerator="cpu",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
        )
        trainer.fit(module, train_dataloaders=loader)
    print(json.dumps({"patches": n, "anon_mib": mem.peak_anon, "total_mib": mem.peak_total}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.steps, args.batch_size)
        return
    print(machine_line())
    print(f"training {args.steps} steps of batch {args.batch_size} (shuffled over the whole cache) per size")
    results = []
    with tempfile.TemporaryDirectory(dir=Path.home()) as tmp:
        for n in args.sizes:
            folder = Path(tmp) / f"patches-{n}"
            write_cache(folder, n)
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(folder),
                    "--steps",
                    str(args.steps),
                    "--batch-size",
                    str(args.batch_size),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'patches':>9} {'cache MiB':>10} {'peak anon RSS MiB':>18} {'peak total RSS MiB':>19}")
    for r in results:
        print(
            f"{r['patches']:>9} {r['patches'] * SIZE * SIZE * 3 / 2**20:>10.0f} {r['anon_mib']:>18.0f} "
            f"{r['total_mib']:>19.0f}"
        )
    lo, hi = results[0], results[-1]
    print(
        f"ratio {hi['patches']} / {lo['patches']} patches: anon {hi['anon_mib'] / lo['anon_mib']:.3f}, "
        f"total {hi['total_mib'] / lo['total_mib']:.3f}   (target: flat, peak under 2048 MiB)"
    )


if __name__ == "__main__":
    main()
