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
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from sci_lightning.data.cache import PatchCache, PatchSettings, load_or_build
from sci_lightning.data.folds import class_counts, make_fixed_split, make_fold
from sci_lightning.data.records import ImageRecord, class_names, label_field_for
from sci_lightning.data.sides import QUESTIONED, REFERENCE, indexed_records, split_mode
from sci_lightning.errors import SCIConfigError

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test")


class PatchBatchDataset(Dataset):
    """Patches of a set of images, read straight from the cache memmap a whole batch at a time.

    ``__getitems__`` (used by PyTorch's DataLoader for a batch of indices) sorts the batch's rows and reads
    them with one fancy index, so no per-sample Python runs on the hot path. Items are
    ``(uint8 patches (B, s, s, 3), int64 labels (B,), int64 image index within this split (B,))``; the model
    converts to float on its device. The memmap is opened lazily so the dataset pickles cheaply to workers.
    """

    def __init__(self, cache_file: Path, shape: tuple[int, ...], rows: np.ndarray, labels: np.ndarray,
                 owners: np.ndarray) -> None:
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


class UnpaddedDistributedSampler(DistributedSampler):
    """Evaluation sampler for DDP: every index exactly once over all ranks (no padding duplicates).

    Lightning's default DistributedSampler pads the last ranks with repeated samples so all ranks see the same
    count; for test metrics that would count some patches twice. Ranks may get one sample fewer here instead.
    """

    def __init__(self, dataset: Dataset, **kwargs: Any) -> None:
        super().__init__(dataset, shuffle=False, drop_last=False, **kwargs)

    def __iter__(self):
        return iter(range(self.rank, len(self.dataset), self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, len(self.dataset), self.num_replicas))


def keep_batch(batch: Any) -> Any:
    """collate_fn for datasets whose ``__getitems__`` already returns a collated batch."""
    return batch


def find_duplicates(records: list[ImageRecord], content: list[str], label_field: str) -> list[list[str]]:
    """Byte-identical images (same content hash), logged; the folds keep each set on one side of every split."""
    by_hash: dict[str, list[int]] = {}
    for i, digest in enumerate(content):
        if digest:
            by_hash.setdefault(digest, []).append(i)
    sets = [idx for idx in by_hash.values() if len(idx) > 1]
    for idx in sets:
        labels = sorted({records[i].label(label_field) for i in idx})
        clash = f" -- LABELLED DIFFERENTLY ({', '.join(labels)}): check the data" if len(labels) > 1 else ""
        log.warning("byte-identical images, kept in the same fold: %s%s",
                    " == ".join(str(records[i].path) for i in idx), clash)
    return [[str(records[i].path) for i in idx] for idx in sets]


