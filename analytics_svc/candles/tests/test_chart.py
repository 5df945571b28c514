"""The chart page in a real browser: headless Chromium draws the golden replay's candles from local files only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from candles.tests.conftest import GOLDEN_TRADE_COUNT

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """Debian's chromium and chromium-driver, installed here when missing (the test runs as root)."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"], check=True, env=env, timeout=900
        )
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture
def browser(chromium: tuple[str, str]) -> Iterator[webdriver.Chrome]:
    binary, driver = chromium
    profile = tempfile.mkdtemp(prefix="chart-test-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,800",
        f"--user-data-dir={profile}",
        # Belt and braces: any name but localhost fails to resolve, so nothing could leave the machine.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    # An explicit driver path: Selenium Manager never downloads anything.
    driver_ = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        yield driver_
    finally:
        driver_.quit()
        shutil.rmtree(profile, ignore_errors=True)


def requested_urls(driver: webdriver.Chrome) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_the_chart_page_draws_the_replayed_candles_from_localhost_only(replay, consume, live_server, browser, tmp_path):
    replay()
    consume(GOLDEN_TRADE_COUNT)

    browser.get(f"{live_server.url}/chart/?symbol=XRPETH&interval=1m")
    chart = browser.find_element(By.ID, "chart")
    WebDriverWait(browser, 30).until(lambda _: chart.get_attribute("data-state") != "loading")
    time.sleep(0.3)  # one more frame so the canvas holds the drawing before it is read

    assert chart.get_attribute("data-state") == "ready", browser.find_element(By.ID, "status").text
    assert chart.get_attribute("data-candles") == "1000"  # the latest 1000 of 2,469 minutes, as requested
    painted = browser.execute_script(
        """
        let colored = 0;
        for (const canvas of document.querySelectorAll('#chart canvas')) {
          const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
          for (let i = 0; i < data.length; i += 4) {
            const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
            // the candles' default green and red, not the white background, grey grid or black text
            if (a > 0 && Math.abs(r - g) > 60) colored++;
          }
        }
        return colored;
        """
    )
    assert painted > 5000, f"only {painted} candle-coloured pixels drawn"
    browser.save_screenshot(str(os.environ.get("CHART_SCREENSHOT", tmp_path / "chart.png")))
    urls = requested_urls(browser)
    assert any("/api/v3/klines?" in u for u in urls)
    assert any(u.endswith("lightweight-charts.standalone.production.js") for u in urls)
    # chrome:// (the browser's own pages), data: and blob: never touch the network.
    network = [u for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss", "ftp")]
    outside = [u for u in network if urlsplit(u).hostname not in LOCAL_HOSTS]
    assert outside == [], f"requests left localhost: {outside}"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
