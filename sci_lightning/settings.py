"""Typed settings, stated once: each package owns its settings as a frozen dataclass whose fields carry their type,
default and a one-line doc (:func:`setting`). The run layer registers a schema made from each (:func:`schema_of`) in
Hydra's ConfigStore, so composing a config checks every key's name and type and fills the defaults, and converts
the composed group to the package's object once (:func:`settings_from`); nothing below the run layer sees a config.

Why a second, generated class for Hydra: a frozen dataclass makes a read-only config node, which Hydra cannot
compose the YAML presets and command-line overrides onto; the schema is the same fields, not frozen.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping
from typing import Any


def setting(default: Any, doc: str) -> Any:
    """A settings field: its default and its one-line doc (what the README's settings tables say)."""
    return dataclasses.field(default=default, metadata={"doc": doc})


@functools.cache
def schema_of(cls: type) -> type:
    """The Hydra schema of the settings class ``cls``: its fields, types and defaults in a dataclass that is not
    frozen (see the module's docstring)."""
    hints = typing.get_type_hints(cls)
    fields = [(f.name, hints[f.name], dataclasses.field(default=f.default)) for f in dataclasses.fields(cls)]
    # in the settings' own module, under its own name: a config holding it is pickled (Hydra's joblib and submitit
    # launchers) by reference, so each settings module binds ``<Name>Schema = schema_of(<Name>)`` when imported
    schema = dataclasses.make_dataclass(f"{cls.__name__}Schema", fields)
    schema.__module__ = cls.__module__
    return schema


def settings_from(cls: type, node: Mapping[str, Any]) -> Any:
    """The settings object of a composed config group (a DictConfig or a plain mapping): every field of ``cls``
    from ``node`` (the default where it lacks one), lists where a tuple is declared made tuples."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in node:
            continue
        value = node[f.name]
        if typing.get_origin(hints[f.name]) is tuple and value is not None:
            value = tuple(value)
        values[f.name] = value
    return cls(**values)


def docs_of(cls: type) -> dict[str, tuple[Any, str]]:
    """``name -> (default, doc)`` of every field of the settings class ``cls``."""
    return {f.name: (f.default, f.metadata.get("doc", "")) for f in dataclasses.fields(cls)}
