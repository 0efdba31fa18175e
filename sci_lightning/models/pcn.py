"""The pair network of Mandelli et al. (2020, "CNN-based fast source device identification"): does this
fingerprint crop match this residual crop?

Input: ``(N, 2, P, P)`` position-aligned pairs, channel 0 the camera's fingerprint times the photo's intensity
(K*I, the PRNU term the photo should carry), channel 1 the photo's noise residual W, each RMS-normalised by the
caller. Layers (the paper's): conv 16@3x3; two blocks of conv 64@5x5 + max-pool 3; *pairwise-correlation
pooling*, the product of feature channels 1-32 with 33-64 (a learnt, local version of the K*I x W product that
correlation detectors sum); a 1x1 conv; global average pooling -> one logit per pair. About 0.13 M parameters
with the defaults. Fully convolutional: one network scores any crop size of at least ``min_size()``.

Assumptions the paper leaves open (exposed in ``conf/matcher/default.yaml``): 'same' padding, Leaky ReLU, batch
normalisation after each conv, pool stride 2 (overlapping 3x3 windows), a hidden 1x1 layer of ``head`` units.
"""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int, k: int, slope: float) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(slope)]


class PairNet(nn.Module):
    """Mandelli et al.'s Pcn: a match logit for each aligned ``(K*I, W)`` pair (higher = same camera)."""

    def __init__(self, width: int = 64, stem: int = 16, head: int = 32, negative_slope: float = 0.1) -> None:
        super().__init__()
        if width % 2:
            raise ValueError(f"width must be even (its halves are multiplied), got {width}")
        self.features = nn.Sequential(
            *_block(2, stem, 3, negative_slope),
            *_block(stem, width, 5, negative_slope),
            nn.MaxPool2d(3, stride=2, padding=1),
            *_block(width, width, 5, negative_slope),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        self.half = width // 2
        self.head = nn.Sequential(nn.Conv2d(self.half, head, 1), nn.LeakyReLU(negative_slope), nn.Conv2d(head, 1, 1))

    @staticmethod
    def min_size() -> int:
        """The smallest crop side the network accepts (two pools leave at least one cell)."""
        return 4

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        f = self.features(pairs)
        corr = f[:, : self.half] * f[:, self.half :]  # pairwise-correlation pooling
        return self.head(corr).mean(dim=(1, 2, 3))

    def tile_logits(self, pairs: torch.Tensor) -> torch.Tensor:
        """The logit map before global pooling, ``(N, h, w)``: where in the crop the match shows (heat maps)."""
        f = self.features(pairs)
        return self.head(f[:, : self.half] * f[:, self.half :])[:, 0]


def rms_normalise(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Each ``(…, P, P)`` crop divided by its root mean square: the network sees patterns, not their strength."""
    rms = x.pow(2).mean(dim=(-2, -1), keepdim=True).sqrt()
    return x / (rms + eps)
