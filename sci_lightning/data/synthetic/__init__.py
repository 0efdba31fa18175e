"""Virtual cameras: a physically grounded built-in data set (scene -> optics -> sensor -> CFA -> maker's
pipeline -> JPEG), so ``python train.py`` runs anywhere on data where the answer is known.

It is synthetic: use it to check the pipeline and to study which cues a model reads (PRNU strength, JPEG
quality), never as evidence about real cameras.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from sci_lightning.data.layouts import DatasetIndex, read_manifest
from sci_lightning.data.synthetic.generate import SyntheticSettings, ensure_generated, generate

__all__ = ["SyntheticSettings", "generate", "ensure_generated", "read_synthetic"]


def read_synthetic(root: str | os.PathLike, cache_workers: int | None = None, **cfg: Mapping) -> DatasetIndex:
    """The ``synthetic`` layout: generate the set under ``root`` on first use, then read its manifest."""
    settings = SyntheticSettings.from_cfg(cfg)
    return read_manifest(ensure_generated(root, settings, cache_workers))
