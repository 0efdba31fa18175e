"""Training throughput: the full Lightning pipeline (patch cache memmap -> DataLoader -> SCIClassifier) vs a bare
PyTorch loop over the same patches held in memory as ready float tensors, same network, optimiser and batch size.

    python bench/train_throughput.py [--images 60] [--batch-sizes 32 128 512] [--repeats 2] [--gpu]

Prints patches/s for both and their ratio (pipeline / bare); the target is >= 0.9 on CPU. Both sides feed the
network channels_last float input (the layout the pipeline produces).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from PIL import Image

from sci_lightning.data.datamodule import SCIDataModule
from sci_lightning.methods.cnn.module import SCIClassifier, normalise_input
from sci_lightning.models.sci_cnn import SCICNN

WARMUP = 5


def make_photos(root: Path, n_images: int, size: int = 544) -> None:
    rng = np.random.default_rng(0)
    for i in range(n_images):
        cam = f"cam{i % 3}"
        (root / cam).mkdir(parents=True, exist_ok=True)
        arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / cam / f"{i:04d}.jpg", quality=90)


class StepTimer(pl.Callback):
    """Times training steps after a warm-up, from the first timed batch's start to the epoch's end."""

    def __init__(self) -> None:
        self.start, self.patches, self.elapsed = 0.0, 0, 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if batch_idx == WARMUP:
            self.start = time.perf_counter()
        if batch_idx >= WARMUP:
            self.patches += len(batch[1])

    def on_train_epoch_end(self, trainer, module):
        self.elapsed = time.perf_counter() - self.start


def pipeline(
    dm: SCIDataModule,
    batch_size: int,
    accelerator: str = "cpu",
    precision: str = "32-true",
    module_cls: type[SCIClassifier] = SCIClassifier,
) -> float:
    """Patches/s of one training epoch through the full pipeline (``module_cls``: a variant of the module)."""
    dm.loader_cfg["batch_size"] = batch_size
    torch.manual_seed(0)
    module = module_cls(SCICNN(len(dm.classes)), dm.classes, optimizer=lambda p: torch.optim.Adam(p, 1e-3))
    timer = StepTimer()
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator=accelerator,
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer],
    )
    trainer.fit(module, datamodule=dm)
    return timer.patches / timer.elapsed


def bare_loop(
    x: torch.Tensor, y: torch.Tensor, n_classes: int, batch_size: int, device: str = "cpu", bf16: bool = False
) -> float:
    torch.manual_seed(0)
    net = SCICNN(n_classes).to(device)
    x, y = x.to(device), y.to(device)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    net.train()
    order = torch.randperm(len(x))
    patches, start = 0, 0.0
    for step, i in enumerate(range(0, len(x), batch_size)):
        if step == WARMUP:
            start = time.perf_counter()
        idx = order[i : i + batch_size]
        xb, yb = x[idx], y[idx]
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(net(xb), yb)
        loss.backward()
        opt.step()
        if step >= WARMUP:
            patches += len(idx)
    if device == "cuda":
        torch.cuda.synchronize()
    return patches / (time.perf_counter() - start)


def training_patches(tmp: Path, n_images: int) -> tuple[SCIDataModule, torch.Tensor, torch.Tensor]:
    """A fold's datamodule over generated photos, and its training patches in memory for the bare loop."""
    root = tmp / "photos"
    make_photos(root, n_images)
    data = {"layout": "folder", "root": str(root), "cache_dir": str(tmp / "cache"), "split": {"val_fraction": 0.1}}
    dm = SCIDataModule(data, task_name="sensor_level", n_folds=5, seed=0)
    dm.prepare_data()
    dm.setup("fit")
    train = dm.datasets["train"]
    xb, yb, _ = train.__getitems__(list(range(len(train))))
    # The pipeline's NHWC uint8 patches become channels_last float tensors, which CPU convolutions run
    # markedly faster than NCHW; the bare loop gets the same layout so the ratio measures the data path only.
    return dm, normalise_input(xb, "centered").contiguous(memory_format=torch.channels_last), yb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=60)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128, 512])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--gpu", action="store_true", help="both sides on CUDA with bf16 autocast (trainer=gpu settings)")
    args = ap.parse_args()
    accel, device = ("gpu", "cuda") if args.gpu else ("cpu", "cpu")
    precision = "bf16-mixed" if args.gpu else "32-true"
    pl.seed_everything(0, verbose=False)
    with tempfile.TemporaryDirectory() as tmp:
        dm, x_mem, y_mem = training_patches(Path(tmp), args.images)
        train = dm.datasets["train"]
        gpu = f", GPU {torch.cuda.get_device_name()} bf16-mixed" if args.gpu else ""
        print(
            f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
            f"torch {torch.__version__}, lightning {pl.__version__}{gpu}"
        )
        print(f"train patches per epoch: {len(train)} ({args.images} images, 256 patches each, 5-fold split)")
        print(f"{'batch':>6} {'pipeline p/s':>13} {'bare p/s':>10} {'ratio':>6}")
        for bs in args.batch_sizes:
            pipe, bare = [], []
            for _ in range(args.repeats):  # interleaved so drift in machine load hits both sides
                pipe.append(pipeline(dm, bs, accel, precision))
                bare.append(bare_loop(x_mem, y_mem, len(dm.classes), bs, device, bf16=args.gpu))
            p, b = max(pipe), max(bare)
            print(f"{bs:>6} {p:>13.0f} {b:>10.0f} {p / b:>6.3f}")


if __name__ == "__main__":
    main()
