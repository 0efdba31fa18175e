"""The data layer's defaults have one source: ``conf/data/base.yaml``.

A composed config (``train.py``, ``evaluate.py``, ``library.py``) already holds every key, so the data layer reads
keys, never ``.get(key, default)``. Callers of the Python API (:class:`~sci_lightning.data.datamodule.SCIDataModule`,
:func:`~sci_lightning.data.selection.select_images`) may pass only the keys they set: :func:`with_defaults` fills the
rest from that same file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import yaml

BASE_YAML = Path(__file__).resolve().parents[2] / "conf" / "data" / "base.yaml"


@cache
def base_defaults() -> dict[str, Any]:
    """conf/data/base.yaml's concrete values (keys left to each layout, ``???``, and interpolations left out)."""
    raw = yaml.safe_load(BASE_YAML.read_text())

    def concrete(d: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out[k] = concrete(v)
            elif not (isinstance(v, str) and (v == "???" or "${" in v)):
                out[k] = v
        return out

    return concrete(raw)


def with_defaults(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` (any mapping: a plain dict, or a composed config group, read through) with the keys it lacks taken
    from conf/data/base.yaml."""
    given = plain(data)

    def fill(d: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
        out = dict(d)
        for k, v in base.items():
            if k not in out:
                out[k] = v
            elif isinstance(v, dict) and isinstance(out[k], Mapping):
                out[k] = fill(dict(out[k]), v)
        return out

    return fill(given, base_defaults())


def plain(value: Any) -> Any:
    """``value`` with every mapping made a dict and every list-like a list (values read, so a composed config's
    interpolations are resolved), the data layer's own copy."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value
