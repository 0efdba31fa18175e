"""Settings stated once: the dataclasses own every default (the Hydra presets only override them), composing
rejects a misspelt or mistyped key, and the README's settings table says what the dataclasses say."""

from __future__ import annotations

import re

import pytest
from hydra.errors import ConfigCompositionException

from sci_lightning.fingerprint.geometry import GeometrySettings
from sci_lightning.run.schema import GROUPS
from sci_lightning.settings import docs_of, settings_from

from conftest import REPO, compose_config


def _cell(value) -> str:
    """A default as the README's table writes it (YAML: true / null / [a,b]; numbers by value)."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, tuple):
        return "[" + ",".join(map(_cell, value)) + "]"
    return _number(str(value))


def _number(text: str) -> str:
    if text.startswith("[") and text.endswith("]"):
        return "[" + ",".join(_number(x) for x in text[1:-1].split(",") if x) + "]"
    try:
        return repr(float(text))
    except ValueError:
        return text


def readme_defaults(group: str) -> dict[str, str]:
    """``key -> default`` from the README's settings table rows of ``group`` (``| `g.a` / `b` | 1 / 2 | ... |``:
    one default per key, a parenthesis after a default is a note)."""
    out = {}
    for line in (REPO / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if len(cells) < 3 or not cells[0].startswith(f"`{group}."):
            continue
        keys = [k.strip().strip("`").removeprefix(f"{group}.") for k in cells[0].split(" / ")]
        values = [re.sub(r"\s*\(.*?\)", "", v).replace(" ", "") for v in cells[1].split(" / ")]
        assert len(keys) == len(values), line
        out.update(zip(keys, values))
    return out


@pytest.mark.parametrize("group", list(GROUPS))
def test_the_readme_table_states_the_dataclass_defaults(group):
    documented, fields = readme_defaults(group), docs_of(GROUPS[group])
    for key, value in documented.items():
        assert key in fields, f"README documents {group}.{key}, which {GROUPS[group].__name__} does not have"
        assert _number(value) == _cell(fields[key][0]), f"{group}.{key}: README {value}, code {fields[key][0]!r}"
    undocumented = set(fields) - set(documented) - {"name"}  # the group's choice has its own row
    assert not undocumented, f"{group}: not in the README's settings table: {sorted(undocumented)}"
    assert all(doc for _, doc in fields.values()), "every field has its one-line doc"


def test_presets_override_the_dataclass_and_composing_checks_names_and_types(tmp_path):
    cfg = compose_config("evaluate", "geometry=full", "geometry.shift=2", run_dir=tmp_path)
    g = settings_from(GeometrySettings, cfg.geometry)
    assert g == GeometrySettings(name="full", shift=2, scale_rotations=(0, 90, 180, 270))
    assert settings_from(GeometrySettings, compose_config("evaluate", run_dir=tmp_path).geometry) == GeometrySettings()
    with pytest.raises(ConfigCompositionException, match="shfit"):
        compose_config("evaluate", "geometry.shfit=2", run_dir=tmp_path)
    with pytest.raises(ConfigCompositionException, match="geometry.shift"):
        compose_config("evaluate", "geometry.shift=wide", run_dir=tmp_path)
