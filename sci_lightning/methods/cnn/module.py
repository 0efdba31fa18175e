"""SCIClassifier: the LightningModule that owns the loss, optimiser and patch/image-level metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassConfusionMatrix

from sci_lightning.errors import SCIConfigError
from sci_lightning.methods.cnn.metrics import ImageAggregator, classification_metrics, vote_decision

INPUT_NORMS = ("unit", "centered", "patch_mean")
EVAL_STAGES = ("val", "test")


def normalise_input(x: torch.Tensor, how: str) -> torch.Tensor:
    """uint8 NHWC patches -> float NCHW network input.

    ``unit`` scales to [0, 1]; ``centered`` to [-0.5, 0.5]; ``patch_mean`` also removes each patch's
    per-channel mean, so scene brightness is gone and the noise residual dominates. The result keeps the
    NHWC storage (a channels_last NCHW view), which CPU and GPU convolutions run faster than plain NCHW.
    """
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if how == "centered":
        return x.sub_(0.5)
    if how == "patch_mean":
        return x - x.mean(dim=(2, 3), keepdim=True)
    return x


class SCIClassifier(pl.LightningModule):
    """Patch classifier with image-level decisions (mean of patch probabilities, and majority vote)."""

    def __init__(
        self,
        net: nn.Module,
        classes: list[str],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        input_norm: str = "centered",
        run_config: dict | None = None,
    ) -> None:
        super().__init__()
        if input_norm not in INPUT_NORMS:
            raise SCIConfigError("model.input_norm", f"unknown value {input_norm!r}", f"use one of {INPUT_NORMS}")
        # Only plain values go into the checkpoint, so it loads with torch.load(weights_only=True).
        self.save_hyperparameters("classes", "input_norm", "run_config", logger=False)
        self.net, self.classes, self.input_norm = net, list(classes), input_norm
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.criterion = nn.CrossEntropyLoss()
        c = len(self.classes)
        # Patch metrics are updated per batch on each process and summed across processes when computed. Image
        # decisions come from ImageAggregator, already gathered over all processes, so their metrics must not
        # be summed again (sync_on_compute=False).
        base, gathered = classification_metrics(c), classification_metrics(c, sync_on_compute=False)
        self.train_metrics = base.clone(prefix="train/", postfix="_patch")
        self.train_loss = MeanMetric()
        self.patch_metrics = nn.ModuleDict({s: base.clone(prefix=f"{s}/", postfix="_patch") for s in EVAL_STAGES})
        self.image_metrics = nn.ModuleDict({s: gathered.clone(prefix=f"{s}/", postfix="_image") for s in EVAL_STAGES})
        self.vote_metrics = nn.ModuleDict(
            {s: gathered.clone(prefix=f"{s}/", postfix="_image_vote") for s in EVAL_STAGES}
        )
        self.aggregators = nn.ModuleDict({s: ImageAggregator(c) for s in EVAL_STAGES})
        self.confusion_patch = MulticlassConfusionMatrix(c)
        self.confusion_image = MulticlassConfusionMatrix(c, sync_on_compute=False)
        self.test_results: dict[str, torch.Tensor] = {}
        self.val_results: dict[str, torch.Tensor] = {}  # the last validation loop's per-image scores

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for float NCHW input (use :func:`normalise_input` on raw uint8 patches)."""
        return self.net(x)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # The loaders ship compact uint8 NHWC patches; conversion happens here, on the training device.
        x, y, image = batch
        return normalise_input(x, self.input_norm), y, image

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, _ = batch
        logits = self(x)
        loss = self.criterion(logits, y)
        self.train_metrics.update(logits, y)
        self.train_loss.update(loss.detach(), len(y))  # the epoch's mean loss, weighted by batch size
        # A self.log call costs about 0.8 ms of Python per step, a quarter of the loop's fixed per-step cost
        # (docs/BENCHMARKS.md, bench/step_cost.py): the step loss is logged only on the steps Lightning sends to the
        # loggers (the same rule as its own: (step + 1) % log_every_n_steps == 0), the epoch mean once per epoch.
        every = self.trainer.log_every_n_steps
        if every and (self.global_step + 1) % every == 0:
            self.log("train/loss_step", loss, prog_bar=True)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Networks with constrained layers (MISLnet) re-project them after every optimiser step.
        constrain = getattr(self.net, "constrain", None)
        if constrain is not None:
            constrain()

    def on_train_epoch_end(self) -> None:
        self.log_dict({**self.train_metrics.compute(), "train/loss_epoch": self.train_loss.compute()})
        self.train_metrics.reset()
        self.train_loss.reset()

    def _eval_step(self, stage: str, batch: Any) -> None:
        x, y, image = batch
        logits = self(x)
        self.log(f"{stage}/loss", self.criterion(logits, y), on_epoch=True, batch_size=len(y))
        probs = logits.softmax(dim=1)
        self.patch_metrics[stage].update(probs, y)
        self.aggregators[stage].update(probs, y, image)
        if stage == "test":
            self.confusion_patch.update(probs.argmax(1), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step("test", batch)

    def _eval_epoch_end(self, stage: str) -> dict[str, torch.Tensor]:
        agg = self.aggregators[stage].compute()
        self.aggregators[stage].reset()
        vote_pred = vote_decision(agg["votes"], agg["mean_probs"])
        values = {
            **self.patch_metrics[stage].compute(),
            **self.image_metrics[stage](agg["mean_probs"], agg["target"]),
            **self.vote_metrics[stage](vote_pred, agg["target"]),
        }
        for m in (self.patch_metrics[stage], self.image_metrics[stage], self.vote_metrics[stage]):
            m.reset()
        self.log_dict(values, prog_bar=False)
        return {**agg, "vote_pred": vote_pred}

    def on_validation_epoch_end(self) -> None:
        agg = self._eval_epoch_end("val")
        # kept so the calibration reuses the selected weights' validation pass instead of scoring it again
        self.val_results = {k: agg[k].detach().cpu() for k in ("mean_probs", "image")}

    def on_test_epoch_start(self) -> None:
        self.confusion_patch.reset()
        self.confusion_image.reset()

    def on_test_epoch_end(self) -> None:
        agg = self._eval_epoch_end("test")
        self.confusion_image.update(agg["mean_probs"].argmax(1), agg["target"])
        self.test_results = {k: v.detach().cpu() for k, v in agg.items()}
        self.test_results["confusion_patch"] = self.confusion_patch.compute().cpu()
        self.test_results["confusion_image"] = self.confusion_image.compute().cpu()

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer), "monitor": "val/loss"},
        }
