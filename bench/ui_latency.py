"""Dashboard feel: Run → first plotted point, Stop → stopped, and sampler throughput with
the page streaming vs the bare API, all in one run on this machine.

It starts `streamlit run app.py` on 127.0.0.1, drives it with Playwright on Debian's Chromium,
and reads the page's own chain-steps/s for a finished run of the default model; the API runs
the same configuration in this process between browser rounds.

Latencies are timed on the page's own clock (bench/page_timer.py: from the click event to the
first animation frame after the awaited element appeared); what Playwright's polling saw, timed
from this process, is printed beside them.

    .venv/bin/python -m bench.ui_latency
"""

import re
import statistics
import time

from playwright.sync_api import expect, sync_playwright

from llc_core import estimate_llc
from llc_core.checkpoints import CACHE_DIR, load_task
from bench import page_timer
# Not from tests/: importing the test modules runs tests/conftest.py, which sets the test process's
# LLC_WARM_WORKERS=0, and the server started here would inherit it (no warm workers to wait for).
from bench.workshop_load import ARGS, CHROMIUM, start_server

ROUNDS = 3
DRAWS = 500


def wait_workers_idle(server_pid: int, timeout: float = 120.0) -> None:
    """Until the server's warm worker processes finished importing torch (all children idle):
    the dashboard starts them with the first page view, and a Run pressed within seconds of a
    server's start would measure a cold start instead."""
    import psutil

    server = psutil.Process(server_pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = server.children(recursive=True)
        for child in children:
            child.cpu_percent(None)
        time.sleep(0.5)
        if len(children) >= 2 and all(c.cpu_percent(None) < 5 for c in children if c.is_running()):
            return
    raise RuntimeError("the server's workers did not settle")


POINT = ".js-plotly-plot .scatterlayer .trace path"


def timed_click(page, button: str, mark: str, wait) -> tuple[float, float]:
    """(seconds on the page's clock, seconds as Playwright saw it) from clicking `button` until `mark`."""
    page.evaluate(page_timer.ARM, [button, [mark]])
    start = time.perf_counter()
    page.locator(f"{button} button").click()
    wait()
    seen = time.perf_counter() - start
    page.wait_for_function(page_timer.reached([mark]), timeout=60_000)
    return page.evaluate(page_timer.READ)[mark], seen


def browser_round(page, url, server_pid):
    page.goto(f"{url}/?draws={DRAWS}")
    run = page.locator(".st-key-run button")
    expect(run).to_be_enabled(timeout=120_000)
    wait_workers_idle(server_pid)
    first_point = timed_click(page, ".st-key-run", "point", lambda: page.wait_for_selector(POINT, timeout=60_000))
    expect(page.get_by_text("Status:")).to_contain_text("finished", timeout=600_000)
    caption = page.get_by_text(re.compile("chain-steps/s")).first.inner_text()
    rate = float(re.search(r"([\d,]+) chain-steps/s", caption).group(1).replace(",", ""))
    # Stop latency on a long run
    page.goto(f"{url}/?draws=20000&burnin=20")
    expect(run).to_be_enabled(timeout=120_000)
    wait_workers_idle(server_pid)
    run.click()
    page.wait_for_selector(POINT, timeout=60_000)
    stop = timed_click(page, ".st-key-stop", "stopped",
                       lambda: expect(page.get_by_text("Status:")).to_contain_text("stopped", timeout=30_000))
    return first_point, rate, stop


def api_rate(task):
    res = estimate_llc(task, task.defaults.replace(draws=DRAWS))
    return res.steps_per_second


def main():
    import torch

    torch.set_num_threads(1)  # as app.py does, so both sides run with the same threads
    task = load_task(CACHE_DIR / "mnist1d_cnn_k10_s0.safetensors")
    proc, url = start_server({})
    firsts, ui_rates, stops, api_rates = [], [], [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for _ in range(ROUNDS):
                first, rate, stop = browser_round(page, url, proc.pid)
                firsts.append(first), ui_rates.append(rate), stops.append(stop)
                api_rates.append(api_rate(task))
                print(f"round {len(firsts)}: first point {first[0]:.2f} s (Playwright saw it after {first[1]:.2f} s), "
                      f"stop {stop[0]:.2f} s ({stop[1]:.2f} s), dashboard {rate:,.0f} "
                      f"vs API {api_rates[-1]:,.0f} chain-steps/s", flush=True)
            browser.close()
    finally:
        proc.terminate()
    med = statistics.median
    print(f"Default model (MNIST-1D CNN K=10, 16,618 params), its default SGLD settings, {DRAWS} draws; "
          f"median of {ROUNDS} rounds\n")
    print("| measure | value | target |")
    print("|---|---|---|")
    print(f"| Run → first plotted point (browser, page clock) | {med(f[0] for f in firsts):.2f} s | ≤ 1 s |")
    print(f"| Stop → page shows 'stopped' (browser, page clock) | {med(s[0] for s in stops):.2f} s | ≤ 1 s |")
    print(f"| the same two as Playwright's polling saw them | {med(f[1] for f in firsts):.2f} s, "
          f"{med(s[1] for s in stops):.2f} s | |")
    print(f"| throughput, API (no UI) | {med(api_rates):,.0f} chain-steps/s | |")
    print(f"| throughput, dashboard streaming | {med(ui_rates):,.0f} chain-steps/s | |")
    print(f"| dashboard ÷ API | **{med(ui_rates) / med(api_rates):.2f}** | ≥ 0.90 |")


if __name__ == "__main__":
    main()
