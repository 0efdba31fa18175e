"""The camera fingerprint library: store (atomic, checksummed), index, search = the PRNU verdicts, Dask
ingestion = single process byte for byte, kill -9 safety, and the command line."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sci_lightning.errors import SCIConfigError
from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.library import FingerprintLibrary, Searcher, SearchSettings, enrol_cameras, ingest_photos
from sci_lightning.library import store as store_module
from sci_lightning.library.index import photo_code, shortlist, sign_code, z_scores
from sci_lightning.run import evaluate as evaluate_entry
from sci_lightning.run import library as library_entry

from conftest import REPO, compose_config
from fakedata import camera_image, make_folder_tree, roots_case, write_jpeg

RESIDUAL = {"sigma": 5.0, "levels": 4, "wavelet": "db4", "grey_first": True}
CAMS = [("A", "A1"), ("B", "B1"), ("C", "C1"), ("X", "X1")]


def _fp(seed: int, shape=(96, 128)) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.01, shape).astype(np.float32)


def _lib(path: Path, n: int = 3, side: int = 64) -> FingerprintLibrary:
    lib = FingerprintLibrary(path, create=True, residual=RESIDUAL, side=side)
    for i in range(n):
        lib.enrol(f"cam{i}", f"dev{i % 2}", _fp(i), [(f"/photos/{i}.jpg", "ab" * 32)], "test")
    return lib


def _query(fp: np.ndarray, rho: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(residual, grey) of a photo whose residual correlates ~rho with ``fp`` (flat grey: I*K = 128 K)."""
    grey = np.full(fp.shape, 128.0, np.float32)
    signal = grey * fp
    noise = np.random.default_rng(10_000 + seed).normal(0, signal.std() * np.sqrt(1 / rho**2 - 1), fp.shape)
    return (signal + noise).astype(np.float32), grey


