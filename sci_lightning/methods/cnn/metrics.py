"""Metrics: one MetricCollection cloned per stage and level, and the patch -> image aggregation."""

from __future__ import annotations

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score


def classification_metrics(num_classes: int, **kwargs) -> MetricCollection:
    """Accuracy (micro = plain accuracy, and macro = mean per-class recall) and macro F1.

    ``kwargs`` go to every metric (e.g. ``sync_on_compute=False`` for values computed from already-gathered
    image decisions, which must not be summed over processes a second time).
    """
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes, average="micro", **kwargs),
            "acc_macro": MulticlassAccuracy(num_classes, average="macro", **kwargs),
            "f1_macro": MulticlassF1Score(num_classes, average="macro", **kwargs),
        }
    )


class ImageAggregator(Metric):
    """Collects patch probabilities with their image index and turns them into image-level decisions.

    An image's score is the mean of its patches' class probabilities; its majority vote counts each patch's
    arg-max. ``cat`` states gather across processes, so image decisions under DDP see every patch.
    """

    full_state_update = False

    def __init__(self, num_classes: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.add_state("probs", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")
        self.add_state("image", default=[], dist_reduce_fx="cat")

    def update(self, probs: torch.Tensor, target: torch.Tensor, image: torch.Tensor) -> None:
        self.probs.append(probs.detach().float())
        self.target.append(target.detach())
        self.image.append(image.detach())

    def compute(self) -> dict[str, torch.Tensor]:
        """Per image: ``mean_probs`` (n, C), ``votes`` (n, C), ``target`` (n,), ``n_patches`` (n,), ``image`` ids.

        Only images that had at least one patch appear; ``image`` maps rows back to the split's image index.
        """
        probs = _cat(self.probs)
        target, image = _cat(self.target).long(), _cat(self.image).long()
        ids, row = torch.unique(image, return_inverse=True)
        n = len(ids)
        sums = torch.zeros(n, self.num_classes, device=probs.device).index_add_(0, row, probs)
        count = torch.zeros(n, device=probs.device).index_add_(0, row, torch.ones_like(row, dtype=torch.float))
        votes = torch.zeros(n, self.num_classes, device=probs.device).index_add_(
            0, row, torch.nn.functional.one_hot(probs.argmax(1), self.num_classes).float()
        )
        img_target = torch.zeros(n, dtype=torch.long, device=probs.device).scatter_(0, row, target)
        return {
            "mean_probs": sums / count[:, None],
            "votes": votes,
            "target": img_target,
            "n_patches": count.long(),
            "image": ids,
        }


def _cat(x: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    return torch.cat(x) if isinstance(x, list) else x


def vote_decision(votes: torch.Tensor, mean_probs: torch.Tensor) -> torch.Tensor:
    """Majority vote; ties go to the class with the higher mean probability (so the rule is deterministic)."""
    top = votes.max(dim=1, keepdim=True).values
    return torch.where(votes == top, mean_probs, torch.full_like(mean_probs, -1.0)).argmax(dim=1)
