"""One questioned photo: a 12 MP JPEG -> ranked camera classes, with the ``evaluate.py images=...`` code path.

    python bench/questioned_image.py [--repeats 5] [--ckpt PATH]

Without ``--ckpt`` a small model is trained first with ``train.py`` (tiny built-in data, one epoch: the weights do
not matter for timing). Prints the model load time (checkpoint read + network build) and, separately, the
in-process time from file to ranked classes (decode, 256 grid patches, forward pass, ranking); target < 1 s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine_line, write_photo  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def train_tiny(out: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "train.py",
            f"hydra.run.dir={out}",
            "logger=none",
            "data.images_per_camera=6",
            "data.image_size=96",
            "n_folds=3",
            "trainer.max_epochs=1",
            "+trainer.enable_progress_bar=false",
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return out / "checkpoints" / "last.ckpt"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ckpt", type=Path)
    args = ap.parse_args()
    import torch

    from sci_lightning.methods.cnn.checkpoint import load_module
    from sci_lightning.methods.cnn.inference import score_files

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.ckpt or train_tiny(Path(tmp) / "run")
        photo = write_photo(Path(tmp) / "questioned.jpg")
        print(machine_line())
        print(f"questioned image: 4000x3000 JPEG, {photo.stat().st_size / 2**20:.1f} MiB; checkpoint {ckpt.name}")
        start = time.perf_counter()
        module, _, classes, settings, _ = load_module(str(ckpt))
        load_s = time.perf_counter() - start
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            (row,) = score_files(module, [photo], settings)
            ranked = [classes[i] for i in np.argsort(-row["mean_probs"])]
            times.append(time.perf_counter() - start)
        assert row["n_patches"] == settings.per_image and len(ranked) == len(classes)
        print(f"model load (checkpoint + network): {load_s:.3f} s")
        print(
            f"file -> ranked classes ({row['n_patches']} patches, {torch.get_num_threads()} threads): "
            f"best {min(times):.3f} s, median {float(np.median(times)):.3f} s of {args.repeats}   (target < 1 s)"
        )


if __name__ == "__main__":
    main()
