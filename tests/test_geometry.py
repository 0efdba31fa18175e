"""The geometry search: turned, mirrored, cropped and resized photos are found where they came from, impostors are
not, and the false-alarm probability is the one the formula gives."""

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.stats import norm

from sci_lightning.data.transforms import apply
from sci_lightning.fingerprint.core import estimate_fingerprint, grey_of, noise_residual
from sci_lightning.fingerprint.geometry import GeometrySettings, Query, Spectra, orient_to_photo, orient_to_sensor
from sci_lightning.fingerprint.scoring import Search, score_residual
from sci_lightning.fingerprint.search import search_photo
from sci_lightning.fingerprint.significance import false_alarm, log10_false_alarm, pce_bar

H, W = 320, 400  # not square: a turn by 90 degrees changes the shape, as on a phone


def scene(seed: int) -> np.ndarray:  # questioned photos use seeds >= 500: scenes no reference shows
    r = np.random.default_rng(seed)
    return np.clip(gaussian_filter(r.uniform(40, 220, (H, W, 3)), (6, 6, 0)), 0, 255)


def shoot(k: np.ndarray, seed: int) -> np.ndarray:
    r = np.random.default_rng(seed + 1000)
    img = scene(seed) * (1 + k[..., None]) + r.normal(0, 2.0, (H, W, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def cameras():
    rng = np.random.default_rng(1)
    ks = {name: rng.normal(0, 0.015, (H, W)).astype(np.float32) for name in ("A", "B", "C")}
    fps = {
        name: estimate_fingerprint([shoot(k, 100 * i + j) for j in range(10)]) for i, (name, k) in enumerate(ks.items())
    }
    return ks, fps


def query(img: np.ndarray) -> Query:
    return Query(noise_residual(img), grey_of(img))


def test_false_alarm_matches_the_formula_and_survives_underflow():
    for pce, n in [(4.0, 1), (25.0, 1000), (40.0, 10**7), (-3.0, 5)]:
        x = math.copysign(math.sqrt(abs(pce)), pce)
        exact = 1 - (1 - norm.sf(x)) ** n
        assert false_alarm(pce, n) == pytest.approx(exact, rel=1e-6)
    # a true match in a 12 MP crop search: the tail underflows a float, its logarithm does not
    assert log10_false_alarm(3000.0, 10**7) < -600
    assert log10_false_alarm(50.0, 10) < log10_false_alarm(50.0, 10**6)  # the more searched, the less it means
    for alpha, n in [(1e-4, 1), (1e-4, 10**6), (0.05, 3)]:
        assert false_alarm(pce_bar(alpha, n), n) == pytest.approx(alpha, rel=1e-6)
    assert pce_bar(1e-4, 10**7) > pce_bar(1e-4, 100) > pce_bar(1e-4, 1)  # the bar follows the search


def test_orientation_round_trip():
    x = np.arange(12).reshape(3, 4)
    for r in (0, 90, 180, 270):
        for m in (False, True):
            assert np.array_equal(orient_to_sensor(orient_to_photo(x, r, m), r, m), x)


@pytest.mark.parametrize("name", ["rot90", "rot180", "rot270", "crop60", "scale50"])
def test_transformed_photo_is_found_with_its_transform(cameras, name):
    ks, fps = cameras
    img = shoot(ks["B"], 507)
    out, applied = apply(img, name, digest="ab" * 32, seed=3)
    found, n = search_photo(query(out), fps, GeometrySettings(name="full"), Spectra())
    best = max(found, key=lambda c: found[c].pce)
    m = found[best]
    assert best == "B", {c: f.pce for c, f in found.items()}
    assert m.rotation == applied.rotation
    assert log10_false_alarm(m.pce, n) < -6  # clears any sensible bar among everything searched
    if name == "crop60":
        assert m.kind == "crop" and m.offset == (applied.offset_y, applied.offset_x)  # exact offset
    if name == "scale50":
        assert m.kind == "resize" and m.scale == pytest.approx(0.5, rel=0.01)
    for other in ("A", "C"):  # impostors: nothing beyond chance among the positions searched
        assert log10_false_alarm(found[other].pce, n) > -3


def test_mirrored_photo_is_found_only_when_mirrors_are_searched(cameras):
    ks, fps = cameras
    out, _ = apply(shoot(ks["C"], 511), "mirror")
    plain, n = search_photo(query(out), fps, GeometrySettings(name="full"), Spectra())
    assert log10_false_alarm(plain["C"].pce, n) > -4  # mirrors not tried: not found
    mirrored, n = search_photo(query(out), fps, GeometrySettings(name="full", mirror=True), Spectra())
    assert mirrored["C"].mirror and log10_false_alarm(mirrored["C"].pce, n) < -6


def test_auto_scores_an_aligned_photo_exactly_as_without_a_search(cameras):
    ks, fps = cameras
    img = shoot(ks["A"], 521)
    w, grey = noise_residual(img), grey_of(img)
    plain = score_residual(w, grey, fps)
    auto = score_residual(w, grey, fps, search=Search(GeometrySettings(name="auto"), math.log10(1e-4)))
    assert auto["scores"] == plain["scores"]  # the fast path: the same numbers, nothing else searched
    assert auto["hypotheses"] == len(fps)
    assert auto["geometry"]["A"]["transform"] == "aligned"


def test_auto_searches_a_turned_photo_and_counts_every_hypothesis(cameras):
    ks, fps = cameras
    out, _ = apply(shoot(ks["A"], 522), "rot90")
    w, grey = noise_residual(out), grey_of(out)
    auto = score_residual(w, grey, fps, search=Search(GeometrySettings(name="auto"), math.log10(1e-4)), heat_block=32)
    g = auto["geometry"]["A"]
    assert (g["transform"], g["rotation"]) == ("whole", 90)
    assert auto["hypotheses"] >= len(fps)  # one turned whole frame per camera at least (auto stops once found)
    assert auto["heat_camera"] == "A" and auto["heat_origin"] == (0, 0)
    assert auto["heat_map"].shape == (out.shape[0] // 32, out.shape[1] // 32)  # drawn in the photo's own frame
    assert np.mean(auto["heat_map"]) > 0.05


def test_photo_too_small_to_search_is_compared_as_stored(cameras):
    ks, fps = cameras
    small = shoot(ks["A"], 505)[:40, :50]
    s = GeometrySettings(name="full", min_side=64)
    found, n = search_photo(query(small), fps, s, Spectra())
    assert found == {} and n == 0


def test_aligned_scores_are_bit_for_bit_those_of_pce_and_ncc(cameras):
    from sci_lightning.fingerprint.core import crop_center, ncc, pce

    ks, fps = cameras
    img = shoot(ks["C"], 530)[:300, :380]  # smaller than the fingerprints: the centred common area
    w, grey = noise_residual(img), grey_of(img)
    out = score_residual(w, grey, fps)
    for c, k in fps.items():
        ki = crop_center(k, 300, 380) * grey
        assert out["scores"][c] == (pce(ki, w)[0], ncc(ki, w))


def test_transform_found_says_when_a_photo_is_not_as_stored(cameras, tmp_path):
    """What the matcher's verdicts use to say that a same-size photo was turned (it compares as stored)."""
    from PIL import Image

    from sci_lightning.fingerprint.residuals import ResidualStore
    from sci_lightning.fingerprint.scoring import transform_found

    ks, fps = cameras
    img = shoot(ks["B"], 540)
    Image.fromarray(img).save(tmp_path / "as_stored.png")
    Image.fromarray(np.ascontiguousarray(np.rot90(img, 2))).save(tmp_path / "upside_down.png")
    store = ResidualStore(None, {"sigma": 5.0, "levels": 4, "wavelet": "db4", "grey_first": True})
    auto = Search(GeometrySettings(name="auto"), math.log10(1e-4))
    assert transform_found(str(tmp_path / "as_stored.png"), "B", fps["B"], store, auto) is None
    found = transform_found(str(tmp_path / "upside_down.png"), "B", fps["B"], store, auto)
    assert found["rotation"] == 180 and found["transform"] == "whole" and found["log10_p_false_alarm"] < -4


def test_scale_search_planes_of_a_turn_by_180_are_the_direct_correlation():
    # the coarse pass gets the upside-down block's plane from the unturned block's spectrum (no second FFT)
    from sci_lightning.fingerprint.scales import _planes

    rng = np.random.default_rng(5)
    frame, block = (48, 64), rng.normal(size=(12, 12)).astype(np.float32)
    k = rng.normal(size=frame).astype(np.float32)
    fk = np.fft.rfft2(k)
    planes = _planes(fk, block, frame, [(0, False), (180, False), (90, False), (270, False)])
    for rotation, plane in planes.items():
        pad = np.zeros(frame, np.float32)
        pad[:12, :12] = orient_to_sensor(block, *rotation)
        direct = np.fft.irfft2(fk * np.conj(np.fft.rfft2(pad)), s=frame)
        np.testing.assert_allclose(plane, direct, atol=1e-3)


@pytest.mark.parametrize("turn", ["cropscale", "rot180", "rot90"])
def test_auto_finds_a_crop_of_unknown_size_resized_and_names_no_impostor(cameras, turn):
    ks, fps = cameras
    img = shoot(ks["C"], 531)
    out, applied = apply(img, "cropscale", digest="cd" * 32, seed=2)
    rotation, rotations = 0, (0, 180)
    if turn == "rot180":
        out, rotation = np.ascontiguousarray(out[::-1, ::-1]), 180
    if turn == "rot90":  # the turned shape: the coarse pass's other window (the photo transposed in the frame)
        out, turned = apply(out, "rot90")
        rotation, rotations = turned.rotation, (0, 90, 180, 270)
    w, grey = noise_residual(out), grey_of(out)
    s = GeometrySettings(name="auto", scale_search=True, scale_rotations=rotations)
    found = score_residual(w, grey, fps, search=Search(s, math.log10(1e-4)))
    g = found["geometry"]["C"]
    assert g["rotation"] == rotation
    assert g["scale"] == pytest.approx(applied.scale, abs=0.01)
    assert g["log10_pfa"] < -6
    for other in ("A", "B"):
        assert found["geometry"][other]["log10_pfa"] > -3
    # without the scale search nothing clears: the photo is neither the whole frame resized nor a crop at scale 1
    plain = score_residual(
        w, grey, fps, search=Search(GeometrySettings(name="auto", scale_search=False), math.log10(1e-4))
    )
    assert plain["geometry"]["C"]["log10_pfa"] > -4


def test_the_coarse_window_holds_every_place_of_the_photo_and_no_other():
    # the coarse pass looks for the central square only where the whole photo fits around it (scales.py)
    from sci_lightning.fingerprint.scales import COARSE, _block_span

    rng = np.random.default_rng(7)
    for _ in range(200):
        frame = int(rng.integers(200, 2000))
        photo = int(rng.integers(64, 2 * frame))
        b = min(512, photo)
        sc = float(rng.uniform(photo / (COARSE * frame), 1.0)) if photo < COARSE * frame else 1.0
        side = int(round(b / (sc * COARSE)))
        if photo / (sc * COARSE) > frame or side > frame:
            continue
        lo, hi = _block_span(photo, b, sc, frame, side)
        before = (photo - b) / 2 / (sc * COARSE)
        for top in np.linspace(0, frame - photo / (sc * COARSE), 7):  # the photo's top edge, every place it fits
            assert lo <= round(top + before) <= hi
        assert hi - lo <= frame - photo / (sc * COARSE) + 4  # a strip as wide as the photo's room, not the frame
