"""The paper's peers, as ``model=`` options. Facts from their papers; choices where they are silent are
marked "choice". Each takes ``num_classes`` and ``patch_size`` (its config sets the patch size it expects)."""

from __future__ import annotations

import torch
from torch import nn

from sci_lightning.errors import SCIConfigError


def _check_output(features: nn.Module, in_channels: int, patch_size: int, name: str) -> int:
    """Flattened feature size for a patch, or a clear error when the patch is too small for the network."""
    training = features.training
    features.eval()  # BatchNorm cannot run a 1-sample batch in training mode
    with torch.no_grad():
        try:
            out = features(torch.zeros(1, in_channels, patch_size, patch_size))
        except RuntimeError:
            out = None
    features.train(training)
    if out is None or out.numel() == 0:
        raise SCIConfigError(
            "data.patches.size",
            f"{patch_size}px patches are too small for {name}",
            f"use the patch size in conf/model/{name}.yaml",
        )
    return out.numel()


class BaroffioNet(nn.Module):
    """Baroffio et al. 2016: 48x48 input; conv 32@4x4 -> pool -> conv 48@5x5 -> pool -> conv 64@5x5 ->
    FC 128 (ReLU, dropout) -> FC N. ReLU after the convs and dropout 0.5 are choices."""

    def __init__(self, num_classes: int, patch_size: int = 48, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 48, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(48, 64, 5),
            nn.ReLU(),
        )
        n = _check_output(self.features, 3, patch_size, "baroffio")
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(n, 128),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def high_pass_kernel() -> torch.Tensor:
    """The 5x5 'KV' residual filter of steganalysis used by Tuama et al. 2016 (sums to zero)."""
    k = (
        torch.tensor(
            [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]],
            dtype=torch.float32,
        )
        / 12
    )
    return k


class TuamaNet(nn.Module):
    """Tuama et al. 2016: a fixed high-pass (residual) filter layer, three conv layers, one pooling after them,
    FCs. Choices: 64/64/32 filters of 3x3 (first stride 2), max-pool 3/2, FC 256 -> FC 256, ReLU, dropout 0.5."""

    def __init__(self, num_classes: int, patch_size: int = 64, dropout: float = 0.5) -> None:
        super().__init__()
        hp = high_pass_kernel().expand(3, 1, 5, 5).clone()
        self.register_buffer("high_pass", hp)  # fixed: a buffer, never trained
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3),
            nn.ReLU(),
            nn.Conv2d(64, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2),
        )
        n = _check_output(nn.Sequential(nn.ZeroPad2d(-2), self.features), 3, patch_size, "tuama")
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(n, 256),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(256, 256),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(256, num_classes),
        )

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel high-pass residual (valid convolution: 4 px smaller)."""
        return nn.functional.conv2d(x, self.high_pass, groups=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.residual(x)))


class BondiNet(nn.Module):
    """Bondi et al. 2017: 64x64 input; conv 32@4x4 -> pool 2/2 -> conv 48@5x5 -> pool -> conv 64@5x5 -> pool ->
    conv 128@5x5 (-> 1x1) -> FC 128 ReLU -> FC N. No activation on the convs; Caffe pooling rounds up."""

    def __init__(self, num_classes: int, patch_size: int = 64) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 4),
            nn.MaxPool2d(2, 2, ceil_mode=True),
            nn.Conv2d(32, 48, 5),
            nn.MaxPool2d(2, 2, ceil_mode=True),
            nn.Conv2d(48, 64, 5),
            nn.MaxPool2d(2, 2, ceil_mode=True),
            nn.Conv2d(64, 128, 5),
        )
        n = _check_output(self.features, 3, patch_size, "bondi")
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(n, 128), nn.ReLU(), nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class ConstrainedConv2d(nn.Conv2d):
    """Bayar & Stamm's constrained layer: in each 2-D kernel the centre is -1 and the other taps sum to 1.

    :meth:`project` restores the constraint; it must run after every optimiser step (SCIClassifier calls the
    network's ``constrain()`` then).
    """

    def project(self) -> None:
        with torch.no_grad():
            w = self.weight
            c = self.kernel_size[0] // 2
            w[:, :, c, c] = 0
            w /= w.sum(dim=(2, 3), keepdim=True)  # off-centre taps of each kernel sum to 1
            w[:, :, c, c] = -1


class MISLNet(nn.Module):
    """Bayar & Stamm's MISLnet: constrained conv 5x5 -> 96@7x7/2 -> BN, tanh, max-pool 3/2 -> 64@5x5 -> 64@5x5
    -> 128@1x1 (each BN, tanh, max-pool; the last average-pooled) -> FC 200 tanh -> FC 200 tanh -> N.
    The 128x128 variant is the default here (the 256 original is ``patch_size: 256``)."""

    def __init__(self, num_classes: int, patch_size: int = 128) -> None:
        super().__init__()
        self.constrained = ConstrainedConv2d(3, 3, 5, padding=2, bias=False)
        self.constrained.project()

        def block(cin: int, cout: int, k: int, stride: int = 1, pool: nn.Module | None = None) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2),
                nn.BatchNorm2d(cout),
                nn.Tanh(),
                pool or nn.MaxPool2d(3, 2),
            ]

        self.features = nn.Sequential(
            *block(3, 96, 7, 2), *block(96, 64, 5), *block(64, 64, 5), *block(64, 128, 1, pool=nn.AdaptiveAvgPool2d(1))
        )
        n = _check_output(self.features, 3, patch_size, "mislnet")
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(n, 200), nn.Tanh(), nn.Linear(200, 200), nn.Tanh(), nn.Linear(200, num_classes)
        )

    def constrain(self) -> None:
        self.constrained.project()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.constrained(x)))