def test_enrol_list_show_export_remove_round_trip(tmp_path):
    lib = _lib(tmp_path / "lib")
    assert lib.names() == ["cam0", "cam1", "cam2"]
    row = lib.camera("cam1")
    assert row["device"] == "dev1" and (row["height"], row["width"]) == (96, 128) and row["indexed"]
    assert row["n_photos"] == 1 and row["photos"] == [["/photos/1.jpg", "ab" * 32]] and row["enrolled_at"]
    assert np.array_equal(lib.fingerprint("cam1"), _fp(1))
    with np.load(lib.export("cam1", tmp_path / "out" / "cam1.npz")) as npz:
        assert np.array_equal(npz["fingerprint"], _fp(1)) and '"device": "dev1"' in str(npz["metadata"])
    names, codes, unindexed = lib.index()
    assert names == ["cam0", "cam1", "cam2"] and codes.shape == (3, 64 * 64 // 8) and unindexed == []
    reader = FingerprintLibrary(tmp_path / "lib")  # a second process's view: it sees every committed change
    lib.remove("cam1")
    assert lib.names() == ["cam0", "cam2"] and lib.index()[0] == ["cam0", "cam2"]
    assert reader.names() == ["cam0", "cam2"] and reader.index()[0] == ["cam0", "cam2"]
    assert sorted(p.name for p in (tmp_path / "lib" / "arrays").iterdir()) == sorted(
        lib.camera(n)["array"] for n in ("cam0", "cam2")
    )
    with pytest.raises(SCIConfigError, match="cam1") as err:
        lib.camera("cam1")
    assert err.value.setting == "library.camera" and "cam0" in err.value.problem
    # a second reader sees the same library; other residual settings are refused, naming the fix
    assert FingerprintLibrary(tmp_path / "lib").names() == ["cam0", "cam2"]
    with pytest.raises(SCIConfigError, match="prnu.sigma=5.0"):
        FingerprintLibrary(tmp_path / "lib", residual={**RESIDUAL, "sigma": 3.0})


def test_a_crash_between_array_and_catalogue_leaves_no_camera(tmp_path, monkeypatch):
    lib = _lib(tmp_path / "lib", n=1)

    def crash(*args):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(store_module.Catalogue, "bump_generation", staticmethod(crash))
    with pytest.raises(KeyboardInterrupt):
        lib.enrol("half", "dev", _fp(9), [], "test")
    monkeypatch.undo()
    assert lib.names() == ["cam0"]  # the transaction was rolled back: no row, no half camera
    assert len(list((tmp_path / "lib" / "arrays").iterdir())) == 2  # the orphan array ...
    monkeypatch.setattr(store_module, "GC_AGE_S", 0)
    assert len(lib.gc()) == 1 and lib.verify() == {"n_cameras": 1, "problems": [], "damaged": [], "orphan_arrays": []}


def test_damage_is_detected_with_a_clear_error(tmp_path):
    lib = _lib(tmp_path / "lib")
    chunk = next((tmp_path / "lib" / "arrays" / lib.camera("cam2")["array"] / "c").rglob("*"))
    while chunk.is_dir():
        chunk = next(chunk.iterdir())
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(SCIConfigError, match="fingerprint of 'cam2'.*is damaged") as err:
        lib.fingerprint("cam2")
    assert "action=repair" in err.value.fix and "library.camera=cam2" in err.value.fix
    assert len(lib.verify()["problems"]) == 1
    # a damaged derived index is rebuilt from the catalogue
    names, codes, _ = lib.index()
    idx = next((tmp_path / "lib" / "index").glob("codes-*.npy"))
    raw = bytearray(idx.read_bytes())
    raw[-1] ^= 0xFF
    idx.write_bytes(bytes(raw))
    names2, codes2, _ = FingerprintLibrary(tmp_path / "lib").index()
    assert names2 == names and np.array_equal(codes2, codes)
    # a damaged catalogue: the file and the fix are named
    cat = tmp_path / "lib" / "catalogue.sqlite"
    lib.close()
    for extra in ("-wal", "-shm"):
        Path(f"{cat}{extra}").unlink(missing_ok=True)
    cat.write_bytes(b"not a database" * 100)
    with pytest.raises(SCIConfigError, match="catalogue.sqlite is damaged"):
        FingerprintLibrary(tmp_path / "lib")
    with pytest.raises(SCIConfigError, match="not a fingerprint library"):
        FingerprintLibrary(tmp_path / "nothing")


def test_the_index_ranks_the_true_camera_first_and_unknowns_low():
    fps = [_fp(i, (128, 128)) for i in range(40)]
    codes = np.stack([sign_code(f, 128) for f in fps])
    for cam in (3, 17, 31):
        z = z_scores(codes, photo_code(*_query(fps[cam], 0.1, seed=cam), 128))
        assert np.argmax(z) == cam and z[cam] > 6  # 0.1 * 0.64 * sqrt(16384) ~ 8
        assert shortlist(z, 5, 4.0)[0] == cam
    z = z_scores(codes, photo_code(*_query(_fp(999, (128, 128)), 0.1, seed=1), 128))
    assert np.abs(z).max() < 4.5  # no camera of the library: null z ~ N(0, 1)
    assert list(shortlist(np.array([0.0, 5.0, 1.0, 4.5]), 1, 4.0)) == [1, 3]  # top-1 plus every z >= min_z


def test_indexed_search_agrees_with_the_exhaustive_scan(tmp_path):
    lib = FingerprintLibrary(tmp_path / "lib", create=True, residual=RESIDUAL, side=64)
    fps = {f"c{i:02d}": _fp(100 + i) for i in range(30)}
    for name, fp in fps.items():
        lib.enrol(name, "dev", fp, [], "test")
    indexed = Searcher(lib, None, SearchSettings(shortlist=3, min_z=4.0))
    exhaustive = Searcher(lib, None, SearchSettings(exhaustive=True))
    for k, name in enumerate(["c00", "c07", "c29", None]):
        w, grey = _query(fps[name] if name else _fp(5000), 0.08, seed=k)
        a, b = indexed.search_residual(w, grey), exhaustive.search_residual(w, grey)
        assert len(a["scores"]) < 10 and len(b["scores"]) == 30
        best_a = max(a["scores"], key=lambda c: a["scores"][c][0])
        best_b = max(b["scores"], key=lambda c: b["scores"][c][0])
        if name:
            assert best_a == best_b == name and a["scores"][name] == b["scores"][name]
        else:
            assert max(v[0] for v in a["scores"].values()) < 60 and max(v[0] for v in b["scores"].values()) < 60


def _case(tmp_path: Path) -> list[str]:
    make_folder_tree(tmp_path / "refs", CAMS, per_camera=8)
    for device, camera in CAMS:
        for k in range(3):
            write_jpeg(tmp_path / "q" / device / camera / f"q_{k}.jpg", camera_image(device, camera, 500 + k))
    return [
        *roots_case(tmp_path / "refs", tmp_path / "q"),
        "data.split.val_fraction=0.3",
        "logger=csv",
    ]


def _library(tmp_path: Path, run: str, *overrides: str) -> dict:
    cfg = compose_config(
        "library", f"library.path={tmp_path / 'lib'}", "library.index_side=64", *overrides, run_dir=tmp_path / run
    )
    return library_entry.run(cfg)


def _verdicts(run_dir: Path) -> dict[str, tuple[str, str, str]]:
    """path -> (decision, best camera, its score) of a verdicts.csv."""
    with (run_dir / "verdicts.csv").open() as fh:
        return {
            Path(r["path"]).resolve().as_posix(): (r["decision"], r["camera1"], r["score1"]) for r in csv.DictReader(fh)
        }


@pytest.mark.slow
def test_library_verdicts_equal_the_prnu_verdicts_enrolling_searching_and_removing(tmp_path):
    case = _case(tmp_path)
    evaluate_entry.run(compose_config("evaluate", "method=prnu", *case, run_dir=tmp_path / "prnu"))
    excl = "data.split.exclude_reference=[X/X1]"
    evaluate_entry.run(compose_config("evaluate", "method=prnu", *case, excl, run_dir=tmp_path / "prnu_ex"))
    m = _library(tmp_path, "enrol", "action=enrol", "library.scheduler=single", *case)
    assert sorted(m["enrolled"]) == ["A/A1", "B/B1", "C/C1", "X/X1"]
    s = _library(tmp_path, "search", "action=search", f"images={tmp_path / 'q'}", "logger=csv")
    assert s["n_images"] == 12 and s["n_cameras"] == 4
    assert _verdicts(tmp_path / "search") == _verdicts(tmp_path / "prnu")  # decisions, ranking and P(match)
    assert (tmp_path / "search" / "verdict_report.md").is_file() and (tmp_path / "search" / "search.csv").is_file()
    _library(tmp_path, "remove", "action=remove", "library.camera=X/X1")
    _library(tmp_path, "search_ex", "action=search", f"images={tmp_path / 'q'}", "logger=csv")
    lib_ex, prnu_ex = _verdicts(tmp_path / "search_ex"), _verdicts(tmp_path / "prnu_ex")
    assert {p: v[:2] for p, v in lib_ex.items()} == {p: v[:2] for p, v in prnu_ex.items()}
    assert sum(v[0] == "unknown" for v in lib_ex.values()) >= 3  # X1's photos
    # the reverse direction: which questioned photos did A1 take?
    r = _library(
        tmp_path,
        "reverse",
        "action=reverse",
        "library.camera=A/A1",
        f"images={tmp_path / 'q'}",
        "library.scheduler=single",
    )
    with (tmp_path / "reverse" / "reverse.csv").open() as fh:
        matched = {Path(row["path"]).parent.name for row in csv.DictReader(fh) if row["decision"] == "match"}
    assert r["n_photos"] == 12 and matched == {"A1"}


@pytest.mark.slow
def test_dask_ingestion_and_enrolment_give_the_same_bytes_as_one_process(tmp_path):
    make_folder_tree(tmp_path / "photos", CAMS[:2], per_camera=5)
    paths = sorted(str(p) for p in (tmp_path / "photos").rglob("*.jpg"))
    write_jpeg(tmp_path / "photos" / "zz_bad.jpg", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "photos" / "zz_bad.jpg").write_bytes(b"not a jpeg")
    from dask.distributed import LocalCluster

    libs = {}
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        # single: this process; local: a Dask local cluster of 2; address: an existing scheduler, as on a cluster
        for mode, scheduler in (("single", "single"), ("local", "local"), ("address", cluster.scheduler_address)):
            lib = FingerprintLibrary(tmp_path / mode, create=True, residual=RESIDUAL, side=64)
            residuals = ResidualStore(tmp_path / f"cache-{mode}", RESIDUAL)
            done = ingest_photos(lib, [*paths, str(tmp_path / "photos" / "zz_bad.jpg")], residuals, scheduler, 2)
            assert done["n_ingested"] == 10 and done["n_skipped"] == 1 and "zz_bad" in done["skipped"][0]["path"]
            jobs = [(cam, dev, [p for p in paths if f"/{cam}/" in p]) for dev, cam in CAMS[:2]]
            assert sorted(enrol_cameras(lib, jobs, residuals, "test", scheduler, 2)["enrolled"]) == ["A1", "B1"]
            libs[mode] = lib
    rows = "SELECT sha256, code FROM photos ORDER BY sha256"
    a = libs["single"]
    assert len(a.cat.query(rows)) == 10 and sorted(a.names()) == ["A1", "B1"]
    files = sorted((tmp_path / "cache-single").rglob("*.npz"))
    assert len(files) == 10
    for b, mode in ((libs["local"], "local"), (libs["address"], "address")):
        assert sorted(b.names()) == ["A1", "B1"] and a.cat.query(rows) == b.cat.query(rows)
        for name in a.names():
            assert a.fingerprint(name).tobytes() == b.fingerprint(name).tobytes()
        for f in files:
            twin = tmp_path / f"cache-{mode}" / f.relative_to(tmp_path / "cache-single")
            with np.load(f) as x, np.load(twin) as y:
                assert x["w"].tobytes() == y["w"].tobytes()


def _kill_when(cmd: list[str], ready, timeout: float = 240) -> None:
    """Start ``cmd``; SIGKILL it as soon as ``ready()`` is true (fails if it ends first)."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + timeout
    try:
        while not ready():
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.time() < end
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()


def _count(db: Path, table: str) -> int:
    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_kill_9_during_enrolment_and_ingestion_leaves_the_library_intact(tmp_path):
    cams = [(f"D{i}", f"D{i}_cam") for i in range(12)]
    make_folder_tree(tmp_path / "refs", cams, per_camera=4, size=(256, 320))
    lib_dir, db = tmp_path / "lib", tmp_path / "lib" / "catalogue.sqlite"
    base = [
        sys.executable,
        "library.py",
        f"library.path={lib_dir}",
        "library.index_side=64",
        "library.scheduler=single",
        "logger=csv",
        "task=sensor_level",
        "data=folder",
        f"data.root={tmp_path / 'refs'}",
        "n_folds=2",
        "library.calibrate=false",
    ]
    _kill_when([*base, "action=enrol", f"hydra.run.dir={tmp_path / 'e1'}"], lambda: _count(db, "cameras") >= 2)
    lib = FingerprintLibrary(lib_dir)
    first = lib.names()
    assert 2 <= len(first) < 12 and lib.verify()["problems"] == []
    out = subprocess.run(
        [*base, "action=enrol", f"hydra.run.dir={tmp_path / 'e2'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lib = FingerprintLibrary(lib_dir)
    assert len(lib.names()) == 12 and lib.verify()["problems"] == []
    # ingestion: killed after its first committed batch, the rerun does only what is left
    photos = tmp_path / "refs"
    ingest = [*base, "action=ingest", f"images={photos}"]
    _kill_when([*ingest, f"hydra.run.dir={tmp_path / 'i1'}"], lambda: _count(db, "photos") >= 1)
    done = _count(db, "photos")
    assert 1 <= done < 48
    out = subprocess.run(
        [*ingest, f"hydra.run.dir={tmp_path / 'i2'}"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert _count(db, "photos") == 48
    import json

    m = json.loads((tmp_path / "i2" / "metrics.json").read_text())
    assert m["n_ingested"] == 48 - done and FingerprintLibrary(lib_dir).verify()["problems"] == []


def test_command_line_errors_name_the_setting(tmp_path):
    out = subprocess.run(
        [sys.executable, "library.py", "action=search", f"hydra.run.dir={tmp_path / 'r'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "library.path" in out.stderr and "fix:" in out.stderr
    _lib(tmp_path / "lib")
    with pytest.raises(SCIConfigError) as err:
        _library(tmp_path, "x", "action=frobnicate")
    assert err.value.setting == "action" and "search" in err.value.fix
    with pytest.raises(SCIConfigError) as err:
        _library(tmp_path, "x", "action=show", "library.camera=nope")
    assert err.value.setting == "library.camera"
    assert _library(tmp_path, "x", "action=list")["n_cameras"] == 3
    assert _library(tmp_path, "x", "action=show", "library.camera=cam0")["device"] == "dev0"
    assert Path(_library(tmp_path, "x", "action=export", "library.camera=cam0")["file"]).is_file()
    assert _library(tmp_path, "x", "action=verify")["problems"] == []


def test_turned_resized_and_cropped_photos_are_found_at_scale(tmp_path):
    """The index shortlists turned and aspect-kept resized photos (codes for each turn, the photo resampled to
    each camera size); a crop it cannot place goes to verification of every camera that can hold it."""
    from sci_lightning.fingerprint.geometry import GeometrySettings, resample
    from sci_lightning.fingerprint.scoring import Search

    lib = FingerprintLibrary(tmp_path / "lib", create=True, residual=RESIDUAL, side=64)
    fps = {f"c{i:02d}": _fp(200 + i, (192, 256)) for i in range(30)}
    for name, fp in fps.items():
        lib.enrol(name, "dev", fp, [], "test")
    auto = Search(GeometrySettings(name="auto"), -4.0)
    searcher = Searcher(lib, None, SearchSettings(shortlist=3, min_z=4.0, search=auto))
    w, grey = _query(fps["c07"], 0.15, seed=7)
    turned = searcher.search_residual(np.rot90(w).copy(), np.rot90(grey).copy())
    assert turned["n_verified"] < 10  # the index found it: a shortlist, not the library
    best = max(turned["scores"], key=lambda c: turned["scores"][c][0])
    assert best == "c07" and turned["geometry"]["c07"]["rotation"] == 90
    small_w = resample(grey * fps["c12"], 96, 128) + np.random.default_rng(3).normal(0, 0.6, (96, 128))
    resized = searcher.search_residual(small_w.astype(np.float32), np.full((96, 128), 128.0, np.float32))
    best = max(resized["scores"], key=lambda c: resized["scores"][c][0])
    assert resized["n_verified"] < 10 and best == "c12"
    assert resized["geometry"]["c12"]["transform"] == "resize" and resized["geometry"]["c12"]["scale"] == 0.5
    assert resized["family"] == 30  # judged as if all 30 cameras had been verified
    cw, cg = w[40:140, 50:200], grey[40:140, 50:200]  # a crop of c07: no code can place it
    crop = searcher.search_residual(cw.copy(), cg.copy())
    assert crop["n_verified"] == 30 and crop["geometry"]["c07"]["offset_y"] == 40
    assert max(crop["scores"], key=lambda c: crop["scores"][c][0]) == "c07"


def test_reverse_search_finds_a_turned_copy(tmp_path):
    case = _case(tmp_path)
    _library(tmp_path, "enrol", "action=enrol", "library.scheduler=single", *case)
    src = next((tmp_path / "q" / "A" / "A1").glob("*.jpg"))
    from PIL import Image

    with Image.open(src) as img:
        img.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "q" / "A" / "A1" / "turned.png")
    _library(
        tmp_path, "rev", "action=reverse", "library.camera=A/A1", f"images={tmp_path / 'q'}", "library.scheduler=single"
    )
    with (tmp_path / "rev" / "reverse.csv").open() as fh:
        rows = {Path(r["path"]).name: r for r in csv.DictReader(fh) if Path(r["path"]).parent.name == "A1"}
    assert rows["turned.png"]["decision"] == "match" and rows["turned.png"]["rotation"] == "90"
    assert all(r["decision"] == "match" for r in rows.values())


def _enrol_folders(tmp_path: Path, cams: list[tuple[str, str]], per_camera: int = 4) -> None:
    make_folder_tree(tmp_path / "refs", cams, per_camera=per_camera)  # 96 x 128 cameras
    for device, camera in cams:
        _library(
            tmp_path,
            f"enrol-{camera}",
            "action=enrol",
            f"images={tmp_path / 'refs' / device / camera}",
            f"library.camera={camera}",
            f"library.device={device}",
        )


def test_a_photo_larger_than_every_camera_gets_an_unknown_verdict_not_a_crash(tmp_path):
    _enrol_folders(tmp_path, CAMS[:2])
    write_jpeg(tmp_path / "q" / "phone.jpg", np.random.default_rng(1).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    _library(tmp_path, "search", "action=search", f"images={tmp_path / 'q'}")
    rows = list(csv.DictReader((tmp_path / "search" / "verdicts.csv").open()))
    assert [r["decision"] for r in rows] == ["unknown"]
    assert "fits no enrolled camera" in (tmp_path / "search" / "verdict_report.md").read_text()


def test_list_and_show_give_each_fingerprint_s_quality(tmp_path, capsys):
    _enrol_folders(tmp_path, CAMS[:2])
    capsys.readouterr()
    _library(tmp_path, "list", "action=list")
    printed = capsys.readouterr().out
    assert "leak" in printed and "fingerprint(s) to be wary of" in printed  # 4 photos each: thin
    rows = list(csv.DictReader((tmp_path / "list" / "cameras.csv").open()))
    assert len(rows) == 2 and all(r["scene_leak"] and "thin: 4 reference photos" in r["quality_warnings"] for r in rows)
    shown = _library(tmp_path, "show", "action=show", "library.camera=A1")
    assert shown["quality"]["n_photos"] == 4 and shown["quality"]["warnings"]
