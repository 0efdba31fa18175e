"""Blind source clustering (library.py action=cluster) on virtual cameras: units of one model, each photographing
its own scenes; one view shared pixel-aligned by several units; turned, dark, unreadable and copied photos."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.fft
from PIL import Image

from sci_lightning.clustering.action import ClusterJob, cluster, cluster_action
from sci_lightning.clustering.pairs import grid_planes, spectrum, zero_shift_pce
from sci_lightning.clustering.photos import Photo
from sci_lightning.clustering.settings import ClusterSettings
from sci_lightning.clustering.signatures import row_signature, signature, turn_exact, turn_scores
from sci_lightning.data.synthetic.generate import SyntheticSettings, generate
from sci_lightning.errors import SCIConfigError
from sci_lightning.fingerprint.significance import grid_pce

from conftest import compose_config, run_entry

pytestmark = pytest.mark.xdist_group("clustering")  # one worker: each virtual set below is photographed once

RESIDUAL = {"sigma": 5.0, "levels": 4, "wavelet": "db4", "grey_first": True}
UNITS = 3
PER_UNIT = 6


def _job(images: Path, out: Path, **settings) -> ClusterJob:
    s = ClusterSettings(**{"truth": "parent", **settings})
    return ClusterJob(s, RESIDUAL, str(images), (".jpg", ".png"), out, None, "single", 1)


def _units(root: Path, shared: bool) -> Path:
    s = SyntheticSettings(
        profile="units_of_one_model", images_per_camera=PER_UNIT, image_size=512, units=UNITS, shared_scenes=shared
    )
    return generate(root, s, workers=2) / "SYN-U"


@pytest.fixture(scope="module")
def own_scenes(tmp_path_factory) -> Path:
    return _units(tmp_path_factory.mktemp("own"), shared=False)


@pytest.fixture(scope="module")
def shared_scenes(tmp_path_factory) -> Path:
    return _units(tmp_path_factory.mktemp("shared"), shared=True)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_units_of_one_model_are_told_apart_with_no_false_link(own_scenes, tmp_path):
    m = cluster_action(_job(own_scenes, tmp_path))
    assert m["cluster/ari"] == 1.0 and m["cluster/pair_precision"] == 1.0 and m["n_clusters"] == UNITS
    rows = _rows(tmp_path / "clusters.csv")
    assert list(rows[0]) == ["path", "cluster", "size_px", "n_in_cluster", "links", "confidence"]
    by_cluster: dict[str, set[str]] = {}
    for r in rows:
        by_cluster.setdefault(r["cluster"], set()).add(Path(r["path"]).parent.name)
        assert r["size_px"] == "512x512" and int(r["n_in_cluster"]) == PER_UNIT and float(r["confidence"]) > 2
    assert all(len(units) == 1 for units in by_cluster.values())  # each cluster one unit
    pairs = _rows(tmp_path / "pairs.csv")
    assert list(pairs[0]) == ["a", "b", "pce", "geometry", "log10_p_false_alarm"]
    assert len(pairs) == UNITS * PER_UNIT * (UNITS * PER_UNIT - 1) // 2  # every pair of one size verified
    cross = [p for p in pairs if Path(p["a"]).parent != Path(p["b"]).parent]
    assert max(float(p["pce"]) for p in cross) < m["bar_pce"]  # the run's bar sits above every impostor pair
    assert m["expected_false_links"] == 0.01 and m["null_decoys"] == len(pairs)
    report = (tmp_path / "cluster_report.html").read_text()
    assert "Cluster 3: 6 photos" in report and "expected number of false links" in report
    assert "data:image/jpeg;base64," in report and "data:image/png;base64," in report  # thumbnails, matrix


def test_one_view_shared_pixel_aligned_by_several_units_links_none_of_them(shared_scenes, tmp_path):
    result = cluster(_job(shared_scenes, tmp_path))
    aligned = [p for p in result.pairs if "one view pixel-aligned" in p.geometry]
    assert len(aligned) == PER_UNIT * UNITS * (UNITS - 1) // 2  # each scene, each pair of units
    assert all(not p.linked and Path(p.a).name == Path(p.b).name for p in aligned)
    assert min(p.pce for p in aligned) > 1000  # the scene residue: far above any bar
    labels = {r.path: r.cluster for r in result.rows}
    for p in result.linked:
        assert Path(p.a).parent == Path(p.b).parent
    clusters = {}
    for path, c in labels.items():
        if c is not None:
            clusters.setdefault(c, set()).add(Path(path).parent.name)
    assert clusters and all(len(units) == 1 for units in clusters.values())


def _copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_turned_dark_unreadable_and_copied_photos(own_scenes, tmp_path):
    root = _copy_tree(own_scenes, tmp_path / "case")
    unit = sorted(root.iterdir())[0]
    shots = sorted(unit.glob("*.jpg"))
    with Image.open(shots[0]) as img:  # a photo taken turned: the original is not in the folder
        img.transpose(Image.Transpose.ROTATE_90).save(unit / "turned.jpg", quality=97)
    with Image.open(shots[1]) as img:  # a photo taken in the dark
        Image.fromarray((np.asarray(img.convert("RGB"), np.float32) * 0.01).astype(np.uint8)).save(unit / "dark.png")
    shots[0].unlink()
    shots[1].unlink()
    (unit / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a photo")
    other = sorted(root.iterdir())[1]
    shutil.copy(sorted(other.glob("*.jpg"))[0], other / "copy.jpg")
    result = cluster(_job(root, tmp_path / "out"))
    rows = {Path(r.path).name: r for r in result.rows if Path(r.path).parent == unit}
    turned = rows["turned.jpg"]
    mates = [r for r in result.rows if Path(r.path).parent == unit and r.cluster is not None]
    assert turned.cluster is not None and turned.cluster == mates[0].cluster
    assert any("turned" in p.geometry and p.linked and "turned.jpg" in p.a + p.b for p in result.pairs)
    assert rows["dark.png"].cluster is None and "too dark or saturated" in rows["dark.png"].reason
    assert rows["broken.jpg"].cluster is None and rows["broken.jpg"].reason.startswith("unreadable")
    copies = [p for p in result.pairs if "copies of one photo" in p.geometry]
    assert len(copies) == 1 and copies[0].linked


def test_a_folder_of_one_photo_of_nothing_readable_and_of_one_camera(own_scenes, tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(next(own_scenes.rglob("*.jpg")), one / "a.jpg")
    r = cluster(_job(one, tmp_path / "o1"))
    assert r.n_clusters == 0 and r.rows[0].reason.startswith("no other photo")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"nothing")
    r = cluster(_job(bad, tmp_path / "o2"))
    assert r.n_clusters == 0 and r.left and r.rows[0].reason.startswith("unreadable")
    cam = sorted(own_scenes.iterdir())[0]
    m = cluster_action(_job(cam, tmp_path / "o3", truth=None))
    assert m["n_clusters"] == 1 and m["n_alone"] == 0 and "cluster/ari" not in m
    with pytest.raises(SCIConfigError, match="images"):
        cluster(_job(tmp_path / "missing", tmp_path / "o4"))


def test_zero_shift_pce_is_the_grid_pce_of_the_whole_plane():
    rng = np.random.default_rng(3)
    k = rng.standard_normal((128, 128)).astype(np.float32)
    a, b = k + 4 * rng.standard_normal(k.shape), k + 4 * rng.standard_normal(k.shape)
    fa, fb = spectrum(a), spectrum(b)
    plane = scipy.fft.irfft2(fa * np.conj(fb), s=(128, 128))
    assert zero_shift_pce(grid_planes(fa, fb[None], 128))[0] == pytest.approx(grid_pce(plane, (0, 0)), rel=1e-4)


@pytest.mark.parametrize("side", [64, 120])
def test_grid_planes_are_the_whole_planes_at_multiples_of_8(side):
    rng = np.random.default_rng(side)
    fa = spectrum(rng.standard_normal((side, side)))
    fb = np.stack([spectrum(rng.standard_normal((side, side))) for _ in range(3)])
    whole = np.stack([scipy.fft.irfft2(fa * np.conj(f), s=(side, side))[::8, ::8] for f in fb])
    np.testing.assert_allclose(grid_planes(fa, fb, side), whole, atol=1e-5 * np.abs(whole).max())
    paired = grid_planes(fb[[2, 0]], fb[[1, 2]], side)  # several spectra, each with its own partner
    np.testing.assert_allclose(paired[1], grid_planes(fb[0], fb[2][None], side)[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("exact", [True, False])
def test_turn_scores_are_the_dot_products_with_each_turn(exact):
    rng = np.random.default_rng(int(exact))
    xs, ys = rng.standard_normal((3, 40, 40)), rng.standard_normal((5, 40, 40))

    def plain(x):
        return row_signature(signature(lambda k: x, 32, exact=False)).astype(np.float64)

    rows = np.stack([row_signature(signature(lambda k, x=x: np.rot90(x, k), 32, exact)) for x in xs])
    cols = np.stack([signature(lambda k, y=y: np.rot90(y, k), 32, exact) for y in ys])
    want = np.array([[[plain(x) @ plain(np.rot90(y, k)) for y in ys] for x in xs] for k in range(4)])
    np.testing.assert_allclose(turn_scores(rows, cols), want, atol=2e-3)  # float16 signatures
    assert turn_exact((512, 384), 256) and not turn_exact((513, 384), 256)


@pytest.mark.parametrize("size", [(101, 130), (100, 131), (90, 90), (97, 64)])
def test_each_turn_of_a_photo_gives_the_central_square_of_that_turned_photo(size):
    x = np.random.default_rng(0).standard_normal(size).astype(np.float32)
    side = (min(size) - 1) // 8 * 8
    y0, x0 = (size[0] - side) // 2, (size[1] - side) // 2
    patch = x[y0 : y0 + side + 1, x0 : x0 + side + 1]
    photo = Photo("x", size, side, patch, patch, 0.0)
    for k in range(4):
        t = np.rot90(x, k)
        r, c = (t.shape[0] - side) // 2, (t.shape[1] - side) // 2
        assert np.array_equal(photo.turned(k)[0], t[r : r + side, c : c + side])


def test_cluster_settings_compose_and_errors_name_the_setting(tmp_path):
    cfg = compose_config("library", "action=cluster", "images=x", "cluster.side=512", run_dir=tmp_path)
    assert cfg.cluster.side == 512 and cfg.cluster.false_links == 0.01
    with pytest.raises(SCIConfigError, match="cluster.side"):
        ClusterSettings(side=100)
    r = run_entry("library.py", "action=cluster", "logger=none", run_dir=tmp_path / "cli")
    assert r.returncode == 2 and "images" in r.stderr


def test_a_cluster_becomes_a_camera_of_the_library(own_scenes, tmp_path):
    from sci_lightning.run import library as library_entry

    def library(run: str, *overrides: str):
        cfg = compose_config(
            "library", f"library.path={tmp_path / 'lib'}", "logger=none", *overrides, run_dir=tmp_path / run
        )
        return library_entry.run(cfg)

    library("cluster", "action=cluster", f"images={own_scenes}", "library.scheduler=single")
    rows = _rows(tmp_path / "cluster" / "clusters.csv")
    members = sorted(r["path"] for r in rows if r["cluster"] == "1")
    csv_path = f"cluster.csv={tmp_path / 'cluster' / 'clusters.csv'}"
    m = library("enrol", "action=enrol", csv_path, "cluster.id=1", "library.camera=found-1", "library.scheduler=single")
    assert m["enrolled"] == ["found-1"]
    shown = library("show", "action=show", "library.camera=found-1")
    assert sorted(p for p, _ in shown["photos"]) == members
    with pytest.raises(SCIConfigError, match="cluster.id"):
        library("enrol2", "action=enrol", csv_path, "cluster.id=99", "library.camera=x", "library.scheduler=single")
    with pytest.raises(SCIConfigError, match="cluster.id"):
        library("enrol3", "action=enrol", csv_path, "library.camera=x")


def test_a_small_memory_budget_compares_the_same_pairs_in_more_blocks(own_scenes, tmp_path):
    from sci_lightning.clustering.compare import compare_pairs
    from sci_lightning.clustering.photos import load_photo
    from sci_lightning.fingerprint.residuals import ResidualStore

    store = ResidualStore(None, RESIDUAL)
    photos = [load_photo(str(p), store, 1024, 256) for p in sorted(own_scenes.rglob("*.jpg"))[:8]]
    whole, _ = compare_pairs(photos, ClusterSettings())
    blocks, samples = compare_pairs(photos, ClusterSettings(memory_gb=1e-4))  # one photo's spectra per block
    assert blocks == whole and samples.hypotheses == 4 * len(whole)


def _noise_photo(name: str, w: np.ndarray, side: int) -> Photo:
    y0, x0 = (w.shape[0] - side) // 2, (w.shape[1] - side) // 2
    patch = w[y0 : y0 + side + 1, x0 : x0 + side + 1]
    return Photo(name, w.shape, side, patch.astype(np.float16), np.full(patch.shape, 128, np.uint8), 0.0)


@pytest.mark.parametrize("h", [240, 241])  # even: one signature serves every turn; odd: one signature per turn
def test_the_shortlist_screens_every_hypothesis_and_finds_a_planted_turned_pair(h):
    from sci_lightning.clustering.compare import hypotheses_of
    from sci_lightning.clustering.shortlist import candidates

    rng = np.random.default_rng(3)
    k = rng.normal(size=(h, 320)).astype(np.float32)  # one sensor's pattern, in two photos (one turned)
    shapes = [(h, 320), (320, h), (h, 320), (200, 200), (200, 200), (h, 320), (200, 200)]
    ws = [rng.normal(size=shape).astype(np.float32) for shape in shapes]
    ws[0] = ws[0] + 0.3 * k
    ws[1] = ws[1] + 0.3 * np.rot90(k, 1)  # photo 1 turned back by 3 x 90 degrees lines up with photo 0
    photos = [_noise_photo(f"p{i}", w, 192) for i, w in enumerate(ws)]
    s = ClusterSettings(signature_side=128, candidates=1)
    found, screened = candidates(photos, s)
    every = {(a, b): hypotheses_of(photos[a], photos[b], True) for a in range(7) for b in range(a + 1, 7)}
    assert screened == sum(len(h) for h in every.values())  # the bar counts what the exhaustive run counts
    assert (0, 1, 3) in found
    assert all(k in every[(a, b)] for a, b, k in found)  # only comparable pairs, in turns they allow
    everything, _ = candidates(photos, ClusterSettings(signature_side=128, candidates=len(photos)))
    assert {(a, b) for a, b, _ in everything} == {p for p, h in every.items() if h}  # enough partners: all pairs


def test_the_shortlist_finds_the_clusters_every_pair_finds(own_scenes, tmp_path):
    every = cluster(_job(own_scenes, tmp_path / "all"))
    short = cluster(_job(own_scenes, tmp_path / "short", shortlist_from=2, candidates=2, decoys=20))
    assert [r.cluster for r in short.rows] == [r.cluster for r in every.rows]
    assert short.hypotheses == every.hypotheses  # every hypothesis screened counts for the bar
    assert short.shortlisted and not every.shortlisted


def test_average_linkage_over_compared_pairs_is_average_linkage_when_every_pair_is_compared():
    from sci_lightning.clustering.compare import Pair
    from sci_lightning.clustering.groups import average_linkage, sparse_average_linkage

    every = [Pair(a, b, 0.0, 0, 1) for a in range(12) for b in range(a + 1, 12)]
    body = np.repeat([0, 1], 6)  # two bodies of one model: every pair inside linked, 5 of the 36 between them
    cross = [p for p in every if body[p.a] != body[p.b]][::7]
    linked = [p for p in every if body[p.a] == body[p.b]] + cross
    two = {frozenset(range(6)), frozenset(range(6, 12))}
    assert _partition(average_linkage(12, linked, 0.5)) == two
    assert _partition(sparse_average_linkage(12, every, linked, 0.5)) == two
    rng = np.random.default_rng(5)
    for _ in range(10):  # cameras whose photos link often, never across: the same groups
        truth = rng.integers(0, 4, size=14)
        pairs = [Pair(a, b, 0.0, 0, 1) for a in range(14) for b in range(a + 1, 14)]
        links = [p for p in pairs if truth[p.a] == truth[p.b] and rng.random() < 0.95]
        assert _partition(average_linkage(14, links, 0.5)) == _partition(sparse_average_linkage(14, pairs, links, 0.5))
    # a pair not compared is unknown: two groups linked wherever compared merge
    few = [Pair(0, 1, 0.0, 0, 1), Pair(2, 3, 0.0, 0, 1), Pair(1, 2, 0.0, 0, 1)]
    assert _partition(sparse_average_linkage(4, few, few, 0.5)) == {frozenset(range(4))}
    assert len(_partition(average_linkage(4, few, 0.5))) == 2  # there, the pairs not compared count against


def _partition(labels) -> set[frozenset[int]]:
    return {frozenset(int(i) for i in np.flatnonzero(labels == c)) for c in np.unique(labels)}


def _planted(rng: np.random.Generator, shape: tuple[int, int], turns: list[int]) -> list[Photo]:
    """Noise photos of one sensor, photo ``i`` stored turned back by ``turns[i]`` (so turned ``turns[i]`` it lines
    up with the sensor)."""
    k = rng.normal(size=shape).astype(np.float32)
    return [
        _noise_photo(f"p{i}", np.rot90(k, -t) * 0.5 + rng.normal(size=np.rot90(k, -t).shape), 96)
        for i, t in enumerate(turns)
    ]


def test_pairs_verified_with_kept_spectra_are_those_made_afresh():
    from sci_lightning.clustering.shortlist import verify

    rng = np.random.default_rng(5)
    photos = _planted(rng, (120, 120), [0, 1, 2, 3, 0, 1])
    wanted = [(a, b, (t - s) % 4) for a, s in enumerate([0, 1, 2, 3, 0, 1]) for b, t in enumerate([0, 1, 2, 3, 0, 1])]
    wanted = [(a, b, k) for a, b, k in wanted if a < b] + [(0, 5, 0)]  # (0, 5, 0): a wrong turn, no match
    kept = verify(photos, wanted, ClusterSettings())
    evicted = verify(photos, wanted, ClusterSettings(memory_gb=1e-6))  # two spectra kept at a time
    assert kept == evicted and [(p.a, p.b, p.turn) for p in kept] == sorted(set(wanted))
    for p in kept:
        plane = grid_planes(spectrum(photos[p.a].turned(0)[0]), spectrum(photos[p.b].turned(p.turn)[0])[None], 96)
        assert p.pce == pytest.approx(float(zero_shift_pce(plane)[0]), rel=1e-4)
        assert (p.pce > 100) == ((p.a, p.b, p.turn) != (0, 5, 0))


@pytest.mark.parametrize("shape", [(120, 120), (121, 121)])  # even: the fingerprint turned; odd: the photo
def test_a_lone_photo_is_compared_with_a_cluster_fingerprint_in_each_turn(shape):
    from sci_lightning.clustering.compare import NullSamples
    from sci_lightning.clustering.groups import cluster_fingerprint
    from sci_lightning.clustering.matching import Memo, _weighted, match_alone

    rng = np.random.default_rng(6)
    turns = [0, 0, 1, 3]  # photos 0-2 make the cluster, photo 3 (turned) is alone
    photos = _planted(rng, shape, turns)
    memo, samples, s = Memo(), NullSamples(), ClusterSettings()
    members = {0: 0, 1: 0, 2: 1}
    p = memo.made(tuple(sorted(members.items())), lambda: cluster_fingerprint(photos, members), s.signature_side)
    got = match_alone(photos, [3], {7: p}, s, samples, memo, {p.id})[3]
    assert got[0][1:] == (7, 3)  # photo 3 turned 3 lines up with the cluster's frame (photo 0's)
    for k in range(4):
        x = _weighted(photos[3], k)
        direct = zero_shift_pce(grid_planes(p.fk[0], np.stack([spectrum(x), spectrum(np.fliplr(x))]), 96))
        assert direct[0] > 100 if k == 3 else direct[0] < 30
    x = _weighted(photos[3], 3)
    assert got[0][0] == pytest.approx(float(zero_shift_pce(grid_planes(p.fk[0], spectrum(x)[None], 96))[0]), rel=1e-4)
    assert samples.hypotheses == 4 and len(samples.zero) == 4  # each turn with its mirrored decoy


def test_the_shifted_tail_of_many_planes_is_their_plane_tails_pooled():
    from sci_lightning.clustering.pairs import shifted_tail
    from sci_lightning.fingerprint.null import Tail, plane_tail

    planes = np.random.default_rng(7).standard_normal((5, 32, 32)).astype(np.float32)
    planes[:, 0, 0] = 40  # the zero shift (the pair's own statistic) is left out of its null
    want = Tail.pooled([plane_tail(np.array(p), period=1, exclude=(0, 0), window=1) for p in planes])
    got = shifted_tail(planes)
    assert got.n == want.n == 5 * (32 * 32 - 1)
    np.testing.assert_allclose(got.values, want.values, rtol=1e-5)
    assert got.values[0] < 20  # no 40^2 / energy value from the zero shift


def test_a_large_photo_is_denoised_in_a_window_around_the_compared_square(tmp_path):
    from sci_lightning.clustering.photos import MARGIN, denoised_box, load_photo
    from sci_lightning.data.images import load_rgb
    from sci_lightning.fingerprint.core import crop_center, noise_residual
    from sci_lightning.fingerprint.residuals import ResidualStore

    rng = np.random.default_rng(8)
    path = tmp_path / "big.png"
    Image.fromarray(rng.integers(0, 255, (481, 640, 3), dtype=np.uint8)).save(path)
    store = ResidualStore(tmp_path / "cache", RESIDUAL)
    photo = load_photo(str(path), store, 128, 64)
    top, left, bottom, right = denoised_box((481, 640), 128)
    assert (bottom - top, right - left) == (128 + 2 + 2 * MARGIN,) * 2
    window = crop_center(load_rgb(path), bottom - top, right - left)  # the store's centred crop of that size
    w = noise_residual(window, **RESIDUAL)
    y0, x0 = (481 - 128) // 2 - top, (640 - 128) // 2 - left
    assert photo.size == (481, 640) and photo.side == 128
    np.testing.assert_array_equal(photo.w, w[y0 : y0 + 129, x0 : x0 + 129].astype(np.float16))
    assert [f.name.endswith(f"-{bottom - top}x{right - left}.npz") for f in store.folder.iterdir()] == [True]
    large = load_photo(str(path), store, 1024, 64)  # the square as large as fits: the window is the photo's height
    assert large.side == 480 and denoised_box((481, 640), 1024) == (0, 15, 481, 625)
