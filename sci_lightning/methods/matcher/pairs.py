"""Training pairs for the fingerprint matcher: position-aligned (fingerprint x intensity, residual) crops.

* **Positive**: camera c's leave-one-out fingerprint ``K_c^{-j}`` times photo j's intensity ``I_j``, with photo
  j's residual ``W_j`` (photo j is not in the fingerprint it is paired with).
* **Negative**: another camera's fingerprint (leave-one-out too, so both classes see fingerprints of the same
  quality) times ``I_j``, with ``W_j``. When that camera photographed photo j's scene, its fingerprint leaves
  *that* photo out: scene content leaks into fingerprints, and a negative fingerprint that holds the scene while
  the positive one never does teaches a shortcut ("scene inside K -> not a match") that is worse than useless
  on new cases (measured: a network trained that way scored unseen units *below* chance). With probability
  ``hard_negatives`` the other camera is a unit of the same device model (same optics, pipeline and JPEG: only
  the PRNU differs), when the set has one.
* **Aligned**: both crops come from the same ``(y, x)`` (all of a camera's arrays share one frame) and get the same
  random flip and 90-degree rotation; each channel is RMS-normalised.

Half the pairs are positive. Pairs are drawn from a seed, the epoch and their index, so an epoch is the same
whatever the number of data-loader workers, and the next epoch draws new pairs (unlimited positions and
pairings from a fixed set of photos).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from sci_lightning.errors import SCIConfigError
from sci_lightning.fingerprint.references import CameraStack
from sci_lightning.models.pcn import rms_normalise


@dataclass(frozen=True)
class PairSpec:
    """One drawn pair: photo ``j`` of camera ``cam``, fingerprint of camera ``fp_cam`` (photo ``fp_j`` left out)."""

    cam: int
    j: int
    fp_cam: int
    fp_j: int
    y: int
    x: int
    rot: int
    flip: bool

    @property
    def positive(self) -> bool:
        return self.cam == self.fp_cam


def draw_pair(stacks: list[CameraStack], rng: np.random.Generator, size: int, positive: bool, hard: float) -> PairSpec:
    """One pair spec (see the module docstring); ``hard`` = probability of a same-model negative."""
    cam = int(rng.integers(len(stacks)))
    s = stacks[cam]
    n, h, w = s.residuals.shape
    j = int(rng.integers(n))
    if positive:
        fp_cam, fp_j = cam, j
    else:
        peers = [k for k, o in enumerate(stacks) if o.device == s.device and k != cam]
        if peers and rng.random() < hard:
            fp_cam = int(peers[rng.integers(len(peers))])
        else:
            fp_cam = int((cam + rng.integers(1, len(stacks))) % len(stacks))
        same_scene = stacks[fp_cam].photo_of_scene(s.scenes[j])
        fp_j = int(rng.integers(stacks[fp_cam].loo.shape[0])) if same_scene is None else same_scene
    fh, fw = stacks[fp_cam].loo.shape[1:]
    y = int(rng.integers(min(h, fh) - size + 1))
    x = int(rng.integers(min(w, fw) - size + 1))
    return PairSpec(cam, j, fp_cam, fp_j, y, x, int(rng.integers(4)), bool(rng.integers(2)))


def pair_arrays(stacks: list[CameraStack], spec: PairSpec, size: int) -> np.ndarray:
    """The ``(2, size, size)`` float32 pair of ``spec``: ``[K*I, W]``, transformed alike (not yet normalised)."""
    s, f = stacks[spec.cam], stacks[spec.fp_cam]
    win = (slice(spec.y, spec.y + size), slice(spec.x, spec.x + size))
    k = f.loo[spec.fp_j][win].astype(np.float32)
    pair = np.stack([k * s.greys[spec.j][win].astype(np.float32), s.residuals[spec.j][win].astype(np.float32)])
    pair = np.rot90(pair, spec.rot, axes=(1, 2))
    return np.ascontiguousarray(pair[:, :, ::-1] if spec.flip else pair)


class PairDataset(Dataset):
    """``length`` balanced pairs per epoch from ``stacks`` (see the module docstring); items ``(pair, label)``."""

    def __init__(
        self, stacks: list[CameraStack], size: int, length: int, seed: int, hard_negatives: float = 0.5
    ) -> None:
        if len(stacks) < 2:
            raise SCIConfigError(
                "data",
                f"matcher pairs need at least two cameras with two or more photos each (got {len(stacks)})",
                "add reference photos, or evaluate the shipped weights without fitting (matcher.finetune=false)",
            )
        side = min(min(s.residuals.shape[1:]) for s in stacks)
        if side < size:
            raise SCIConfigError("matcher.crop", f"{size} px pairs do not fit photos of {side} px", f"use <= {side}")
        self.stacks, self.size, self.length, self.seed, self.hard = stacks, size, length, seed, hard_negatives
        self.epoch = 0  # set by the training module at each epoch start: new pairs every epoch

    def __len__(self) -> int:
        return self.length

    def spec(self, index: int) -> PairSpec:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return draw_pair(self.stacks, rng, self.size, positive=index % 2 == 0, hard=self.hard)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        pair = torch.from_numpy(pair_arrays(self.stacks, self.spec(index), self.size))
        return rms_normalise(pair), torch.tensor(float(index % 2 == 0))
