"""Repairs that work as printed: a damaged camera is rebuilt from its stored source photos by the one command the
error prints, the other cameras' files untouched; ``library.camera`` with a case's data enrols that camera only."""

from __future__ import annotations

import hashlib
import html
import shlex
from pathlib import Path

import numpy as np
import pytest

from sci_lightning.errors import SCIConfigError
from sci_lightning.library import FingerprintLibrary
from sci_lightning.run import library as library_entry

from conftest import compose_config
from fakedata import make_folder_tree, roots_case

CAMS = [("A", "A1"), ("B", "B1"), ("C", "C1")]


def _run(tmp_path: Path, run: str, *overrides: str) -> dict:
    return library_entry.run(compose_config("library", *overrides, run_dir=tmp_path / run))


def _case(tmp_path: Path) -> list[str]:
    make_folder_tree(tmp_path / "refs", CAMS, per_camera=3)
    make_folder_tree(tmp_path / "q", CAMS, per_camera=1)
    return [
        *roots_case(tmp_path / "refs", tmp_path / "q"),
        "library.scheduler=single",
        "library.index_side=64",
        "library.calibrate=false",
        "logger=csv",
    ]


def _array_files(lib_dir: Path) -> dict[str, str]:
    """SHA-256 of every file under ``arrays/``, by its path there."""
    return {
        str(p.relative_to(lib_dir / "arrays")): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((lib_dir / "arrays").rglob("*"))
        if p.is_file()
    }


def _flip_a_chunk_byte(lib_dir: Path, array: str) -> None:
    chunk = next(p for p in sorted((lib_dir / "arrays" / array / "c").rglob("*")) if p.is_file())
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))


def test_the_printed_repair_command_rebuilds_only_the_damaged_camera(tmp_path):
    lib_dir = tmp_path / "lib"
    case = [f"library.path={lib_dir}", *_case(tmp_path)]
    assert sorted(_run(tmp_path, "enrol", "action=enrol", *case)["enrolled"]) == ["A/A1", "B/B1", "C/C1"]
    lib = FingerprintLibrary(lib_dir)
    before, enrolled = _array_files(lib_dir), {n: lib.camera(n)["fp_sha256"] for n in lib.names()}
    _flip_a_chunk_byte(lib_dir, lib.camera("B/B1")["array"])

    with pytest.raises(SCIConfigError, match="fingerprint of 'B/B1'.*is damaged") as err:
        _run(tmp_path, "verify", "action=verify", f"library.path={lib_dir}")
    printed = [line.strip() for line in err.value.fix.splitlines() if line.strip().startswith("python library.py")]
    assert len(printed) == 1, err.value.fix  # one command, on one line, for the one damaged camera
    argv = shlex.split(printed[0])
    assert argv[:3] == ["python", "library.py", "action=repair"]
    done = _run(tmp_path, "repair", *argv[2:])  # exactly as printed
    assert done == {"action": "repair", "camera": "B/B1", "was_damaged": True, "same_as_enrolled": True}

    assert _run(tmp_path, "verify2", "action=verify", f"library.path={lib_dir}")["problems"] == []
    after, lib = _array_files(lib_dir), FingerprintLibrary(lib_dir)
    others = {lib.camera(n)["array"] for n in ("A/A1", "C/C1")}
    assert {k: v for k, v in after.items() if k.split("/")[0] in others} == {
        k: v for k, v in before.items() if k.split("/")[0] in others
    }  # the other cameras' fingerprint files byte for byte
    assert {n: lib.camera(n)["fp_sha256"] for n in lib.names()} == enrolled

    # the same damage repaired the other way: enrol of that one camera from the case (same photos) rebuilds it
    _flip_a_chunk_byte(lib_dir, lib.camera("C/C1")["array"])
    again = _run(tmp_path, "enrol2", "action=enrol", "library.camera=C/C1", *case)
    assert again["enrolled"] == ["C/C1"] and again["already"] == []  # A/A1 and B/B1 not even looked at
    assert FingerprintLibrary(lib_dir).verify()["problems"] == []


def test_library_camera_with_a_case_is_never_ignored(tmp_path):
    case = [f"library.path={tmp_path / 'lib'}", *_case(tmp_path)]
    done = _run(tmp_path, "one", "action=enrol", "library.camera=B/B1", *case)
    assert done["enrolled"] == ["B/B1"] and FingerprintLibrary(tmp_path / "lib").names() == ["B/B1"]
    with pytest.raises(SCIConfigError, match="'Z9' is not a reference camera") as err:
        _run(tmp_path, "bad", "action=enrol", "library.camera=Z9", *case)
    assert "A/A1" in err.value.problem and err.value.setting == "library.camera"


def test_repair_refuses_when_a_source_photo_changed(tmp_path):
    case = [f"library.path={tmp_path / 'lib'}", *_case(tmp_path)]
    _run(tmp_path, "enrol", "action=enrol", "library.camera=A/A1", *case)
    photo = Path(FingerprintLibrary(tmp_path / "lib").camera("A/A1")["photos"][0][0])
    photo.write_bytes(photo.read_bytes() + b"\0")
    with pytest.raises(SCIConfigError, match="changed since enrolment") as err:
        _run(tmp_path, "repair", "action=repair", f"library.path={tmp_path / 'lib'}", "library.camera=A/A1")
    assert str(photo) in err.value.problem and "library.replace=true" in err.value.fix


def test_the_desk_shows_a_damaged_camera_with_the_same_fix(tmp_path):
    from fastapi.testclient import TestClient

    from sci_lightning.run.serve import desk_app

    from test_desk import RESIDUAL, desk_config

    lib = FingerprintLibrary(tmp_path / "lib", create=True, residual=RESIDUAL, side=64)
    lib.enrol("A1", "A", np.random.default_rng(0).normal(0, 0.01, (96, 128)), [("/p/a.jpg", "ab" * 32)], "test")
    client = TestClient(desk_app(desk_config(tmp_path)))
    assert 'id="damaged"' not in client.get("/cameras/A1").text
    _flip_a_chunk_byte(tmp_path / "lib", lib.camera("A1")["array"])
    page = client.get("/cameras/A1").text
    assert 'id="damaged"' in page and html.escape(lib.repair_command("A1")) in page
