"""The asv dashboard: results of two commits published, served on 127.0.0.1 and opened in headless
Chromium, which must list the suite's benchmarks and draw a benchmark's graph.

Needs Debian's chromium and chromium-driver, selenium, and the dashboard's JavaScript libraries
fetched for offline use (``benchmarks/dashboard_offline.py fetch``); .ci/run installs all three
and sets BOOTGPU_REQUIRE=chromium,... (tests/environment.py), which turns a skip into a failure.
Only the sub-second small size runs (``-b 1000x200``: every benchmark at 1000 x 200), for HEAD and its parent, into a
temporary results and html folder.  The screenshots
are kept under $BOOTGPU_ARTEFACTS (else the test's tmp folder).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bootgpu.backends.cupy_backend import cupy_unusable_reason
from browser import artefacts, start_chromium
from environment import check, unavailable

ROOT = Path(__file__).resolve().parents[1]
SMALL = r"1000x200"  # asv matches -b against "name('numpy', '1000x200')"
GRAPHED = "bench_draws.Draws.time_draws"
ASSETS = Path(os.environ.get("BOOTGPU_ASV_ASSETS", ROOT / "build" / "asv-dashboard-assets"))


def _load_dashboard_offline():
    """benchmarks/dashboard_offline.py, loaded from its file (benchmarks/ is not on sys.path, and
    putting it there would let its common.py shadow other modules)."""
    spec = importlib.util.spec_from_file_location("dashboard_offline", ROOT / "benchmarks" / "dashboard_offline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dashboard_offline = _load_dashboard_offline()


def _unavailable(reason: str):
    unavailable("chromium", reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    check("chromium")
    if missing := dashboard_offline.missing_assets(ASSETS):
        _unavailable(f"the dashboard's JavaScript libraries are not in {ASSETS} ({len(missing)} missing): "
                     f"python3 benchmarks/dashboard_offline.py fetch {ASSETS}")
    drv = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield drv
    drv.quit()


def _asv(conf: Path, home: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "asv", *args, "--config", str(conf)], cwd=ROOT, text=True,
                          capture_output=True, timeout=600, env={**os.environ, "HOME": str(home)})
    assert proc.returncode == 0, f"asv {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, text=True, capture_output=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory, browser):
    """Publish results of the last two commits into a temporary html folder, localised for offline
    use, and serve it on 127.0.0.1; yields the base URL and the html folder."""
    commits = _git("rev-list", "--max-count=2", "HEAD").split()
    if len(commits) < 2:
        pytest.skip("the dashboard needs two commits in the history (shallow clone?)")
    tmp = tmp_path_factory.mktemp("asv")
    text = (ROOT / "asv.conf.json").read_text()
    conf = json.loads("\n".join(line for line in text.splitlines() if not line.strip().startswith("//")))
    branch = _git("rev-parse", "--abbrev-ref", "HEAD")
    conf.update(repo=str(ROOT), benchmark_dir=str(ROOT / "benchmarks"), results_dir=str(tmp / "results"),
                html_dir=str(tmp / "html"), env_dir=str(tmp / "env"), branches=[branch])
    conf_path = tmp / "asv.conf.json"
    conf_path.write_text(json.dumps(conf, indent=1))
    _asv(conf_path, tmp, "machine", "--yes")  # HOME=tmp: the machine file stays out of ~
    for commit in commits:
        _asv(conf_path, tmp, "run", "--python=same", "--quick", "--set-commit-hash", commit, "-b", SMALL)
    _asv(conf_path, tmp, "publish")
    dashboard_offline.localise(tmp / "html", ASSETS)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(tmp / "html")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tmp / "html", commits
    server.shutdown()
    server.server_close()


def test_dashboard_lists_benchmarks_and_draws_graph_over_two_commits(browser, dashboard, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, html, commits = dashboard
    suite = [name for name in json.loads((html / "index.json").read_text())["benchmarks"]]
    out = artefacts(tmp_path)

    browser.get(f"{url}/index.html")
    wait = WebDriverWait(browser, 60)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#summarygrid-display .benchmark-container")))
    assert "failed to load" not in browser.find_element(By.TAG_NAME, "body").text
    listed = {a.get_attribute("href").split("#", 1)[1]
              for a in browser.find_elements(By.CSS_SELECTOR, "#summarygrid-display a.benchmark-container")}
    assert set(suite) <= listed and len(suite) >= 18, sorted(listed)
    for stage in ("draws", "ranking", "base_correlations", "bh", "bootstrap", "focus_gene"):
        assert any(name.endswith(f".time_{stage}") for name in listed), stage
    # the grid draws a benchmark's thumbnail graph once it is scrolled into view; every benchmark
    # has results at the small size, so every thumbnail must get one
    for name in suite:
        cell = browser.find_element(By.CSS_SELECTOR, f"[id='summarygrid-{name}']")
        browser.execute_script("arguments[0].scrollIntoView(); $(window).trigger('scroll');", cell)
        wait.until(lambda d, cell=cell: cell.find_elements(By.CSS_SELECTOR, "canvas.flot-base"))
    browser.execute_script("window.scrollTo(0, 0);")
    browser.save_screenshot(str(out / "asv-dashboard-grid.png"))

    browser.get(f"{url}/index.html#{GRAPHED}")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#main-graph canvas.flot-base")))
    series = wait.until(lambda d: d.execute_script(
        "var p = $('#main-graph').data('plot');"
        "return p ? p.getData().map(function (s) {"
        "  return [s.label, s.data.filter(function (xy) { return xy[1] !== null && !isNaN(xy[1]); }).length]; }) : null;"))
    points = {label: n for label, n in series}
    assert points.get("backend-numpy; size-1000x200") == len(commits), series
    assert points.get("backend-numpy; size-8763x938") == 0, series  # not run (-b)
    if cupy_unusable_reason() is not None:  # skipped in setup, so asv has no value to draw
        assert points.get("backend-cupy; size-1000x200") == 0, series
    canvas = browser.find_element(By.CSS_SELECTOR, "#main-graph canvas.flot-base")
    assert canvas.size["width"] > 400 and canvas.size["height"] > 200
    ticks = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#main-graph .flot-tick-label") if e.text]
    assert ticks, "the graph has no axis labels"
    browser.save_screenshot(str(out / "asv-dashboard-graph.png"))
    print(f"screenshots: {out / 'asv-dashboard-grid.png'}, {out / 'asv-dashboard-graph.png'}")
