"""The CNN of Freire-Obregón et al. (2018): two strided 3x3 convs, a 3x3 max-pool, FC 256 -> FC 512 -> FC N.

Facts from the paper: 3x3 kernels, stride 2, Leaky ReLU, a 3x3 max-pool, FC 256 and FC 512 with dropout
(keep probability 0.5), softmax over N classes. Everything else (filter counts, padding, pool stride, Leaky
slope) is an assumption exposed in ``conf/model/sci_cnn.yaml``; the defaults follow the only public
re-implementation (64 and 128 filters, no padding: 32 -> 15 -> 7 -> pool 3, FC1 input 1152).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sci_lightning.errors import SCIConfigError


def make_activation(name: str, negative_slope: float) -> nn.Module:
    """``relu`` or ``leaky_relu`` (the paper's choice; its ablation compares the two)."""
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    if name == "relu":
        return nn.ReLU()
    raise SCIConfigError("model.net.activation", f"unknown activation {name!r}", "use 'leaky_relu' or 'relu'")


class SCICNN(nn.Module):
    """The paper's patch classifier; returns logits (softmax is applied by the loss / at inference)."""

    def __init__(
        self,
        num_classes: int,
        patch_size: int = 32,
        in_channels: int = 3,
        filters: Sequence[int] = (64, 128),
        kernel_size: int = 3,
        stride: int = 2,
        padding: int = 0,
        activation: str = "leaky_relu",
        negative_slope: float = 0.3,
        pool_size: int = 3,
        pool_stride: int = 2,
        pool_ceil: bool = False,
        fc_sizes: Sequence[int] = (256, 512),
        dropout_keep: float = 0.5,
    ) -> None:
        super().__init__()
        if not 1 <= len(filters) <= 6:
            raise SCIConfigError(
                "model.net.filters", f"needs 1 to 6 conv layers (got {len(filters)})", "give a list such as [64, 128]"
            )
        if not 0 < dropout_keep <= 1:
            raise SCIConfigError(
                "model.net.dropout_keep", f"is a keep probability in (0, 1] (got {dropout_keep})", "use 0.5 (the paper)"
            )
        layers: list[nn.Module] = []
        channels = in_channels
        for out in filters:
            layers += [
                nn.Conv2d(channels, out, kernel_size, stride=stride, padding=padding),
                make_activation(activation, negative_slope),
            ]
            channels = out
        layers.append(nn.MaxPool2d(pool_size, stride=pool_stride, ceil_mode=pool_ceil))
        self.features = nn.Sequential(*layers)
        n_flat = self._flat_size(in_channels, patch_size, len(filters), padding)
        head: list[nn.Module] = [nn.Flatten()]
        width = n_flat
        for size in fc_sizes:
            head += [nn.Linear(width, size), make_activation(activation, negative_slope), nn.Dropout(1 - dropout_keep)]
            width = size
        head.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*head)

    def _flat_size(self, in_channels: int, patch_size: int, depth: int, padding: int) -> int:
        try:
            with torch.no_grad():
                out = self.features(torch.zeros(1, in_channels, patch_size, patch_size))
        except RuntimeError:
            out = None
        if out is None or out.numel() == 0:
            raise SCIConfigError(
                "model.net",
                f"{depth} strided conv layer(s) and the pool shrink a {patch_size}px patch to nothing "
                f"(padding={padding})",
                ("set model.net.padding=1, " if padding == 0 else "")
                + "use fewer model.net.filters entries, a smaller model.net.pool_size, or larger patches",
            )
        return out.numel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
