"""The examiner's desk in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by
Selenium; no browser is downloaded): enrol from uploads, search a photo, see the ranking and the heat map, toggle
it, download the case report. ``.ci/run`` installs the browser; without it these tests are skipped locally and
fail under ``CI=true``. ``SCI_DESK_SCREENSHOT=FILE`` keeps a screenshot of the results page (the README's).
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from pathlib import Path

import pytest

from sci_lightning.library.store import FingerprintLibrary
from sci_lightning.run.serve import desk_app

from fakedata import camera_image, textured_image, write_jpeg
from test_desk import CAMS, RESIDUAL, desk_config, serve_in_thread

pytestmark = pytest.mark.timeout(600)
CHROMIUM, DRIVER = (
    shutil.which("chromium") or "/usr/bin/chromium",
    shutil.which("chromedriver") or "/usr/bin/chromedriver",
)


def _browser_or_skip() -> None:
    if Path(CHROMIUM).exists() and Path(DRIVER).exists():
        return
    message = f"no headless browser: install Debian's chromium and chromium-driver ({CHROMIUM}, {DRIVER})"
    if os.environ.get("CI"):
        pytest.fail(message + " (.ci/run installs them)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    _browser_or_skip()
    tmp = tmp_path_factory.mktemp("browser")
    FingerprintLibrary(tmp / "lib", create=True, residual=RESIDUAL, side=64)
    base, stop = serve_in_thread(desk_app(desk_config(tmp)))
    yield base, tmp
    stop()


@pytest.fixture(scope="module")
def browser(site, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1600",
        f"--user-data-dir={tmp_path_factory.mktemp('profile')}",
    ):
        opts.add_argument(flag)
    opts.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    driver.downloads = downloads
    yield driver
    driver.quit()


def _wait(driver, css: str, timeout: float = 120):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))
    except TimeoutException:
        pytest.fail(f"{css} never appeared on {driver.current_url}:\n{driver.page_source[:3000]}")


def test_enrol_search_see_ranking_and_heat_map_download_report(site, browser):
    from selenium.webdriver.common.by import By

    base, tmp = site
    for device, camera in CAMS:  # enrol each camera from six uploaded photos
        files = [write_jpeg(tmp / "up" / camera / f"{k}.jpg", camera_image(device, camera, k)) for k in range(6)]
        browser.get(f"{base}/enrol")
        browser.find_element(By.ID, "camera").send_keys(camera)
        browser.find_element(By.ID, "device").send_keys(device)
        browser.find_element(By.ID, "files").send_keys("\n".join(str(f) for f in files))
        browser.find_element(By.ID, "go").click()
        assert camera in _wait(browser, "#enrolled").text
    browser.get(f"{base}/cameras")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#cameras tr")) == 1 + len(CAMS)

    questioned = write_jpeg(tmp / "q" / "questioned photo.jpg", camera_image("B", "B1", 77))
    browser.get(f"{base}/search")
    browser.find_element(By.ID, "files").send_keys(str(questioned))
    browser.find_element(By.ID, "go").click()
    result = _wait(browser, "#photo-0")
    assert "questioned photo.jpg" in result.text and "B1" in result.find_element(By.CSS_SELECTOR, ".verdict").text
    first = result.find_elements(By.CSS_SELECTOR, "table.ranking tr")[1].text
    assert "B1" in first
    img = result.find_element(By.CSS_SELECTOR, "img.view")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 100
    heat_src = img.get_attribute("src")
    result.find_element(By.CSS_SELECTOR, "input.toggle").click()  # the photo alone, then the heat map again
    assert img.get_attribute("src") != heat_src and "/photo/0" in img.get_attribute("src")
    result.find_element(By.CSS_SELECTOR, "input.toggle").click()
    assert img.get_attribute("src") == heat_src
    if os.environ.get("SCI_DESK_SCREENSHOT"):
        browser.save_screenshot(os.environ["SCI_DESK_SCREENSHOT"])

    browser.find_element(By.ID, "report-pdf").click()
    deadline = time.time() + 60
    while time.time() < deadline and not [p for p in browser.downloads.glob("*.pdf")]:
        time.sleep(0.2)
    (pdf,) = list(browser.downloads.glob("*.pdf"))
    assert pdf.read_bytes()[:5] == b"%PDF-"
    browser.find_element(By.ID, "report-html").click()
    _wait(browser, "#photo-1")
    assert "questioned photo.jpg" in browser.page_source and "data:image/png;base64," in browser.page_source
    assert browser.execute_script(
        "return document.images.length && [...document.images].every(i => i.naturalWidth > 0)"
    )
    printed = base64.b64decode(browser.print_page())  # the report prints (Chromium's own print to PDF)
    assert printed[:5] == b"%PDF-" and len(printed) > 20_000


def test_group_photos_see_the_clusters_and_enrol_one_as_a_camera(site, browser):
    from selenium.webdriver.common.by import By

    base, tmp = site
    files = [
        write_jpeg(tmp / "group" / f"{cam}_{k}.jpg", textured_image(cam, k)) for cam in ("P1", "Q1") for k in range(4)
    ]
    browser.get(f"{base}/group")
    browser.find_element(By.ID, "files").send_keys("\n".join(str(f) for f in files))
    browser.find_element(By.ID, "go").click()
    summary = _wait(browser, "#grouped")
    assert "2 cluster(s)" in summary.text and "expected number of false links" in summary.text
    galleries = browser.find_elements(By.CSS_SELECTOR, "div.cluster")
    assert len(galleries) == 2
    for g in galleries:
        names = {c.text[:2] for c in g.find_elements(By.CSS_SELECTOR, "figcaption")}
        assert len(names) == 1 and len(g.find_elements(By.CSS_SELECTOR, "img")) == 4  # one camera each
    assert browser.execute_script("return [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    if os.environ.get("SCI_DESK_GROUP_SCREENSHOT"):
        browser.save_screenshot(os.environ["SCI_DESK_GROUP_SCREENSHOT"])
    first = galleries[0]
    camera = first.find_element(By.CSS_SELECTOR, "figcaption").text[:2]
    first.find_element(By.CSS_SELECTOR, "input[name=camera]").send_keys(f"{camera}-from-cluster")
    first.find_element(By.CSS_SELECTOR, "button").click()
    assert f"{camera}-from-cluster" in _wait(browser, "#enrolled").text
    browser.get(f"{base}/cameras/{camera}-from-cluster")
    assert "Reference photos (4)" in browser.find_element(By.TAG_NAME, "main").text