class SCIDataModule(pl.LightningDataModule):
    """Builds the image index, the patch cache and one fold's image-disjoint train/val/test loaders."""

    def __init__(self, data: Mapping, task_name: str, fold: int = 0, n_folds: int = 10, seed: int = 0,
                 label_field: str | None = None) -> None:
        super().__init__()
        self.cfg = dict(data)
        self.task_name, self.fold, self.n_folds, self.seed = task_name, int(fold), int(n_folds), int(seed)
        self.label_field = label_field_for(task_name, label_field)
        self.loader_cfg = dict(self.cfg.get("loader") or {})
        self.split_cfg = dict(self.cfg.get("split") or {})
        self.settings = PatchSettings.from_cfg(self.cfg.get("patches") or {}, seed=self.seed)
        self.records: list[ImageRecord] = []
        self.classes: list[str] = []
        self.splits: dict[str, np.ndarray] = {}  # stage -> indices into self.records
        self.datasets: dict[str, PatchBatchDataset] = {}
        self.cache: PatchCache | None = None
        self.n_unmatched = 0
        self.skipped: list[tuple[str, str]] = []
        self.duplicates: list[list[str]] = []  # paths of byte-identical images, one list per content
        self._prepared: tuple[list[ImageRecord], PatchCache, int] | None = None
        self.class_idx = np.empty(0, dtype=np.int64)  # class index of every usable record (-1: unknown camera)
        self.mode = "kfold"
        self.unknown_idx = np.empty(0, dtype=np.int64)  # questioned images of cameras without references

    # -- building -------------------------------------------------------------------------------------------
    def _index_and_cache(self) -> tuple[list[ImageRecord], PatchCache, int]:
        records, n_unmatched = indexed_records(self.cfg)
        cache_dir = self.cfg.get("cache_dir") or os.path.join("~", ".cache", "sci_lightning")
        workers = int(self.cfg.get("cache_workers") or os.cpu_count() or 1)
        cache = load_or_build([r.path for r in records], self.settings, cache_dir, workers)
        return records, cache, n_unmatched

    def prepare_data(self) -> None:
        # Runs on one process per node: the cache is built once, the other ranks then load it in setup().
        # The result is kept for this process's setup() so the data root is not indexed twice.
        if not self.splits:
            self._prepared = self._index_and_cache()

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        records, cache, self.n_unmatched = self._prepared or self._index_and_cache()
        self._prepared = None
        self.cache = cache
        all_classes = class_names(records, self.label_field)
        self.mode = split_mode(self.cfg)
        usable = [i for i in range(len(records)) if i not in cache.skipped and cache.counts[i] > 0]
        usable_set = set(usable)
        self.skipped = [(str(records[i].path), cache.skipped.get(i, "no patches")) for i in range(len(records))
                        if i not in usable_set]
        if self.skipped:
            log.warning("%d of %d images skipped (reasons above and in skipped_images.csv)", len(self.skipped),
                        len(records))
        self.records = [records[i] for i in usable]
        self._cache_rows = np.asarray(usable, dtype=np.int64)  # record index -> cache image index
        labels = [r.label(self.label_field) for r in self.records]
        content = [cache.content_sha256[i] for i in usable]
        self.duplicates = find_duplicates(self.records, content, self.label_field)
        group_by = self.split_cfg.get("group_by", "image")
        val_fraction = float(self.split_cfg.get("val_fraction", 0.1))
        scenes = [r.scene for r in self.records]
        if self.mode == "kfold":
            self.classes = class_names(self.records, self.label_field)
            self._check_classes(all_classes, self.classes, "")
            split = make_fold(labels, scenes, self.fold, self.n_folds, self.seed, group_by=group_by,
                              val_fraction=val_fraction, content=content)
        else:
            reference, questioned = self._fixed_sides(labels, records)
            split = make_fixed_split(labels, scenes, reference, questioned, self.seed, group_by=group_by,
                                     val_fraction=val_fraction, content=content)
        self.splits = {"train": split.train, "val": split.val, "test": split.test}
        known = {c: i for i, c in enumerate(self.classes)}
        self.class_idx = np.array([known.get(lbl, -1) for lbl in labels], dtype=np.int64)  # -1: unknown camera
        where = f"fold {self.fold}/{self.n_folds}" if self.mode == "kfold" else f"fixed split ({self.mode})"
        for name, img_idx in self.splits.items():
            rows, owner = cache.patch_rows(self._cache_rows[img_idx])
            self.datasets[name] = PatchBatchDataset(cache.path / "patches.u8", cache.patches.shape, rows,
                                                    self.class_idx[img_idx][owner], owner)
            log.info("%s %s: %d images, %d patches, per class %s", where, name, len(img_idx), len(rows),
                     class_counts(labels, img_idx))
        if len(self.unknown_idx):
            log.info("%d questioned images of cameras without references (the right verdict is 'unknown'): %s",
                     len(self.unknown_idx), class_counts(labels, self.unknown_idx))

    def _check_classes(self, expected: list[str], classes: list[str], side: str) -> None:
        empty = sorted(set(expected) - set(classes))
        if empty:
            raise SCIConfigError("data.root", f"classes {empty} have no usable {side}images (all skipped)",
                                 "check those images (see the skip reasons in the log) or remove the class")
        if len(classes) < 2:
            raise SCIConfigError("data.root", f"only one class ({classes}) for task {self.task_name}",
                                 "identification needs photos from at least two cameras")

    def _fixed_sides(self, labels: list[str], all_records: list[ImageRecord]) -> tuple[np.ndarray, np.ndarray]:
        """Reference and known-questioned image indices; sets the classes (the references') and unknown_idx."""
        y = np.asarray(labels)
        side = np.array([r.extra.get("side") for r in self.records])
        excluded = [str(c) for c in self.split_cfg.get("exclude_reference") or []]
        every_class = class_names(all_records, self.label_field)
        if set(excluded) - set(every_class):
            raise SCIConfigError("data.split.exclude_reference", f"{sorted(set(excluded) - set(every_class))} "
                                 "are not classes of this task", f"use names from {every_class}")
        ref_mask = (side == REFERENCE) & ~np.isin(y, excluded)
        expected = sorted({r.label(self.label_field) for r in all_records if r.extra.get("side") == REFERENCE}
                          - set(excluded))
        self.classes = sorted(set(y[ref_mask].tolist()))
        self._check_classes(expected, self.classes, "reference ")
        q_mask = side == QUESTIONED
        if not q_mask.any():
            raise SCIConfigError("data.split", "no usable questioned images",
                                 "check data.questioned_root or the questioned values of data.split.column")
        known = np.isin(y, self.classes)
        self.unknown_idx = np.flatnonzero(q_mask & ~known)
        path_side = {str(r.path): r.extra.get("side") for r in self.records}
        for dup in self.duplicates:
            if len({path_side[p] for p in dup}) > 1:
                log.warning("the same photo is both a reference and a questioned image: %s", " == ".join(dup))
        return np.flatnonzero(ref_mask), np.flatnonzero(q_mask & known)

    # -- loaders -----------------------------------------------------------------------------------------------
    def _loader(self, stage: str, shuffle: bool) -> DataLoader:
        workers = int(self.loader_cfg.get("num_workers", 0))
        sampler = None
        if stage != "train" and dist.is_available() and dist.is_initialized():
            # Lightning keeps a sampler that already is a DistributedSampler: evaluation sees each patch once.
            sampler = UnpaddedDistributedSampler(self.datasets[stage])
        return DataLoader(
            self.datasets[stage], batch_size=int(self.loader_cfg.get("batch_size", 32)), shuffle=shuffle,
            sampler=sampler, num_workers=workers, collate_fn=keep_batch,
            pin_memory=bool(self.loader_cfg.get("pin_memory", False)), persistent_workers=workers > 0, drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    # -- facts for reports and checkpoints ---------------------------------------------------------------------
    def split_records(self, stage: str) -> list[ImageRecord]:
        """The ImageRecords of a split, in the order of the image indices the loaders report."""
        return [self.records[i] for i in self.splits[stage]]

    def unknown_records(self) -> list[ImageRecord]:
        """Questioned images of cameras left out of the references (fixed splits only)."""
        return [self.records[i] for i in self.unknown_idx]

    def split_labels(self, stage: str) -> np.ndarray:
        """Class indices of a split's images, in the same order as :meth:`split_records`."""
        return self.class_idx[self.splits[stage]]

    def summary(self) -> dict[str, Any]:
        """Counts that go into metrics.json."""
        out: dict[str, Any] = {f"n_{s}_images": int(len(self.splits[s])) for s in STAGES}
        out.update({f"n_{s}_patches": int(len(self.datasets[s])) for s in STAGES})
        out.update(n_skipped_images=len(self.skipped), n_unmatched_files=self.n_unmatched,
                   split_mode=self.mode, n_unknown_camera_images=int(len(self.unknown_idx)),
                   n_duplicate_images=sum(len(d) - 1 for d in self.duplicates))
        return out

    def state_dict(self) -> dict[str, Any]:
        # Saved inside every checkpoint so evaluate.py can rebuild the same classes without the training data.
        return {"classes": list(self.classes), "label_field": self.label_field, "task": self.task_name,
                "fold": self.fold, "n_folds": self.n_folds, "seed": self.seed,
                "patches": dict(self.settings.__dict__)}
