"""Which photos a run uses, and for what: records, classes, train/val/test (reference/questioned) and unknowns.

One plain module (NumPy and scikit-learn, no torch, no Lightning) that every method stands on: the CNN's
datamodule wraps it, the PRNU baseline and the fingerprint matcher call it directly. From ``cfg.data`` + task +
fold it gives the same answer to every method, so their numbers are measured on the same images.

What makes an image usable is decided once, by a *probe* of each file (decodable, at least ``min_size`` px on
each side, SHA-256 of its bytes): the patch cache records exactly that while it cuts patches, and
:func:`probe_files` finds it out for methods that never cut patches. Byte-identical photos are kept in one
split group; on a fixed split, classes come from the references and questioned photos of cameras without
references are set apart as ``unknown``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from sci_lightning.data.build import parallel_map
from sci_lightning.data.defaults import with_defaults
from sci_lightning.data.folds import class_counts, make_fixed_split, make_fold
from sci_lightning.data.images import SkippedImage, load_rgb_region
from sci_lightning.data.layouts import list_images
from sci_lightning.data.records import ImageRecord, class_names, label_field_for
from sci_lightning.data.sides import QUESTIONED, REFERENCE, indexed_records, split_mode
from sci_lightning.errors import SCIConfigError
from sci_lightning.outputs import Metrics

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test")


@dataclass(frozen=True)
class FileProbe:
    """What selection needs to know of one file: why it cannot be used ("" = usable) and its content hash."""

    reason: str
    sha256: str


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes ("" if it cannot be read)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return ""
    return h.hexdigest()


def probe_file(path: str, min_size: int = 1) -> FileProbe:
    """Decode ``path`` (converting a single pixel only) and hash it: the same verdict the patch cache reaches."""
    try:
        load_rgb_region(path, min_size=min_size, box=lambda h, w: (0, 0, 1, 1))
        reason = ""
    except SkippedImage as err:
        reason = str(err)
    return FileProbe(reason, sha256_file(path))


def probe_files(paths: Sequence[str | Path], min_size: int, workers: int) -> list[FileProbe]:
    """:func:`probe_file` for every path, in parallel; unusable files are logged with their reason."""
    probes = list(
        parallel_map(partial(probe_file, min_size=min_size), [str(p) for p in paths], workers, "Checking images")
    )
    for path, probe in zip(paths, probes):
        if probe.reason:
            log.warning("skipped %s: %s", path, probe.reason)
    return probes


@dataclass
class Selection:
    """The images of one run and their roles. Index arrays point into ``records`` (usable images only)."""

    records: list[ImageRecord]
    classes: list[str]
    label_field: str
    mode: str  # kfold | column | roots
    splits: dict[str, np.ndarray]  # train / val / test -> indices into records
    class_idx: np.ndarray  # class index of every record (-1: a camera without references)
    unknown_idx: np.ndarray  # questioned images of cameras without references (fixed splits)
    source_idx: np.ndarray  # index of every record in the full indexed list (the patch cache's image order)
    fold: int
    n_folds: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    n_unmatched: int = 0
    duplicates: list[list[str]] = field(default_factory=list)

    def split_records(self, stage: str) -> list[ImageRecord]:
        """The records of a split, in the order of the image indices the loaders report."""
        return [self.records[i] for i in self.splits[stage]]

    def split_labels(self, stage: str) -> np.ndarray:
        """Class indices of a split's images, in the same order as :meth:`split_records`."""
        return self.class_idx[self.splits[stage]]

    def unknown_records(self) -> list[ImageRecord]:
        """Questioned images of cameras left out of the references (fixed splits only)."""
        return [self.records[i] for i in self.unknown_idx]

    def references(self) -> list[ImageRecord]:
        """Every image a method may learn from: the training and validation images (or reference photos)."""
        return self.split_records("train") + self.split_records("val")

    def questioned(self) -> tuple[list[ImageRecord], dict[str, str]]:
        """Every questioned image (cameras without references included) and the true class of the known ones."""
        truth = {str(r.path): r.label(self.label_field) for r in self.split_records("test")}
        return self.split_records("test") + self.unknown_records(), truth

    def where(self) -> str:
        return f"fold {self.fold}/{self.n_folds}" if self.mode == "kfold" else f"fixed split ({self.mode})"

    def summary(self) -> Metrics:
        """Image counts for metrics.json."""
        out: Metrics = {f"n_{s}_images": int(len(self.splits[s])) for s in STAGES}
        out.update(
            n_skipped_images=len(self.skipped),
            n_unmatched_files=self.n_unmatched,
            split_mode=self.mode,
            n_unknown_camera_images=int(len(self.unknown_idx)),
            n_duplicate_images=sum(len(d) - 1 for d in self.duplicates),
        )
        return out


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
        log.warning(
            "byte-identical images, kept in the same fold: %s%s", " == ".join(str(records[i].path) for i in idx), clash
        )
    return [[str(records[i].path) for i in idx] for idx in sets]


def _check_classes(expected: list[str], classes: list[str], side: str, task_name: str) -> None:
    empty = sorted(set(expected) - set(classes))
    if empty:
        raise SCIConfigError(
            "data.root",
            f"classes {empty} have no usable {side}images (all skipped)",
            "check those images (see the skip reasons in the log) or remove the class",
        )
    if len(classes) < 2:
        raise SCIConfigError(
            "data.root",
            f"only one class ({classes}) for task {task_name}",
            "identification needs photos from at least two cameras",
        )


