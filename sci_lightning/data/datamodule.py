"""LightningDataModule: index -> fold -> patch cache -> loaders that gather whole batches from the memmap."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from sci_lightning.data.cache import PatchCache, PatchSettings, load_or_build
from sci_lightning.data.defaults import with_defaults
from sci_lightning.data.records import ImageRecord, label_field_for
from sci_lightning.data.selection import STAGES, FileProbe, Selection, select
from sci_lightning.data.sides import indexed_records
from sci_lightning.outputs import Metrics

log = logging.getLogger(__name__)

# What the datamodule reads through from its Selection (fields and methods).
SELECTION_FACTS = frozenset(
    (*Selection.__dataclass_fields__, "split_records", "split_labels", "unknown_records", "references", "questioned")
)


class PatchBatchDataset(Dataset):
    """Patches of a set of images, read straight from the cache memmap a whole batch at a time.

    ``__getitems__`` (used by PyTorch's DataLoader for a batch of indices) sorts the batch's rows and reads
    them with one fancy index, so no per-sample Python runs on the hot path. Items are
    ``(uint8 patches (B, s, s, 3), int64 labels (B,), int64 image index within this split (B,))``; the model
    converts to float on its device. The memmap is opened lazily so the dataset pickles cheaply to workers.
    """

    def __init__(
        self, cache_file: Path, shape: tuple[int, ...], rows: np.ndarray, labels: np.ndarray, owners: np.ndarray
    ) -> None:
        self.cache_file, self.shape = Path(cache_file), tuple(shape)
        self.rows, self.labels, self.owners = rows.astype(np.int64), labels.astype(np.int64), owners.astype(np.int64)
        self._patches: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def patches(self) -> np.ndarray:
        if self._patches is None:
            self._patches = np.memmap(self.cache_file, dtype=np.uint8, mode="r", shape=self.shape)
        return self._patches

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_patches": None}

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        rows = self.rows[idx]
        order = np.argsort(rows, kind="stable")  # sorted reads are sequential on disk
        idx, rows = idx[order], rows[order]
        x = torch.from_numpy(np.ascontiguousarray(self.patches[rows]))
        return x, torch.from_numpy(self.labels[idx]), torch.from_numpy(self.owners[idx])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y, o = self.__getitems__([i])
        return x[0], y[0], o[0]


def keep_batch(batch: Any) -> Any:
    """collate_fn for datasets whose ``__getitems__`` already returns a collated batch."""
    return batch


class SCIDataModule(pl.LightningDataModule):
    """The patch cache and one fold's loaders around a :class:`~sci_lightning.data.selection.Selection`.

    Which images go where is decided by :mod:`sci_lightning.data.selection` (as for every other method); this
    class only adds what the CNN needs on top: the patch cache and loaders that gather whole batches from it.
    The selection's facts (``records``, ``classes``, ``splits``, ``split_records`` ...) are read through.
    """

    def __init__(
        self,
        data: Mapping,
        task_name: str,
        fold: int = 0,
        n_folds: int = 10,
        seed: int = 0,
        label_field: str | None = None,
    ) -> None:
        super().__init__()
        self.cfg = with_defaults(data)  # the keys a Python caller leaves out, from conf/data/base.yaml
        self.task_name, self.fold, self.n_folds, self.seed = task_name, int(fold), int(n_folds), int(seed)
        self.label_field = label_field_for(task_name, label_field)
        self.loader_cfg = dict(self.cfg["loader"])
        self.settings = PatchSettings.from_mapping(self.cfg["patches"], seed=self.seed)
        self.selection: Selection | None = None
        self.datasets: dict[str, PatchBatchDataset] = {}
        self.cache: PatchCache | None = None
        self._prepared: tuple[list[ImageRecord], PatchCache, int] | None = None

    # -- building -------------------------------------------------------------------------------------------
    def _index_and_cache(self) -> tuple[list[ImageRecord], PatchCache, int]:
        records, n_unmatched = indexed_records(self.cfg)
        workers = int(self.cfg["cache_workers"] or os.cpu_count() or 1)
        cache = load_or_build([r.path for r in records], self.settings, self.cfg["cache_dir"], workers)
        return records, cache, n_unmatched

    def prepare_data(self) -> None:
        # Runs on one process per node: the cache is built once, the other ranks then load it in setup().
        # The result is kept for this process's setup() so the data root is not indexed twice.
        if self.selection is None:
            self._prepared = self._index_and_cache()

    def setup(self, stage: str | None = None) -> None:
        if self.selection is not None:
            return
        records, cache, n_unmatched = self._prepared or self._index_and_cache()
        self._prepared = None
        self.cache = cache
        # The cache saw every file while cutting its patches: its verdicts are the selection's probes.
        probes = [
            FileProbe(cache.skipped.get(i) or ("" if cache.counts[i] > 0 else "no patches"), cache.content_sha256[i])
            for i in range(len(records))
        ]
        sel = self.selection = select(
            self.cfg, self.task_name, self.fold, self.n_folds, self.seed, records, probes, n_unmatched, self.label_field
        )
        for name, img_idx in sel.splits.items():
            rows, owner = cache.patch_rows(sel.source_idx[img_idx])
            self.datasets[name] = PatchBatchDataset(
                cache.path / "patches.u8", cache.patches.shape, rows, sel.class_idx[img_idx][owner], owner
            )
            log.info("%s %s: %d patches", sel.where(), name, len(rows))

    # -- loaders -----------------------------------------------------------------------------------------------
    def _loader(self, stage: str, shuffle: bool) -> DataLoader:
        workers = int(self.loader_cfg["num_workers"])
        sampler = None
        if stage != "train" and dist.is_available() and dist.is_initialized():
            # Lightning keeps a sampler that already is a DistributedSampler. Its default one pads ranks with
            # repeated samples (patches counted twice in test metrics); its unrepeated one sees each patch once.
            sampler = UnrepeatedDistributedSampler(self.datasets[stage], shuffle=False)
        return DataLoader(
            self.datasets[stage],
            batch_size=int(self.loader_cfg["batch_size"]),
            shuffle=shuffle,
            sampler=sampler,
            num_workers=workers,
            collate_fn=keep_batch,
            pin_memory=bool(self.loader_cfg["pin_memory"]),
            persistent_workers=workers > 0,
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    # -- facts for reports and checkpoints: the selection's ----------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        # Only the selection's own fields and methods are read through; anything else is a plain AttributeError.
        if name in SELECTION_FACTS:
            selection = self.__dict__.get("selection")
            if selection is None:
                raise AttributeError(f"{name!r} is known after setup() (it comes from the selection)")
            return getattr(selection, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def summary(self) -> Metrics:
        """Image and patch counts that go into metrics.json."""
        return {**self.selection.summary(), **{f"n_{s}_patches": int(len(self.datasets[s])) for s in STAGES}}
