"""End to end in a real browser: `streamlit run app.py` driven by Playwright on Debian's Chromium.

Never `playwright install` (it downloads): the project's setup installs /usr/bin/chromium.
Screenshots land in tests/artifacts/.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-dev-shm-usage"]
ARTIFACTS = ROOT / "tests" / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    env = {**os.environ, "LLC_NO_DOWNLOAD": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        raise AssertionError("streamlit did not start: " + proc.stdout.read().decode()[-2000:])
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def page(server):
    assert os.path.exists(CHROMIUM), "Debian's chromium is missing: `make test` installs it"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        browser.close()


def test_run_live_stop_and_page_still_responds(server, page):
    page.goto(f"{server}/?draws=20000&burnin=20")
    run = page.locator(".st-key-run button")
    expect(run).to_be_enabled(timeout=90_000)
    page.screenshot(path=ARTIFACTS / "estimate_idle.png", full_page=True)
    run.click()
    # live points: the loss-trace plot has chain traces with data
    page.wait_for_selector(".js-plotly-plot .scatterlayer .trace path", timeout=60_000)
    expect(page.get_by_text("Status:")).to_contain_text("running", timeout=10_000)
    metric = page.locator('[data-testid="stMetric"]').filter(has_text="λ̂").first
    expect(metric).not_to_contain_text("–", timeout=60_000)  # λ̂ has a value once draws start
    page.screenshot(path=ARTIFACTS / "estimate_running.png", full_page=True)
    page.locator(".st-key-stop button").click()
    expect(page.get_by_text("Status:")).to_contain_text("stopped (partial result)", timeout=15_000)
    page.screenshot(path=ARTIFACTS / "estimate_stopped.png", full_page=True)
    # the page still responds: switch tabs and start a new short run
    page.get_by_text("Diagnostics", exact=True).first.click()
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    expect(run).to_be_enabled(timeout=10_000)
    page.goto(f"{server}/?model=toy:crossing:1&chains=2&draws=200&burnin=0")
    expect(run).to_be_enabled(timeout=60_000)
    run.click()
    expect(page.get_by_text("Status:")).to_contain_text("finished", timeout=120_000)
    expect(page.get_by_text("True λ = 0.5")).to_be_visible()  # the URL chose the toy
    page.screenshot(path=ARTIFACTS / "estimate_toy_finished.png", full_page=True)
