"""A workshop room on one small server: N real sessions press Run on the default Estimate at once.

Starts a fresh `streamlit run app.py` on 127.0.0.1 (run limit: LLC_MAX_RUNS or the number of
cores), opens N sessions, waits until every page is ready, then presses Run in all of them
together (asyncio). Two kinds of client:
- `--client ws` (default): Streamlit's own websocket protocol (bench/st_client.py), one
  connection per session, no rendering; times are when the server's message reached the client.
- `--client browser`: Playwright on Debian's Chromium, one browser context per session; times are
  on the page's own clock (bench/page_timer.py). On a 2-core machine the renderers compete with
  the server for the cores, which is what a room of laptops does not do.
Per session it records when the page first showed where the run stands (its place in line, or
the running status), the first plotted point, the end, and λ̂ from the page's JSON download; λ̂
is compared bit for bit with the same run made alone through the API. Server RSS (server plus
its worker processes, psutil) is sampled throughout.

    .venv/bin/python -m bench.workshop_load [--sessions 20] [--client ws|browser]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import psutil
from playwright.async_api import async_playwright

from bench import page_timer
from bench.st_client import StreamlitSession

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-dev-shm-usage"]
DEFAULT_MODEL = "mnist1d_cnn_k10_s0"  # the Estimate page's default (pages/models.py)
RSS_BOUND_GB = 4.0  # stated bound: server + workers; measured peak 2026-11-24 in docs/dashboard-scale.md
POSITION_TARGET_S = 1.0
RUN_TIMEOUT_S = 1800  # bounded: the whole room must finish within this
CLIENTS = {"ws": "Streamlit's websocket protocol, bench/st_client.py", "browser": "headless Chromium"}


def start_server(env: dict) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=ROOT, env={**os.environ, "LLC_NO_DOWNLOAD": "1", **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("streamlit did not start")


class RssSampler(threading.Thread):
    """Peak RSS of the server and all its children, sampled every 0.5 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.root, self.peak, self.done = psutil.Process(pid), 0, threading.Event()

    def run(self):
        while not self.done.is_set():
            total = 0
            for proc in [self.root, *self.root.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self.done.wait(0.5)


def place_line(texts: list[str]) -> str | None:
    """The page's line saying where the run stands: its place in the queue or its status."""
    return next((t for t in texts if t.startswith(("Status:", "Queued:"))), None)


async def ws_session(url: str, ready: asyncio.Barrier, i: int) -> dict:
    s = StreamlitSession(url)
    await s.open(timeout=300)  # 20 first loads on a busy server are slow
    await ready.wait()  # everyone presses Run together
    t0 = time.monotonic()
    await s.click("run")
    await s.wait_for(lambda: place_line(s.texts()), 300)
    shown = time.monotonic() - t0
    queued = place_line(s.texts()).startswith("Queued:")
    await s.wait_for(s.plotted_point, RUN_TIMEOUT_S)
    first = time.monotonic() - t0
    await s.wait_for(lambda: s.has_download("Download run (JSON)"), RUN_TIMEOUT_S)
    t_done = time.monotonic() - t0
    result = json.loads(s.download("Download run (JSON)"))["result"]
    await s.close()
    return {"session": i, "shown": shown, "queued": queued, "first": first, "done": t_done,
            "lambda_hat": result["lambda_hat"], "per_chain": result["lambda_hat_per_chain"],
            "errors": len(s.exceptions) + sum("Traceback" in t for t in s.texts())}


async def session(browser, url: str, ready: asyncio.Barrier, downloads: pathlib.Path, i: int) -> dict:
    context = await browser.new_context(accept_downloads=True, viewport={"width": 1300, "height": 900})
    page = await context.new_page()
    await page.goto(url, wait_until="commit", timeout=300_000)  # 20 first loads on a busy server are slow
    run = page.locator(".st-key-run button")
    await run.wait_for(state="visible", timeout=300_000)
    while not await run.is_enabled():
        await asyncio.sleep(0.2)
    await page.evaluate(page_timer.ARM, [".st-key-run", ["place", "point"]])
    await ready.wait()  # everyone presses Run together
    t0 = time.monotonic()
    await run.click()
    await page.wait_for_function(page_timer.reached(["place"]), timeout=300_000, polling=100)
    queued = await page.get_by_text("Queued:").count() > 0
    button = page.get_by_role("button", name="Download run (JSON)")
    await button.wait_for(timeout=RUN_TIMEOUT_S * 1000)
    t_done = time.monotonic() - t0
    marks = await page.evaluate(page_timer.READ)  # seconds after the click, on the page's clock
    async with page.expect_download() as info:
        await button.click()
    path = downloads / f"run_{i}.json"
    await (await info.value).save_as(path)
    body = await page.locator("body").inner_text()
    errors = await page.locator('[data-testid="stException"]').count() + body.count("Traceback")
    await context.close()
    result = json.loads(path.read_text())["result"]
    return {"session": i, "shown": marks["place"], "queued": queued, "first": marks["point"], "done": t_done,
            "lambda_hat": result["lambda_hat"], "per_chain": result["lambda_hat_per_chain"], "errors": errors}


async def room(url: str, sessions: int, downloads: pathlib.Path, client: str) -> list[dict]:
    if client == "ws":
        ready = asyncio.Barrier(sessions)
        return list(await asyncio.gather(*(ws_session(url, ready, i) for i in range(sessions))))
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ready = asyncio.Barrier(sessions)
        rows = await asyncio.gather(*(session(browser, url, ready, downloads, i) for i in range(sessions)))
        await browser.close()
    return list(rows)


def solo_result():
    import torch

    from llc_core import estimate_llc
    from llc_core.checkpoints import CACHE_DIR, load_task

    torch.set_num_threads(1)  # as the dashboard's workers run
    task = load_task(CACHE_DIR / f"{DEFAULT_MODEL}.safetensors")
    return estimate_llc(task, task.defaults)


def report(rows: list[dict], solo, peak_rss: float, limit: int, load: tuple, client: str) -> None:
    by_start = sorted(rows, key=lambda r: r["first"])
    same = sum(r["lambda_hat"] == solo.lambda_hat and r["per_chain"] == solo.lambda_hat_per_chain for r in rows)
    late = [r for r in rows if r["shown"] > POSITION_TARGET_S]
    clock = "message received by the client" if client == "ws" else "page clock"
    print(f"{len(rows)} sessions ({CLIENTS[client]}), default Estimate ({DEFAULT_MODEL}, its default SGLD settings: "
          f"{solo.config.draws} draws × {solo.config.chains} chains), run limit {limit}, "
          f"{os.cpu_count()} cores, load average before {load[0]:.1f}\n")
    print("| measure | value | target |")
    print("|---|---|---|")
    print(f"| sessions finished | {len(rows)} / {len(rows)} | all |")
    print(f"| λ̂ identical to the solo run (bit for bit, every chain) | {same} / {len(rows)} | all |")
    print(f"| sessions that waited in the queue | {sum(r['queued'] for r in rows)} | |")
    print(f"| Run → place in line or status shown ({clock}), max | {max(r['shown'] for r in rows):.2f} s "
          f"(median {statistics.median(r['shown'] for r in rows):.2f} s; over 1 s: {len(late)}) | ≤ 1 s |")
    print(f"| Run → first point, first in the queue | {by_start[0]['first']:.1f} s | |")
    print(f"| Run → first point, last in the queue | {by_start[-1]['first']:.1f} s | |")
    print(f"| Run → finished, last session | {max(r['done'] for r in rows):.1f} s | |")
    print(f"| errors on any page | {sum(r['errors'] for r in rows)} | 0 |")
    print(f"| peak RSS, server + workers | {peak_rss / 2**30:.2f} GB | ≤ {RSS_BOUND_GB:g} GB |")
    print(f"\nsolo run alone: λ̂ = {solo.lambda_hat:.6g}, {solo.wall_seconds:.1f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=20, help="sessions (default 20)")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="ws", help="how each session connects "
                        "(default ws: Streamlit's websocket protocol; browser: headless Chromium)")
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="llc-workshop-") as tmp:
        tmp = pathlib.Path(tmp)
        proc, url = start_server({"LLC_USER_MODELS": str(tmp / "models"), "LLC_CACHE_DIR": str(tmp / "cache")})
        sampler = RssSampler(proc.pid)
        sampler.start()
        try:
            rows = asyncio.run(asyncio.wait_for(room(url, args.sessions, tmp, args.client), RUN_TIMEOUT_S))
        finally:
            sampler.done.set()
            proc.terminate()
            proc.wait(10)
    from llc_core.runqueue import default_limit

    report(rows, solo_result(), sampler.peak, default_limit(), load, args.client)


if __name__ == "__main__":
    main()
