"""Fixed splits for the forensic protocol: which photos are references (learned from) and which are questioned.

``data.split.mode`` chooses how the data says it:

* ``kfold`` — no sides: cross-validation folds (the research protocol);
* ``column`` — a manifest column (``data.split.column``, e.g. ``content``) whose values are listed in
  ``data.split.reference_values`` (e.g. ``flat``) or ``data.split.questioned_values`` (e.g. ``natural``);
* ``roots`` — two folders in the same layout, ``data.reference_root`` and ``data.questioned_root``.

Each record gets ``extra["side"]`` = ``reference`` or ``questioned``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from sci_lightning.data.layouts import build_index
from sci_lightning.data.records import ImageRecord
from sci_lightning.errors import SCIConfigError

MODES = ("kfold", "column", "roots")
REFERENCE, QUESTIONED = "reference", "questioned"


def split_mode(data_cfg: Mapping) -> str:
    mode = str(data_cfg["split"]["mode"])
    if mode not in MODES:
        raise SCIConfigError("data.split.mode", f"unknown value {mode!r}", f"use one of {', '.join(MODES)}")
    return mode


def _with_side(record: ImageRecord, side: str) -> ImageRecord:
    return dataclasses.replace(record, extra={**record.extra, "side": side})


def _sides_from_column(records: list[ImageRecord], split: Mapping) -> list[ImageRecord]:
    column = split.get("column")
    ref_values = {str(v).lower() for v in split.get("reference_values") or []}
    q_values = {str(v).lower() for v in split.get("questioned_values") or []}
    if not column or not ref_values or not q_values:
        raise SCIConfigError(
            "data.split.column",
            "mode=column needs a column and both value lists",
            "set data.split.column=content data.split.reference_values=[flat] data.split.questioned_values=[natural]",
        )
    out = []
    for r in records:
        if column not in r.extra:
            raise SCIConfigError(
                "data.split.column",
                f"{r.path} has no column {column!r} (the manifest's other columns: {sorted(r.extra) or 'none'})",
                "add the column or pick another one",
            )
        value = str(r.extra[column]).lower()
        if value in ref_values:
            out.append(_with_side(r, REFERENCE))
        elif value in q_values:
            out.append(_with_side(r, QUESTIONED))
        else:
            raise SCIConfigError(
                "data.split.column",
                f"{r.path}: {column}={r.extra[column]!r} is in neither "
                f"reference_values {sorted(ref_values)} nor questioned_values {sorted(q_values)}",
                "add the value to one of the lists",
            )
    return out


def indexed_records(data_cfg: Mapping) -> tuple[list[ImageRecord], int]:
    """The data's records (with sides in the fixed modes) and the number of unmatched files."""
    mode = split_mode(data_cfg)
    split = data_cfg.get("split") or {}
    if mode == "roots":
        records, unmatched = [], 0
        for side, key in ((REFERENCE, "reference_root"), (QUESTIONED, "questioned_root")):
            if not data_cfg.get(key):
                raise SCIConfigError(
                    f"data.{key}", "is not set (data.split.mode=roots)", f"pass data.{key}=/path/to/{side} photos"
                )
            try:
                index = build_index({**data_cfg, "root": data_cfg[key]})
            except SCIConfigError as err:  # name the setting the user actually typed
                raise SCIConfigError(f"data.{key}", err.problem, err.fix) from None
            records += [_with_side(r, side) for r in index.records]
            unmatched += len(index.unmatched)
        return records, unmatched
    index = build_index(data_cfg)
    records = _sides_from_column(index.records, split) if mode == "column" else index.records
    return records, len(index.unmatched)
