"""Where a training step's time goes: the Lightning pipeline with parts of ``SCIClassifier.training_step`` changed
or taken away, against the bare PyTorch loop of ``bench/train_throughput.py``, all in one run.

    python bench/step_cost.py [--images 60] [--batch-sizes 128 512] [--repeats 3]

Variants (each a subclass that changes only ``training_step``):
  full            the module as shipped: loss, train-metric update, epoch-mean loss (MeanMetric), step loss
                  logged with ``self.log`` only on the steps the loggers record (every log_every_n_steps)
  log_every_step  as before 2026-11-25: ``self.log(on_step=True, on_epoch=True, prog_bar=True)`` on every step
  no_metrics      the shipped step without the train-metric update (accuracy, macro accuracy, macro F1)
  bare_step       only forward and loss (what Lightning itself adds per step remains)
Prints patches/s and the ratio of each to the bare loop.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import lightning.pytorch as pl
import torch
from train_throughput import bare_loop, pipeline, training_patches

from sci_lightning.methods.cnn.module import SCIClassifier


class LogEveryStep(SCIClassifier):
    def training_step(self, batch, batch_idx):
        x, y, _ = batch
        logits = self(x)
        loss = self.criterion(logits, y)
        self.train_metrics.update(logits, y)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss


class NoMetrics(SCIClassifier):
    def training_step(self, batch, batch_idx):
        x, y, _ = batch
        loss = self.criterion(self(x), y)
        self.train_loss.update(loss.detach(), len(y))
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train/loss_step", loss, prog_bar=True)
        return loss


class BareStep(SCIClassifier):
    def training_step(self, batch, batch_idx):
        x, y, _ = batch
        return self.criterion(self(x), y)


VARIANTS = {"full": SCIClassifier, "log_every_step": LogEveryStep, "no_metrics": NoMetrics, "bare_step": BareStep}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=60)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    pl.seed_everything(0, verbose=False)
    with tempfile.TemporaryDirectory() as tmp:
        dm, x_mem, yb = training_patches(Path(tmp), args.images)
        train = dm.datasets["train"]
        print(
            f"torch {torch.__version__}, lightning {pl.__version__}, {torch.get_num_threads()} threads, "
            f"{len(train)} train patches"
        )
        print(f"{'batch':>6} {'variant':>14} {'p/s':>7} {'/ bare':>7}")
        for bs in args.batch_sizes:
            best = {name: 0.0 for name in [*VARIANTS, "bare_loop"]}
            for _ in range(args.repeats):  # interleaved: drift in machine load hits every variant alike
                for name, cls in VARIANTS.items():
                    best[name] = max(best[name], pipeline(dm, bs, module_cls=cls))
                best["bare_loop"] = max(best["bare_loop"], bare_loop(x_mem, yb, len(dm.classes), bs))
            for name, value in best.items():
                print(f"{bs:>6} {name:>14} {value:>7.0f} {value / best['bare_loop']:>7.3f}")


if __name__ == "__main__":
    main()
