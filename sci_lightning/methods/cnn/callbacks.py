"""Lightning callbacks that are genuinely ours."""

from __future__ import annotations

import random
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch


class RNGStateCheckpoint(pl.Callback):
    """Save the random generators' states in every checkpoint and restore them on resume.

    Lightning checkpoints hold model, optimiser and loop state but not the RNGs, so an interrupted run resumed
    from ``last.ckpt`` would shuffle its next epochs and draw its dropout masks differently from a run that was
    never interrupted. With the states restored, a resumed run ends with the same test metrics (CPU,
    ``trainer.deterministic=true``; tested by killing a run mid-epoch).
    """

    KEY = "sci_rng_states"

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Tensors and plain Python only: checkpoints are loaded with weights_only=True.
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        states: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
        }
        if torch.cuda.is_available():
            states["cuda"] = torch.cuda.get_rng_state_all()
        checkpoint[self.KEY] = states

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        states = checkpoint.get(self.KEY)
        if not states:  # a checkpoint from before this callback: resume without the RNG states
            return
        torch.set_rng_state(states["torch"])
        kind, keys, pos, has_gauss, gauss = states["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        random.setstate(states["python"])
        if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states["cuda"])
