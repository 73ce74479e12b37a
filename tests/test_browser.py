"""The report in a real browser: headless Chromium loads it, every image decodes, the console stays clean."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from edgecnn.bundle import REPORT_FILE
from edgecnn.render.report import write_report

from .conftest import REPO
from .test_report import make_fake_bundle

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1000")
WIDTH, MAX_HEIGHT = 1280, 12000


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip("headless Chromium not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install -e '.[train]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + (f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def inspect_page(driver, page: Path, screenshot: Path) -> tuple[list[str], list[str]]:
    """Open ``page``; return the images that did not load and the console errors, and save a full-page screenshot."""
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(page.resolve().as_uri())
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth]);")
    broken = [alt for alt, complete, width in images if not complete or width <= 0]
    height = driver.execute_script("return document.documentElement.scrollHeight;")
    driver.set_window_size(WIDTH, min(int(height) + 200, MAX_HEIGHT))
    screenshot.write_bytes(driver.get_screenshot_as_png())
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    return broken + ([] if images else ["<no images at all>"]), errors


def assert_not_blank(png_path: Path) -> None:
    from PIL import Image

    image = Image.open(io.BytesIO(png_path.read_bytes())).convert("L")
    assert image.width == WIDTH and image.height > 2000, image.size  # the whole page, not a cut
    low, high = image.getextrema()
    assert high - low > 200, (low, high)  # text and charts, not one flat colour
    assert len(image.getcolors(1 << 16) or []) > 50


def _pages(tmp_path_factory) -> list[Path]:
    pages = [write_report(make_fake_bundle(tmp_path_factory.mktemp("browser") / "fashion-cnn"))]
    committed = REPO / "models" / "fashion-cnn" / REPORT_FILE
    return pages + ([committed] if committed.exists() else [])


def test_report_renders_in_chromium(browser, tmp_path_factory):
    shots = tmp_path_factory.mktemp("screenshots")
    for number, page in enumerate(_pages(tmp_path_factory)):
        shot = shots / f"report-{number}.png"
        broken, errors = inspect_page(browser, page, shot)
        assert not broken, f"{page}: images that did not load: {broken}"
        assert not errors, f"{page}: console errors: {errors}"
        assert_not_blank(shot)


def test_the_check_catches_a_broken_page(browser, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><head><link rel='icon' href='data:,'></head><body><p>x</p>"
                    "<img alt='bad' src='data:image/png;base64,iVBORw0KGgo='>"
                    "<script>console.error('boom')</script></body></html>")
    broken, errors = inspect_page(browser, page, tmp_path / "shot.png")
    assert broken == ["bad"]
    assert any("boom" in e for e in errors)