def _fixed_sides(
    records: list[ImageRecord],
    labels: list[str],
    all_records: list[ImageRecord],
    split_cfg: Mapping,
    label_field: str,
    task_name: str,
    duplicates: list[list[str]],
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """``(classes, reference idx, known questioned idx, unknown questioned idx)`` of a fixed split."""
    y = np.asarray(labels)
    side = np.array([r.extra.get("side") for r in records])
    excluded = [str(c) for c in split_cfg.get("exclude_reference") or []]
    every_class = class_names(all_records, label_field)
    if set(excluded) - set(every_class):
        raise SCIConfigError(
            "data.split.exclude_reference",
            f"{sorted(set(excluded) - set(every_class))} are not classes of this task",
            f"use names from {every_class}",
        )
    ref_mask = (side == REFERENCE) & ~np.isin(y, excluded)
    expected = sorted({r.label(label_field) for r in all_records if r.extra.get("side") == REFERENCE} - set(excluded))
    classes = sorted(set(y[ref_mask].tolist()))
    _check_classes(expected, classes, "reference ", task_name)
    q_mask = side == QUESTIONED
    if not q_mask.any():
        raise SCIConfigError(
            "data.split",
            "no usable questioned images",
            "check data.questioned_root or the questioned values of data.split.column",
        )
    known = np.isin(y, classes)
    path_side = {str(r.path): r.extra.get("side") for r in records}
    for dup in duplicates:
        if len({path_side[p] for p in dup}) > 1:
            log.warning("the same photo is both a reference and a questioned image: %s", " == ".join(dup))
    return classes, np.flatnonzero(ref_mask), np.flatnonzero(q_mask & known), np.flatnonzero(q_mask & ~known)


def select(
    data_cfg: Mapping,
    task_name: str,
    fold: int,
    n_folds: int,
    seed: int,
    records: list[ImageRecord],
    probes: Sequence[FileProbe],
    n_unmatched: int = 0,
    label_field: str | None = None,
) -> Selection:
    """Assign the usable ``records`` (``probes[i]`` says whether record ``i`` is usable) to their roles."""
    label_field = label_field_for(task_name, label_field)
    split_cfg = dict(data_cfg["split"])
    mode = split_mode(data_cfg)
    usable = [i for i, p in enumerate(probes) if not p.reason]
    skipped = [(str(records[i].path), probes[i].reason) for i in range(len(records)) if probes[i].reason]
    if skipped:
        log.warning("%d of %d images skipped (reasons above and in skipped_images.csv)", len(skipped), len(records))
    kept = [records[i] for i in usable]
    labels = [r.label(label_field) for r in kept]
    content = [probes[i].sha256 for i in usable]
    duplicates = find_duplicates(kept, content, label_field)
    group_by = split_cfg["group_by"]
    val_fraction = float(split_cfg["val_fraction"])
    scenes = [r.scene for r in kept]
    unknown = np.empty(0, dtype=np.int64)
    if mode == "kfold":
        classes = class_names(kept, label_field)
        _check_classes(class_names(records, label_field), classes, "", task_name)
        split = make_fold(
            labels, scenes, fold, n_folds, seed, group_by=group_by, val_fraction=val_fraction, content=content
        )
    else:
        classes, reference, questioned, unknown = _fixed_sides(
            kept, labels, records, split_cfg, label_field, task_name, duplicates
        )
        split = make_fixed_split(
            labels, scenes, reference, questioned, seed, group_by=group_by, val_fraction=val_fraction, content=content
        )
    known = {c: i for i, c in enumerate(classes)}
    sel = Selection(
        kept,
        classes,
        label_field,
        mode,
        {"train": split.train, "val": split.val, "test": split.test},
        np.array([known.get(lbl, -1) for lbl in labels], dtype=np.int64),
        unknown,
        np.asarray(usable, dtype=np.int64),
        int(fold),
        int(n_folds),
        skipped,
        n_unmatched,
        duplicates,
    )
    for name, idx in sel.splits.items():
        log.info("%s %s: %d images, per class %s", sel.where(), name, len(idx), class_counts(labels, idx))
    if len(unknown):
        log.info(
            "%d questioned images of cameras without references (the right verdict is 'unknown'): %s",
            len(unknown),
            class_counts(labels, unknown),
        )
    return sel


def select_images(
    data_cfg: Mapping,
    task_name: str,
    fold: int,
    n_folds: int,
    seed: int,
    label_field: str | None = None,
    workers: int = 1,
) -> Selection:
    """Index ``data_cfg``'s photos, probe every file and select: for methods that need no patch cache.

    Files are usable under the same rule the patch cache applies (decodable, at least ``data.patches.size`` px
    on each side), so every method sees the same folds as the CNN with the data's patch size.
    """
    label_field_for(task_name, label_field)  # a wrong task is reported before the data is read
    data_cfg = with_defaults(data_cfg)  # the keys a Python caller leaves out, from conf/data/base.yaml
    records, n_unmatched = indexed_records(data_cfg)
    min_size = int(data_cfg["patches"]["size"])
    probes = probe_files([r.path for r in records], min_size, workers)
    return select(data_cfg, task_name, fold, n_folds, seed, records, probes, n_unmatched, label_field)


def questioned_files(images: str | Path, extensions: Sequence[str]) -> list[Path]:
    """The photos named by ``images=`` (a folder, searched recursively, or one file)."""
    target = Path(images).expanduser().resolve()
    if target.is_file():
        return [target]
    if not target.is_dir():
        raise SCIConfigError("images", f"{target} does not exist", "pass images=DIR (a folder of photos) or a file")
    paths = list_images(target, list(extensions))
    if not paths:
        raise SCIConfigError(
            "images",
            f"no images with extensions {list(extensions)} under {target}",
            "check the folder or set image_extensions",
        )
    return paths
