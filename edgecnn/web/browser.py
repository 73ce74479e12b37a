"""Headless Chromium driven by Selenium: how `edgecnn bench --browser` opens the web app and times it."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Any, Iterator

from ..errors import EdgecnnError, require

CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1000,900")
READY_SECONDS = 60


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium WebDriver for the block; a one-line error when Chromium or Selenium is missing."""
    webdriver = require("selenium.webdriver", extra="train", feature="the browser benchmark")
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver") or CHROMEDRIVER
    if not binary or not os.path.exists(driver_path):
        raise EdgecnnError("headless Chromium is not installed (apt-get install chromium chromium-driver)")
    with tempfile.TemporaryDirectory(prefix="edgecnn-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        driver.set_page_load_timeout(READY_SECONDS)
        driver.set_script_timeout(600)
        try:
            yield driver
        finally:
            driver.quit()


def open_app(driver: Any, url: str) -> None:
    """Load the page and wait until it has classified its first sample (or said why it could not start)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, READY_SECONDS).until(
        lambda d: d.execute_script("return document.body.dataset.ready") in ("true", "error"))
    if driver.execute_script("return document.body.dataset.ready") != "true":
        raise EdgecnnError(f"the web app at {url} did not start: {driver.find_element('id', 'status').text}")


def page_benchmark(driver: Any, runs: int, warmup: int) -> list[float]:
    """Seconds per batch-1 session.run in the page, one value per timed block."""
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.edgecnn.benchmark(arguments[0], arguments[1]).then(done, e => done({error: String(e)}));",
        runs, warmup)
    if isinstance(result, dict):
        raise EdgecnnError(f"the browser benchmark failed: {result['error']}")
    return [ms / 1000 for ms in result]
