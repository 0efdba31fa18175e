import csv
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from PIL import Image

from sci_lightning.data.layouts import build_index, read_folder, read_manifest, read_regex
from sci_lightning.data.records import class_names
from sci_lightning.data.sides import indexed_records
from sci_lightning.errors import SCIConfigError

from conftest import REPO, VISION3, compose_config


def preset(name: str, root: Path) -> dict:
    """The data config of a preset, as Hydra composes it (regex base + preset)."""
    base = OmegaConf.load(REPO / "conf/data/regex.yaml")
    cfg = OmegaConf.merge(base, OmegaConf.load(REPO / f"conf/data/{name}.yaml"))
    cfg.root = str(root)
    return {k: v for k, v in OmegaConf.to_container(cfg).items() if k not in ("defaults", "cache_dir")}


def test_miche_preset_gives_3_models_and_5_sensors(miche_tree):
    index = build_index(preset("miche", miche_tree))
    assert class_names(index.records, "device") == ["GS4", "GT2", "IP5"]
    assert class_names(index.records, "camera") == ["GS4_F", "GS4_R", "GT2", "IP5_F", "IP5_R"]
    assert len(index.records) == 5 * 4 * 2  # cameras x subjects x shots, both .jpg and .JPG
    assert [p.name for p in index.unmatched] == ["thumbnail_001.jpg"]
    rec = next(r for r in index.records if r.path.name.startswith("003_GS4"))
    assert rec.scene == "003" and rec.extra["place"] in ("IN", "OU")


def test_miche_matching_ignores_case(tmp_path, miche_tree):
    src = next(miche_tree.rglob("001_IP5_*_F_*.jpg"))
    (tmp_path / "001_ip5_in_f_ri_01_9.JPEG").write_bytes(src.read_bytes())
    (rec,) = build_index(preset("miche", tmp_path)).records
    assert (rec.device, rec.camera) == ("IP5", "IP5_F")


def test_dresden_preset(dresden_tree):
    index = build_index(preset("dresden", dresden_tree))
    assert class_names(index.records, "device") == ["Agfa_DC-504", "Canon_Ixus55", "Nikon_D70s"]
    assert class_names(index.records, "camera") == ["Agfa_DC-504_0", "Canon_Ixus55_0", "Nikon_D70s_0", "Nikon_D70s_1"]


def test_regex_template_with_unknown_group_is_a_clear_error(dresden_tree):
    cfg = preset("dresden", dresden_tree)
    cfg["fields"] = {"device": "{brand}", "camera": "{make}"}
    with pytest.raises(SCIConfigError, match="data.fields"):
        build_index(cfg)


def test_folder_layout_two_and_three_levels(tmp_path, folder_tree):
    index = read_folder(folder_tree)
    assert class_names(index.records, "device") == ["A", "B"]
    assert class_names(index.records, "camera") == ["A/A1", "A/A2", "B/B1"]
    flat = tmp_path / "flat"
    for cam in ("X", "Y"):
        (flat / cam).mkdir(parents=True)
        (flat / cam / "a.JPG").write_bytes(b"x")
    (flat / "loose.jpg").write_bytes(b"x")
    idx = read_folder(flat)
    assert {(r.device, r.camera) for r in idx.records} == {("X", "X"), ("Y", "Y")}
    assert [p.name for p in idx.unmatched] == ["loose.jpg"]


def test_folder_layout_follows_links_to_folders_and_files_each_photo_once(tmp_path, caplog):
    evidence = tmp_path / "evidence"
    for folder, n in (("seized-1", 3), ("seized-2", 2)):
        (evidence / folder).mkdir(parents=True)
        for k in range(n):
            (evidence / folder / f"p{k}.jpg").write_bytes(b"x")
    case = tmp_path / "case"
    (case / "B1").mkdir(parents=True)
    (case / "A1").symlink_to(evidence / "seized-1", target_is_directory=True)  # a linked camera folder
    for k in range(2):  # a camera folder of linked files
        (case / "B1" / f"b{k}.jpg").symlink_to(evidence / "seized-2" / f"p{k}.jpg")
    (case / "B1" / "again.jpg").symlink_to(evidence / "seized-2" / "p0.jpg")  # the same photo by a second link
    (case / "A1" / "loop").symlink_to(case, target_is_directory=True)  # a link loop: reported, not followed forever
    with caplog.at_level("WARNING"):
        idx = read_folder(case)
    by_camera = {c: sorted(r.path.name for r in idx.records if r.camera == c) for c in ("A1", "B1")}
    assert by_camera == {"A1": ["p0.jpg", "p1.jpg", "p2.jpg"], "B1": ["again.jpg", "b1.jpg"]}, by_camera  # 1st name
    assert len(idx.records) == 5 and not idx.unmatched
    assert any("link loop" in r.getMessage() for r in caplog.records)
    assert any("b0.jpg is the same file as" in r.getMessage() for r in caplog.records)


