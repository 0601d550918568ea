"""Headless Chromium for the tests that look at pages (tests/test_dashboard.py, tests/test_report.py):
``start_chromium(profile_dir)`` (a selenium driver, or a skip -- a failure when BOOTGPU_REQUIRE names
chromium -- without chromium, chromedriver or selenium), ``severe_console_messages(driver)`` and
``artefacts(tmp_path)``, the folder screenshots are kept in ($BOOTGPU_ARTEFACTS, else tmp_path)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from environment import check, unavailable

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1500")


def start_chromium(profile_dir: Path):
    """A headless Chromium driven by selenium, with its browser log (console messages) recorded."""
    check("chromium")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("chromium", "selenium is not installed (pip install -e '.[dev]')")
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    drv.set_page_load_timeout(60)
    return drv


def severe_console_messages(driver) -> list[str]:
    """The page's console errors (SEVERE entries of the browser log) since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def artefacts(tmp_path) -> Path:
    out = Path(os.environ.get("BOOTGPU_ARTEFACTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out
