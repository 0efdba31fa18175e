"""The real cameras of ../shared/realdata/digicam-dev (skipped when it is absent): a Canon EOS RP's own size
settings are found from a fingerprint of one chart photo, and the heavy-tailed null that fingerprint meets in a crop
search (a Nikon CoolPix S3100 photo of the same chart at PCE 543 by the Gaussian rule) names nobody."""

from __future__ import annotations

import math

import pytest

from sci_lightning.fingerprint.geometry import GeometrySettings
from sci_lightning.fingerprint.quality import STRONG_LEAK
from sci_lightning.fingerprint.references import fingerprint_and_photos
from sci_lightning.fingerprint.residuals import ResidualStore
from sci_lightning.fingerprint.scoring import Search, score_residual
from sci_lightning.fingerprint.significance import photo_log10_pfa

from conftest import REPO

DIGICAM = REPO.parent / "shared" / "realdata" / "digicam-dev"
BAR = math.log10(1e-4)
pytestmark = [
    pytest.mark.skipif(not DIGICAM.exists(), reason="shared/realdata/digicam-dev not present"),
    pytest.mark.slow,  # full-size real photos: minutes of searching
    pytest.mark.xdist_group("digicam"),  # one worker: the 26 MP fingerprint below is made once, not once per worker
]
OTHER = DIGICAM / "Nikon_CoolPix-S3100" / "DSCN0136.JPG"


@pytest.fixture(scope="module")
def eos(tmp_path_factory):
    store = ResidualStore(tmp_path_factory.mktemp("residuals"), {})
    k, _, quality = fingerprint_and_photos([str(DIGICAM / "Canon_EOS-RP" / "_MG_0631.JPG")], store)
    return store, k, quality


def _searched(store, k, path, decoys=True):
    w, grey = store.photo(str(path))
    out = score_residual(w, grey, {"Canon_EOS-RP": k}, search=Search(GeometrySettings("auto", decoys=decoys), BAR))
    return photo_log10_pfa(out)["Canon_EOS-RP"], out["geometry"]["Canon_EOS-RP"], out["scores"]["Canon_EOS-RP"][0]


def test_a_one_photo_chart_fingerprint_warns(eos):
    _, _, quality = eos
    assert quality.n_photos == 1 and quality.scene_leak > STRONG_LEAK
    assert len(quality.warnings()) == 2


@pytest.mark.parametrize(("photo", "scale"), [("_MG_0632.JPG", 0.6667), ("_MG_0634.JPG", 0.5)])
def test_the_eos_rp_size_settings_are_found(eos, photo, scale):
    store, k, _ = eos
    lp, g, pce = _searched(store, k, DIGICAM / "Canon_EOS-RP" / photo)
    assert g["transform"] == "resize" and g["scale"] == pytest.approx(scale, abs=2e-3)
    assert lp <= BAR and pce > 300  # 4160 x 2768 is the width's 2/3 with 5 rows cut: no 1-px aspect rule finds it
    assert g["null_positions"]  # judged against its measured null


# The two halves of one claim, as two tests so that two workers search at once.
def test_the_gaussian_tail_names_another_cameras_chart_photo(eos):
    store, k, _ = eos
    lp_gauss, g, pce = _searched(store, k, OTHER, decoys=False)
    assert g["transform"] == "crop" and pce > 200 and lp_gauss <= BAR  # the Gaussian tail names the wrong camera


def test_a_chart_photo_of_another_camera_is_not_named_by_the_scene_residue(eos):
    store, k, _ = eos
    lp, g, _ = _searched(store, k, OTHER)
    assert lp > BAR  # its decoys reach as high: unknown
    assert g["null_max_pce"] > 200
