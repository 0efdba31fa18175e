"""Image-disjoint (or scene-disjoint) stratified k-fold splits, made on images before any patching."""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from sci_lightning.errors import SCIConfigError


@dataclass(frozen=True)
class FoldSplit:
    """Indices into the record list for one fold: train / validation (carved from train) / test."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _groups(scenes: list[str], group_by: str) -> np.ndarray:
    if group_by == "image":
        return np.arange(len(scenes))
    if group_by == "scene":
        _, inverse = np.unique(np.asarray(scenes, dtype=object).astype(str), return_inverse=True)
        return inverse
    raise SCIConfigError("data.split.group_by", f"unknown value {group_by!r}", "use 'image' or 'scene'")


def merge_duplicate_groups(groups: np.ndarray, content: list[str]) -> np.ndarray:
    """Give images with the same content hash one group (and with it everything already grouped with them).

    Byte-identical photos under two names would otherwise be free to land on both sides of a split.
    """
    parent = {int(g): int(g) for g in np.unique(groups)}

    def find(g: int) -> int:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    first: dict[str, int] = {}
    for g, digest in zip(groups.tolist(), content):
        if not digest:
            continue
        if digest in first:
            a, b = find(first[digest]), find(g)
            parent[max(a, b)] = min(a, b)
        else:
            first[digest] = g
    return np.array([find(g) for g in groups.tolist()], dtype=np.int64)


def _labels_and_groups(
    labels: list[str], scenes: list[str], group_by: str, val_fraction: float, content: list[str] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Label array and split groups (image or scene, duplicates merged); checks ``val_fraction``."""
    if not 0 <= val_fraction < 1:
        raise SCIConfigError("data.split.val_fraction", f"must be in [0, 1) (got {val_fraction})", "use e.g. 0.1")
    groups = _groups(scenes, group_by)
    if content is not None:
        groups = merge_duplicate_groups(groups, content)
    return np.asarray(labels), groups


def _one_split(labels: np.ndarray, groups: np.ndarray, n_splits: int, index: int, seed: int):
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # sklearn warns when a class has fewer members than n_splits; we check the test side ourselves.
        warnings.simplefilter("ignore", UserWarning)
        for i, (rest, held) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
            if i == index:
                return rest, held
    raise AssertionError("unreachable")


def make_fold(
    labels: list[str],
    scenes: list[str],
    fold: int,
    n_folds: int,
    seed: int,
    group_by: str = "image",
    val_fraction: float = 0.1,
    content: list[str] | None = None,
) -> FoldSplit:
    """Split images for ``fold`` of ``n_folds``: stratified by label, grouped by image or scene.

    The validation images are taken from the training side only, with the same grouping, so no image (or
    scene) is ever on two sides. ``content`` (a hash per image) puts duplicates in one group as well.
    Deterministic in ``seed``.
    """
    if n_folds < 2:
        raise SCIConfigError(
            "n_folds", f"must be at least 2 (got {n_folds})", "set n_folds=10 (the paper) or more than 1"
        )
    if not 0 <= fold < n_folds:
        raise SCIConfigError("fold", f"{fold} is out of range for n_folds={n_folds}", f"use fold=0..{n_folds - 1}")
    y, groups = _labels_and_groups(labels, scenes, group_by, val_fraction, content)
    per_class_groups = {c: len(set(groups[y == c])) for c in np.unique(y)}
    too_few = {c: n for c, n in per_class_groups.items() if n < n_folds}
    if too_few:
        unit = "images" if group_by == "image" else "scenes"
        raise SCIConfigError(
            "n_folds",
            f"classes {too_few} have fewer {unit} than n_folds={n_folds}, so some test folds would lack them",
            f"lower n_folds (at most {min(per_class_groups.values())}) or add {unit} to those classes",
        )
    n_groups = len(np.unique(groups))
    if n_groups < n_folds:
        raise SCIConfigError("n_folds", f"only {n_groups} groups for {n_folds} folds", "lower n_folds")
    rest, test = _one_split(y, groups, n_folds, fold, seed)
    rest, val = _carve_val(y, groups, rest, val_fraction, seed)
    return FoldSplit(train=np.sort(rest), val=np.sort(val), test=np.sort(test))


def _carve_val(
    y: np.ndarray, groups: np.ndarray, rest: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Validation images from the training side ``rest`` (stratified, same grouping): ``(train, val)``."""
    val = np.array([], dtype=int)
    if val_fraction > 0 and len(rest):
        # Small data: fewer validation splits than 1/val_fraction (so a larger share) rather than none.
        biggest_class = max(len(set(groups[rest][y[rest] == c])) for c in np.unique(y[rest]))
        n_val_splits = min(max(2, round(1 / val_fraction)), len(np.unique(groups[rest])), biggest_class)
        if n_val_splits >= 2:
            tr, va = _one_split(y[rest], groups[rest], n_val_splits, 0, seed + 1)
            rest, val = rest[tr], rest[va]
    return rest, val


def make_fixed_split(
    labels: list[str],
    scenes: list[str],
    reference: np.ndarray,
    questioned: np.ndarray,
    seed: int,
    group_by: str = "image",
    val_fraction: float = 0.1,
    content: list[str] | None = None,
) -> FoldSplit:
    """The forensic protocol's split: train + validation from the ``reference`` images, test = ``questioned``.

    Validation images are carved from the references only (stratified, grouped like the k-fold splits).
    """
    y, groups = _labels_and_groups(labels, scenes, group_by, val_fraction, content)
    rest, val = _carve_val(y, groups, np.asarray(reference, dtype=int), val_fraction, seed)
    return FoldSplit(train=np.sort(rest), val=np.sort(val), test=np.sort(np.asarray(questioned, dtype=int)))


def class_counts(labels: list[str], idx: np.ndarray) -> dict[str, int]:
    """How many images of each class an index set holds (for logs and metrics.json)."""
    return dict(sorted(Counter(np.asarray(labels)[idx].tolist()).items()))
