"""Cameras' own size settings are found, the null a searched peak is judged against is measured on the photo's
decoys, fingerprints say how far they can be trusted, and every size of photo gets a verdict.

The virtual cameras here are enrolled the way the hidden real set was: three photos each of one textured chart
(every camera its own framing of it, as on its own tripod), so their fingerprints carry the chart's residue;
questioned photos are the cameras' own smaller size settings (resampled inside the camera, each side rounded to
its block) and photos of cameras that are not enrolled."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import scipy.fft
from PIL import Image

from sci_lightning.data.synthetic.camera import Sensor, VirtualCamera, photograph
from sci_lightning.data.synthetic.profiles import PIPE_A, PIPE_B, PIPE_C
from sci_lightning.data.synthetic.scene import SceneSettings, draw_scene, viewed
from sci_lightning.data.transforms import apply
from sci_lightning.fingerprint.core import estimate_fingerprint, grey_of, noise_residual
from sci_lightning.fingerprint.geometry import GeometrySettings, aspect_close
from sci_lightning.fingerprint.hypotheses import hypotheses
from sci_lightning.fingerprint.null import Tail, fit_null, plane_tail
from sci_lightning.fingerprint.quality import CLEAN_LEAK, fingerprint_quality, scene_laden
from sci_lightning.fingerprint.scoring import Search, score_residual
from sci_lightning.fingerprint.search import decoy_spectrum
from sci_lightning.fingerprint.significance import log10_false_alarm, photo_log10_pfa, sci
from sci_lightning.forensic import false_alarm
from sci_lightning.forensic.decisions import UNKNOWN

BAR = math.log10(1e-4)
SETTINGS = {"medium": (0.64, 8, None), "half": (0.5, 16, None), "16:9": (0.75, 8, 16 / 9)}


# -- hypotheses --------------------------------------------------------------------------------------------------
def test_a_size_setting_off_by_a_few_px_is_tried_as_the_whole_frame_resized():
    s = GeometrySettings(name="auto")
    assert aspect_close((1024, 1536), (2000, 3008), s.aspect_tolerance)  # x0.512 down, x0.5106 across
    resize = [h for h in hypotheses((1024, 1536), (2000, 3008), s) if h.kind == "resize" and h.rotation == 0]
    frames = {h.frame for h in resize}
    assert (1024, 1536) in frames  # each axis its own scale
    assert (1021, 1536) in frames and (1024, 1540) in frames  # the width's and the height's uniform scale
    assert any(h.frame == (1024, 1536) and h.stage == 1 and h.count == 9 for h in resize)  # a plain resize first
    assert all(h.count <= 200 for h in resize)  # a few hundred positions at most: a low bar
    assert all(h.stage == 2 for h in resize if h.shift == 4)  # the size setting's wider margin: its own stage
    # a Canon EOS RP's 4160 x 2768 of its 6240 x 4160 frame: the width's 2/3, 5 rows cut
    eos = [h for h in hypotheses((2768, 4160), (4160, 6240), s) if h.kind == "resize" and h.rotation == 0]
    assert (2773, 4160) in {h.frame for h in eos}


def test_another_aspect_ratio_is_tried_as_a_crop_of_the_resized_frame():
    s = GeometrySettings(name="auto")
    hs = [h for h in hypotheses((2104, 3744), (3240, 4320), s) if h.rotation == 0]  # a 16:9 mode of a 4:3 sensor
    settings = [h for h in hs if h.kind == "crop" and h.frame != (3240, 4320)]
    assert settings and all(h.stage == 2 for h in settings)
    assert (2808, 3744) in {h.frame for h in settings}  # the width's ratio: the photo is a band of that frame
    assert all(h.count < 10_000 for h in settings)  # offsets along the band only
    assert any(h.kind == "crop" and h.frame == (3240, 4320) and h.stage == 3 for h in hs)  # and at scale 1


def test_camera_transforms_keep_the_aspect_only_to_a_few_px():
    img = np.zeros((1536, 2048, 3), np.uint8)
    medium, applied = apply(img, "camera_medium")
    assert medium.shape[:2] == (976, 1312) and applied.quality == 92  # x0.6354 down, x0.6406 across
    band, applied = apply(img, "camera_169")
    assert band.shape[:2] == (864, 1536) and (applied.offset_y, applied.offset_x) == (192, 0)


# -- the measured null -------------------------------------------------------------------------------------------
def test_decoy_spectrum_is_the_spectrum_of_the_flipped_frame():
    x = np.random.default_rng(0).normal(size=(37, 52)).astype(np.float32)
    fx = scipy.fft.rfft2(x)
    np.testing.assert_allclose(decoy_spectrum(fx, x.shape, "mirrored"), scipy.fft.rfft2(x[:, ::-1]), atol=1e-3)
    np.testing.assert_allclose(decoy_spectrum(fx, x.shape, "flipped"), scipy.fft.rfft2(x[::-1, :]), atol=1e-3)


def test_a_gaussian_null_keeps_a_real_peak_and_a_heavy_one_does_not():
    rng = np.random.default_rng(1)
    gauss = plane_tail(rng.normal(size=(1024, 1024)).astype(np.float32))
    model = fit_null(gauss)
    assert model is not None and model.largest < 40
    # never below the Gaussian; a real peak among a million positions still clears the bar
    assert model.log10_pfa(30.0, 10**6) >= log10_false_alarm(30.0, 10**6) - 1e-9
    assert model.log10_pfa(120.0, 10**6) < BAR
    # scene residue: a plane with structured outliers (a chart's edges lined up at many offsets)
    heavy = rng.normal(size=(1024, 1024)).astype(np.float32)
    heavy[rng.integers(0, 1024, 300), rng.integers(0, 1024, 300)] = rng.uniform(8, 11, 300)
    model = fit_null(plane_tail(heavy))
    assert model.largest > 64
    assert model.log10_pfa(100.0, 10**6) > -1  # a PCE of 100 is what this null reaches anyway
    assert log10_false_alarm(100.0, 10**6) < -15  # the Gaussian tail would have named it


def test_a_camera_s_own_peak_is_left_out_of_its_null():
    plane = np.random.default_rng(2).normal(size=(256, 256)).astype(np.float32)
    plane[10, 20] = 40.0
    whole = plane_tail(plane.copy())
    own = plane_tail(plane.copy(), exclude=(10, 20))
    assert whole.values[0] > 500 and own.values[0] < 40
    assert own.n == whole.n - 121
    assert Tail.pooled([whole, own]).n == whole.n + own.n


def test_probabilities_below_a_float_are_printed_in_scientific_notation():
    assert sci(-561.752) == "1.77e-562" and sci(2.0) == "1.00e+02"
    assert sci(-4.0) == "1.00e-04"
    cal = false_alarm.uncalibrated(1e-4, 0.05) | {"log10_bar": -561.752}
    assert "1.77e-562" in false_alarm.describe(cal)[0]


# -- virtual cameras with thin same-chart references ---------------------------------------------------------------
def _shoot(cam, scene, seed, setting=None):
    data, _ = photograph(scene, cam, np.random.default_rng(seed), 0.01, 90, setting)
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.fixture(scope="module")
def chart_case():
    """Five virtual cameras of 480 x 640 (three pipelines), a textured chart each frames its own way; the first
    three enrolled from three photos of it."""
    sensor = Sensor(480, 640, psf_sigma=0.6, vignetting=0.15, full_well=6000, read_noise=0.0015)
    cams = [VirtualCamera(f"SYN-{i}", f"SYN-{i}", sensor, (PIPE_A, PIPE_B, PIPE_C)[i % 3], 7) for i in range(5)]
    chart = draw_scene(np.random.default_rng(123), SceneSettings(textured=0.9, max_defocus=0.2))
    r = np.random.default_rng(5)
    tripod = {c.camera: viewed(chart, tuple(r.uniform(-0.05, 0.05, 2)), float(r.uniform(0.9, 1.1))) for c in cams}
    refs = {c.camera: [_shoot(c, tripod[c.camera], 10 * i + j) for j in range(3)] for i, c in enumerate(cams[:3])}
    fps = {name: estimate_fingerprint(imgs) for name, imgs in refs.items()}
    return cams, tripod, refs, fps


def _verdict(img, fps, decoys=True, qualities=None):
    search = Search(GeometrySettings("auto", decoys=decoys), BAR)
    search = search.for_fingerprints(qualities) if qualities is not None else search
    out = score_residual(noise_residual(img), grey_of(img), fps, search=search)
    lps = photo_log10_pfa(out)
    top = min(lps, key=lps.get)
    return (top if lps[top] <= BAR else UNKNOWN), out["geometry"][top]


@pytest.mark.slow
def test_size_settings_of_thin_chart_references_are_found_and_never_misnamed(chart_case):
    cams, tripod, refs, fps = chart_case
    # as a case or the library searches: the fingerprints' qualities say which hold the chart (no scale search)
    qualities = {c: fingerprint_quality(k, (grey_of(i) for i in refs[c])) for c, k in fps.items()}
    assert scene_laden(qualities) == set(fps)  # three photos of one chart each
    right, wrong = 0, []
    for i, cam in enumerate(cams):
        for setting in SETTINGS.values():
            named, g = _verdict(_shoot(cam, tripod[cam.camera], 5000 + i, setting), fps, qualities=qualities)
            if named == cam.camera:
                right += 1
                assert g["transform"] in ("resize", "crop") and g["scale"] < 1
            elif named != UNKNOWN:
                wrong.append((cam.camera, setting, named))
    assert not wrong  # cameras 3 and 4 are not enrolled: their chart photos must come out unknown
    assert right >= 6  # of the 9 size-setting photos of enrolled cameras (measured: 8 with these seeds)


def test_fingerprints_of_one_chart_say_so(chart_case):
    _, _, refs, fps = chart_case
    for name, imgs in refs.items():
        q = fingerprint_quality(fps[name], [grey_of(i) for i in imgs])
        assert q.n_photos == 3 and q.scene_leak > CLEAN_LEAK
        assert any("thin: 3 reference photos" in w for w in q.warnings())
        assert any("the references share a scene" in w for w in q.warnings())


def test_a_flat_field_fingerprint_is_clean():
    rng = np.random.default_rng(3)
    k = rng.normal(0, 0.01, (256, 256)).astype(np.float32)
    flats = [
        np.clip(180 * (1 + k[..., None]) + rng.normal(0, 2, (256, 256, 3)), 0, 255).astype(np.uint8) for _ in range(12)
    ]
    q = fingerprint_quality(estimate_fingerprint(flats), [grey_of(f) for f in flats])
    assert q.scene_leak <= CLEAN_LEAK and q.warnings() == []


# -- every size gets a verdict -----------------------------------------------------------------------------------
def test_a_photo_larger_than_every_camera_is_unknown_with_its_reason():
    cal = false_alarm.uncalibrated(1e-4, 0.05)
    scored = [{"scores": {}, "cameras": [], "hypotheses": 0, "shape": (3024, 4032)}]
    verdicts, skipped = false_alarm.searched_verdicts(["big.jpg"], scored, {}, [], cal, None)
    assert not skipped and verdicts[0]["decision"] == UNKNOWN
    assert "4032x3024 px" in verdicts[0]["detail"] and "fits no enrolled camera" in verdicts[0]["detail"]
