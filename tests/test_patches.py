import numpy as np
import pytest
from PIL import Image

from sci_lightning.data.images import SkippedImage, load_rgb
from sci_lightning.data.patches import extract_patches, grid_cells, quality_scores
from sci_lightning.errors import SCIConfigError


def ramp(h, w):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([y % 256, x % 256, (y + x) % 256], axis=2).astype(np.uint8)


def test_paper_grid_is_centred_16x16_of_32():
    img = ramp(600, 800)
    patches, pos = extract_patches(img, 32, 256, "grid")
    assert patches.shape == (256, 32, 32, 3)
    ys, xs = np.unique(pos[:, 0]), np.unique(pos[:, 1])
    assert len(ys) == len(xs) == 16 and np.all(np.diff(ys) == 32) and np.all(np.diff(xs) == 32)
    # centred within the even-aligned full grid
    rows, cols, oy, ox = grid_cells(600, 800, 32)
    assert ys[0] == oy + (rows - 16) // 2 * 32 and xs[0] == ox + (cols - 16) // 2 * 32
    assert np.all(pos % 2 == 0)  # every patch starts on the same CFA phase
    y, x = pos[17]
    assert np.array_equal(patches[17], img[y : y + 32, x : x + 32])  # content is exactly that window


def test_small_image_gives_all_cells():
    patches, pos = extract_patches(ramp(100, 70), 32, 256, "grid")
    assert len(patches) == 3 * 2
    assert extract_patches(ramp(20, 20), 32, 256, "grid")[0].shape == (0, 32, 32, 3)


def test_non_square_count_and_size_option():
    patches, _ = extract_patches(ramp(512, 512), 16, 10, "grid")
    assert patches.shape == (10, 16, 16, 3)


def test_random_selection_is_repeatable_and_keyed():
    img = ramp(640, 640)
    a = extract_patches(img, 32, 50, "random", seed=3, key="a.jpg")[1]
    b = extract_patches(img, 32, 50, "random", seed=3, key="a.jpg")[1]
    c = extract_patches(img, 32, 50, "random", seed=3, key="b.jpg")[1]
    assert np.array_equal(a, b) and not np.array_equal(a, c) and len(np.unique(a, axis=0)) == 50


def test_quality_prefers_textured_midtones():
    rng = np.random.default_rng(0)
    img = np.zeros((64, 128, 3), np.uint8)  # left half black (score ~0), right half textured grey
    img[:, 64:] = np.clip(128 + rng.normal(0, 30, (64, 64, 3)), 0, 255)
    _, pos = extract_patches(img, 32, 4, "quality")
    assert set(pos[:, 1]) == {64, 96}
    s = quality_scores(np.stack([np.zeros((32, 32, 3), np.uint8), np.full((32, 32, 3), 255, np.uint8)]))
    assert np.allclose(s, 0)


@pytest.mark.parametrize("cfg", [dict(selection="best"), dict(size=31), dict(per_image=0)])
def test_bad_patch_settings(cfg):
    with pytest.raises(SCIConfigError):
        extract_patches(ramp(64, 64), **{"size": 32, "per_image": 4, "selection": "grid", **cfg})


def test_exif_orientation_is_not_applied(tmp_path):
    arr = ramp(40, 80)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(arr).save(tmp_path / "r.png", exif=exif)
    out = load_rgb(tmp_path / "r.png")
    assert out.shape == (40, 80, 3) and np.array_equal(out, arr)


def test_modes_are_converted(tmp_path):
    Image.fromarray(np.full((40, 40), 65535, np.uint16)).save(tmp_path / "g16.png")
    Image.fromarray(np.zeros((40, 40, 4), np.uint8)).save(tmp_path / "rgba.png")
    Image.fromarray(np.full((40, 40), 7, np.uint8)).save(tmp_path / "grey.jpg")
    assert load_rgb(tmp_path / "g16.png").max() == 255
    assert load_rgb(tmp_path / "rgba.png").shape == (40, 40, 3)
    assert load_rgb(tmp_path / "grey.jpg").shape == (40, 40, 3)


def test_bad_files_raise_skipped_with_reason(tmp_path):
    good = tmp_path / "ok.jpg"
    Image.fromarray(ramp(64, 64)).save(good)
    (tmp_path / "trunc.jpg").write_bytes(good.read_bytes()[:300])
    (tmp_path / "text.jpg").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    Image.fromarray(ramp(16, 16)).save(tmp_path / "tiny.jpg")
    reasons = {}
    for name in ("trunc.jpg", "text.jpg", "empty.jpg", "tiny.jpg", "missing.jpg"):
        with pytest.raises(SkippedImage) as err:
            load_rgb(tmp_path / name, min_size=32)
        reasons[name] = str(err.value)
    assert "too small" in reasons["tiny.jpg"] and "not found" in reasons["missing.jpg"]
    assert all(reasons.values())


@pytest.mark.parametrize("h,w,n", [(600, 800, 256), (100, 130, 256), (700, 900, 200), (64, 64, 4), (33, 90, 256)])
def test_grid_from_a_cropped_decode_equals_the_whole_image(tmp_path, h, w, n):
    """patches_from_file converts only the grid's box: same patches and positions as cutting the whole image."""
    from sci_lightning.data.patches import patches_from_file

    arr = np.random.default_rng(h * w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "x.png")
    whole, pos = extract_patches(load_rgb(tmp_path / "x.png"), 32, n, "grid")
    cropped, pos2, full = patches_from_file(str(tmp_path / "x.png"), 32, n, "grid")
    assert full == (h, w) and np.array_equal(whole, cropped) and np.array_equal(pos, pos2)
