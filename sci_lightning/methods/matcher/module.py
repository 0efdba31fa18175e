"""MatcherModule: the LightningModule that trains the pair network (binary cross-entropy, same camera or not)."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC

from sci_lightning.models.pcn import PairNet


class MatcherModule(pl.LightningModule):
    """Trains :class:`PairNet`; logs ``train/loss``, ``val/loss``, ``val/acc_pair`` and ``val/roc_auc_pair``.

    ``net`` holds only plain values (the network's keyword arguments), so checkpoints load with
    ``torch.load(weights_only=True)``.
    """

    def __init__(
        self, net: dict[str, Any], lr: float = 1e-3, weight_decay: float = 1e-4, total_steps: int | None = None
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.net = PairNet(**net)
        self.criterion = nn.BCEWithLogitsLoss()
        self.train_loss, self.val_loss = MeanMetric(), MeanMetric()
        self.val_metrics = MetricCollection(
            {"acc_pair": BinaryAccuracy(), "roc_auc_pair": BinaryAUROC()}, prefix="val/"
        )

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        return self.net(pairs)

    def on_train_epoch_start(self) -> None:
        # New pairs every epoch (PairDataset draws from seed, epoch and index).
        loader = self.trainer.train_dataloader
        if loader is not None and hasattr(loader.dataset, "epoch"):
            loader.dataset.epoch = self.current_epoch

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.criterion(self(x), y)
        self.train_loss.update(loss.detach())
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.val_loss.update(self.criterion(logits, y))
        self.val_metrics.update(torch.sigmoid(logits), y.long())
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log_dict(self.val_metrics, on_step=False, on_epoch=True, prog_bar=True)

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        if not self.hparams.total_steps:
            return opt
        # One cosine decay over the whole run: fine-tuning and pre-training both know their step budget.
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.hparams.lr, total_steps=self.hparams.total_steps, pct_start=0.1
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