def test_manifest_layout(tmp_path, folder_tree):
    rows = [
        (p.relative_to(folder_tree).as_posix(), p.parts[-3], p.parts[-2]) for p in sorted(folder_tree.rglob("*.jpg"))
    ]
    with (folder_tree / "list.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "device", "camera", "scene", "content"])
        w.writerows([(*r, f"s{i % 4}", "flat") for i, r in enumerate(rows)])
    idx = read_manifest(folder_tree, manifest="list.csv")
    assert len(idx.records) == len(rows)
    assert idx.records[0].scene == "s0" and idx.records[0].extra["content"] == "flat"
    assert idx.records[0].path.is_file()


def test_manifest_missing_columns(tmp_path):
    (tmp_path / "manifest.csv").write_text("file,label\na.jpg,x\n")
    with pytest.raises(SCIConfigError, match="lacks columns"):
        read_manifest(tmp_path)


@pytest.mark.parametrize(
    "cfg,setting",
    [
        ({"layout": "nope", "root": "."}, "data.layout"),
        ({"layout": "folder", "root": "???"}, "data.root"),
        ({"layout": "folder", "root": "/does/not/exist"}, "data.root"),
    ],
)
def test_clear_errors(cfg, setting):
    with pytest.raises(SCIConfigError) as err:
        build_index(cfg)
    assert err.value.setting == setting and err.value.fix


def test_empty_root_is_a_clear_error(tmp_path):
    with pytest.raises(SCIConfigError, match="found no labelled images"):
        build_index({"layout": "folder", "root": str(tmp_path)})


def test_unmatched_files_are_logged(miche_tree, caplog):
    build_index(preset("miche", miche_tree))
    assert "thumbnail_001.jpg" in caplog.text and "1 image files" in caplog.text


@pytest.mark.skipif(not VISION3.exists(), reason="shared/realdata/vision-3 not present")
def test_vision3_manifest():
    idx = read_manifest(VISION3)
    assert len(idx.records) == 39 and all(r.path.is_file() for r in idx.records)
    assert class_names(idx.records, "camera") == ["D08", "D09", "D21"]


def test_regex_relpath_matching(tmp_path):
    for cam in ("c1", "c2"):
        (tmp_path / "phoneA" / cam).mkdir(parents=True)
        (tmp_path / "phoneA" / cam / "x.jpg").write_bytes(b"")
    idx = read_regex(
        tmp_path,
        pattern=r"(?P<device>[^/]+)/(?P<cam>[^/]+)/.*\.jpg",
        match_on="relpath",
        fields={"device": "{device}", "camera": "{device}-{cam}"},
        case="keep",
    )
    assert sorted(r.camera for r in idx.records) == ["phoneA-c1", "phoneA-c2"]


def _vision_tree(root: Path) -> Path:
    """VISION's layout: Dxx_Brand_Model/images/{flat,nat,natWA,natFBH,natFBL}/Dxx_I_<folder>_NNNN.jpg."""
    for dev in ("D01_Samsung_GalaxyS3Mini", "D02_Apple_iPhone4s", "D10_Apple_iPhone4s"):
        for folder in ("flat", "nat", "natWA", "natFBH", "natFBL"):
            d = root / dev / "images" / folder
            d.mkdir(parents=True)
            for i in range(2):
                f = d / f"{dev[:3]}_I_{folder}_{i:04d}.jpg"
                Image.new("RGB", (64, 48), (i * 40, 80, 120)).save(f)
    (root / "D01_Samsung_GalaxyS3Mini" / "videos").mkdir()
    return root


@pytest.mark.parametrize("questioned", ["nat", "natWA", "natFBH", "natFBL"])
def test_vision_preset_flat_references_and_any_questioned_folder(tmp_path, questioned):
    root = _vision_tree(tmp_path / "VISION")
    over = ["data=vision", f"data.root={root}"] + ([f"data.questioned={questioned}"] if questioned != "nat" else [])
    cfg = compose_config("evaluate", *over, run_dir=tmp_path / "run")
    records, unmatched = indexed_records(OmegaConf.to_container(cfg.data, resolve=True))
    assert sorted({r.camera for r in records}) == ["D01", "D02", "D10"]
    assert sorted({r.device for r in records}) == ["Apple_iPhone4s", "Samsung_GalaxyS3Mini"]  # two units of one model
    sides = {(r.extra["content"], r.extra["side"]) for r in records}
    assert sides == {("flat", "reference"), (questioned, "questioned")}
    assert len(records) == 3 * 2 * 2 and unmatched == 3 * 3 * 2  # the other three folders are left unmatched
