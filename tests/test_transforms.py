"""``eval.transform`` copies and HEIC input: deterministic, what they say they are, and read like any photo."""

import csv
import os

import numpy as np
import pytest
from PIL import Image

from sci_lightning.data.images import SkippedImage, load_rgb
from sci_lightning.data.transforms import TRANSFORMS, apply, check_name, transform_paths
from sci_lightning.errors import SCIConfigError


def _photo(h: int = 240, w: int = 320, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "name, shape",
    [
        ("none", (240, 320)),
        ("rot90", (320, 240)),
        ("rot180", (240, 320)),
        ("rot270", (320, 240)),
        ("mirror", (240, 320)),
        ("crop60", (144, 192)),
        ("scale50", (120, 160)),
        ("social1600", (240, 320)),  # already smaller than 1600 px: re-encoded only
        ("cropscale", (101, 134)),
    ],
)
def test_each_transform_gives_the_documented_geometry(name, shape):
    img = _photo()
    out, applied = apply(img, name, digest="0f" * 32, seed=1)
    assert out.shape[:2] == shape and out.dtype == np.uint8
    if name == "rot90":
        assert np.array_equal(out, np.rot90(img))  # lossless, counter-clockwise
    if name in ("crop60", "cropscale"):
        h, w = 144, 192
        cy, cx = (240 - h) // 2, (320 - w) // 2
        assert (applied.offset_y, applied.offset_x) != (cy, cx)  # off-centre
        assert 0 <= applied.offset_y <= 240 - h and 0 <= applied.offset_x <= 320 - w
    again, same = apply(img, name, digest="0f" * 32, seed=1)
    assert np.array_equal(again, out) and same == applied  # deterministic


def test_social1600_keeps_the_aspect_ratio_of_a_large_photo():
    out, applied = apply(_photo(1200, 2000), "social1600")
    assert out.shape[:2] == (960, 1600) and applied.scale == pytest.approx(0.8)


def test_crop_offsets_depend_on_the_photo_and_the_seed():
    img = _photo()
    runs = [apply(img, "crop60", digest=d, seed=s)[1] for d in ("aa" * 32, "bb" * 32) for s in (0, 1)]
    offsets = {(a.offset_y, a.offset_x) for a in runs}
    assert len(offsets) > 1


def test_unknown_transform_names_the_setting():
    assert check_name("rot90") == "rot90"
    with pytest.raises(SCIConfigError, match="eval.transform"):
        check_name("rot45")
    assert "none" in TRANSFORMS


def test_transformed_copies_are_written_once_with_their_truth(tmp_path):
    src = tmp_path / "photo.jpg"
    Image.fromarray(_photo()).save(src, quality=95)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    cache = tmp_path / "cache"
    mapping = transform_paths([str(src), str(bad)], "crop60", cache, seed=0)
    copy = mapping[str(src)]
    assert copy != str(src) and copy.endswith(".jpg") and load_rgb(copy).shape[:2] == (144, 192)
    assert mapping[str(bad)] == str(bad)  # unreadable: left for the scorer to skip with its reason
    rows = list(csv.DictReader(open(next(cache.rglob("transforms.csv")))))
    assert rows[0]["source"] == str(src) and int(rows[0]["offset_y"]) >= 0
    mtime = os.stat(copy).st_mtime_ns
    assert transform_paths([str(src)], "crop60", cache, seed=0)[str(src)] == copy
    assert os.stat(copy).st_mtime_ns == mtime  # reused, not rewritten
    assert transform_paths([str(src)], "none", cache, seed=0) == {str(src): str(src)}


def test_heic_photos_are_read_like_jpegs(tmp_path):
    img = _photo(64, 96)
    path = tmp_path / "IMG_0001.HEIC"
    Image.fromarray(img).save(path, format="HEIF", quality=95)
    out = load_rgb(path)
    assert out.shape == (64, 96, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img.astype(int)).mean() < 60  # decoded (lossy), not garbage
    broken = tmp_path / "broken.heic"
    broken.write_bytes(path.read_bytes()[:200])
    with pytest.raises(SkippedImage):
        load_rgb(broken)
