"""Issue 13 in a real browser at a projector's 1280×720, light and dark: the explorer pages (Calibrate,
MLP vs CNN, Task variability, Learn) follow the theme, clicks on the Calibrate heatmap pick a cell, a
Learn demo's result comes into view. Screenshots (looked at) land in tests/artifacts/theme_*.png.

Each page is shot in light, then the same session is switched to dark with Streamlit's own main
menu (System / Light / Dark), as a viewer would.
"""

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest
from playwright.sync_api import expect

from llc_core.checkpoints import CACHE_DIR
from tests.conftest import ROOT, server_env, stop_server
from tests.test_browser import ARGS, ARTIFACTS, CHROMIUM, fill, free_port, playwright  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The dashboard on a shelf of six checkpoints (MLP and CNN at K = 2, 5, 10, seed 0) so the
    variability experiment finishes in minutes on a loaded machine; otherwise as tests/test_browser.py."""
    shelf = tmp_path_factory.mktemp("cached_models")
    for arch in ("mlp", "cnn"):
        for k in (2, 5, 10):
            for suffix in (".json", ".safetensors"):
                shutil.copy(CACHE_DIR / f"mnist1d_{arch}_k{k}_s0{suffix}", shelf)
    port = free_port()
    env = server_env(LLC_CACHED_MODELS=str(shelf), LLC_USER_MODELS=str(tmp_path_factory.mktemp("user_models")),
                     LLC_CACHE_DIR=str(tmp_path_factory.mktemp("cache")))
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
        raise AssertionError("streamlit did not start")
    yield url
    stop_server(proc)

BACKGROUND_LUMINANCE = """() => {
  const [r, g, b] = getComputedStyle(document.querySelector('.stApp')).backgroundColor.match(/\\d+/g).map(Number);
  return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}"""


@pytest.fixture(scope="module")
def page(server, playwright):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    context = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme="light")
    page = context.new_page()
    yield page
    browser.close()


def plot_backgrounds(page) -> list[str]:
    """The fill of every plotly figure's plotting area (rect.bg)."""
    return page.evaluate("[...document.querySelectorAll('.js-plotly-plot rect.bg')].map(r => r.style.fill)")


def set_theme(page, theme: str) -> None:
    """Streamlit's main menu: System, Light or Dark."""
    page.get_by_role("button", name="Main menu").click()
    page.get_by_role("menuitemradio", name=theme, exact=True).click()
    if page.get_by_role("menu", name="Main menu").is_visible():
        page.keyboard.press("Escape")


def shoot(page, name: str, parts=()) -> None:
    """The window as it is, then each of `parts` (locators) scrolled into view: Streamlit scrolls inside
    its main area, so a full-page screenshot would show only one window."""
    page.wait_for_timeout(800)
    page.screenshot(path=ARTIFACTS / f"theme_{name}.png")  # the window as the previous step left it
    for i, part in enumerate(parts, 1):
        part.scroll_into_view_if_needed()
        page.wait_for_timeout(600)
        page.screenshot(path=ARTIFACTS / f"theme_{name}_{i}.png")


def shoot_both(page, name: str, parts=()) -> None:
    """Screenshots in light, switch the session to dark, check no plot keeps a light background, again."""
    shoot(page, f"{name}_light", parts)
    set_theme(page, "Dark")
    page.wait_for_function(f"({BACKGROUND_LUMINANCE})() < 0.2", timeout=10_000)  # the app went dark
    page.wait_for_timeout(1200)  # plotly redraws in the new theme
    light = [bg for bg in plot_backgrounds(page) if bg and bg.startswith("rgb(") and _luminance(bg) > 0.6]
    assert not light, f"{name}: plot areas with a light background in dark mode: {light}"
    shoot(page, f"{name}_dark", parts)
    set_theme(page, "Light")
    page.wait_for_function(f"({BACKGROUND_LUMINANCE})() > 0.8", timeout=10_000)


def _luminance(rgb: str) -> float:
    r, g, b = (int(v) for v in rgb[rgb.index("(") + 1: rgb.index(")")].split(",")[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_calibrate_heatmap_click_shows_the_cell_and_follows_the_theme(server, page):  # noqa: F811
    grid = "cal_model=toy:crossing:2&cal_epsilons=1.0e-05&cal_epsilons=1.0e-04&cal_epsilons=1.0e-03" \
           "&cal_gammas=1&cal_gammas=10&cal_chains=2&cal_draws=60&cal_burnin=0"
    page.goto(f"{server}/calibrate?{grid}")
    run = page.locator(".st-key-cal_run button")
    expect(run).to_be_enabled(timeout=90_000)
    expect(page.get_by_text("6 cells", exact=False)).to_be_visible()  # the grid came from the link
    run.click()
    expect(page.get_by_text("Sweep finished: 6 cells")).to_be_visible(timeout=240_000)
    heatmap = page.locator(".st-key-cal_heatmap_1 .js-plotly-plot").last
    expect(heatmap).to_be_visible()
    expect(heatmap.locator(".colorbar")).to_contain_text(re.compile("λ̂(log scale| clipped)"))  # the title says which
    picker = page.locator(".st-key-cal_pick input")
    for _ in range(3):  # the live view redraws about once a second: a click mid-redraw is lost, click again
        area = page.locator(".st-key-cal_heatmap_1 .js-plotly-plot .nsewdrag").last  # 3 ε columns × 2 γ rows
        area.wait_for(state="visible")
        box = area.bounding_box()
        if box is None:  # redrawn between the two calls
            continue
        x, y = box["x"] + box["width"] * 5 / 6, box["y"] + box["height"] * 3 / 4  # the cell ε 1e-3, γ 1
        page.mouse.move(x, y)
        page.wait_for_timeout(300)
        page.mouse.click(x, y)
        page.wait_for_timeout(3000)
        if picker.input_value().startswith("ε 1.0e-03 · γ 1 "):
            break
    expect(picker).to_have_value(re.compile("^ε 1.0e-03 · γ 1 "), timeout=20_000)
    expect(page.locator(".st-key-cal_cell_trace")).to_contain_text("Cell ε 1.0e-03 · γ 1", timeout=20_000)
    shoot_both(page, "calibrate", [page.locator(".st-key-cal_heatmap_1"), page.locator(".st-key-cal_lines_1"),
                                   page.locator(".st-key-cal_cell_trace")])
    # presentation mode: the same figures with ≥ 16 px ticks
    page.locator(".st-key-presentation_switch label").click()
    page.wait_for_timeout(2000)
    page.locator(".st-key-cal_heatmap_1").scroll_into_view_if_needed()
    sizes = page.evaluate("[...document.querySelectorAll('.st-key-cal_heatmap_1 .xtick text, "
                          ".st-key-cal_lines_1 .ytick text')].map(t => parseFloat(t.style.fontSize))")
    page.screenshot(path=ARTIFACTS / "theme_calibrate_presentation_light.png")
    assert sizes and min(sizes) >= 16, sizes
    page.locator(".st-key-presentation_switch label").click()


def test_compare_mlp_first_with_architecture_names(server, page):  # noqa: F811
    page.goto(f"{server}/compare?cmp_mode=shared+settings&cmp_chains=2&cmp_draws=100&cmp_burnin=0")
    run = page.locator(".st-key-cmp_run button")
    expect(run).to_be_enabled(timeout=90_000)
    run.click()
    expect(page.get_by_text("A − B", exact=False).first).to_be_visible(timeout=180_000)
    legend = page.locator(".st-key-cmp_chart .legendtext")
    expect(legend.first).to_have_text("A: MLP")
    expect(legend.nth(1)).to_have_text("B: CNN")
    shoot_both(page, "compare", [page.get_by_text("A − B", exact=False).first])
    # Each panel is half the page: its numbers must fit (four to a row cut them to "0.0…", "± 35.8 (MC…")
    expect(page.get_by_text("Status:", exact=False).nth(1)).to_contain_text("finished", timeout=180_000)
    cut = page.evaluate("""() => [...document.querySelectorAll(
        '[data-testid="stMetricValue"], [data-testid="stMetricDelta"], [data-testid="stMetricLabel"]')]
        .flatMap(e => [e, ...e.querySelectorAll('*')])
        .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)""")
    assert page.locator('[data-testid="stMetricValue"]').count() >= 16 and cut == [], cut
    page.locator(".st-key-cmp_mode").get_by_text("each at its own calibrated settings").click()
    expect(page.get_by_text("ε = 0.0002", exact=False).first).to_be_visible(timeout=20_000)  # A's own ε
    page.screenshot(path=ARTIFACTS / "theme_compare_own_settings_light.png", full_page=False)


def test_variability_flagged_points_hollow_and_links(server, page):  # noqa: F811
    page.goto(f"{server}/variability")
    expect(page.locator(".st-key-var_run button")).to_be_enabled(timeout=90_000)
    fill(page, "var_draws", 50)
    expect(page.get_by_text("50 draws per run is short", exact=False)).to_be_visible()
    page.locator(".st-key-var_run button").click()
    expect(page.get_by_text("6 of 6 runs ·", exact=False)).to_be_visible(timeout=480_000)
    expect(page.get_by_text("Slope difference CNN − MLP", exact=False)).to_be_visible()
    expect(page.get_by_text("50 draws × 2 chains per checkpoint", exact=False)).to_be_visible()
    shoot_both(page, "variability", [page.locator(".st-key-var_chart"), page.get_by_text("Every run", exact=True)])


def test_learn_demo_result_comes_into_view_and_text_renders(server, page):  # noqa: F811
    page.goto(f"{server}/learn")
    button = page.locator(".st-key-learn_few_draws button")
    expect(button).to_be_enabled(timeout=90_000)
    expect(page.locator(".st-key-learn_untrained button")).to_have_text("Untrained w* → negative")
    expect(page.locator(".katex").filter(has_text="K(w)").first).to_be_attached()  # the formula is typeset
    button.click()
    expect(page.get_by_text("Status:")).to_contain_text("finished", timeout=240_000)
    # at 1280×720 the result (flag, "vs true λ" figure, plots) is scrolled into view after the click
    expect(page.get_by_text("λ̂ vs the true λ")).to_be_in_viewport(timeout=10_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=ARTIFACTS / "theme_learn_after_click.png")
    expect(page.locator(".st-key-learn_flags").get_by_text("not_stationary")).to_be_in_viewport()
    shoot_both(page, "learn_demo")  # what a room sees at 1280×720 after the click
    page.locator('[data-testid="stDataFrame"]').last.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=ARTIFACTS / "theme_learn_toys_light.png")
    page.locator(".katex").filter(has_text="K(w)").first.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=ARTIFACTS / "theme_learn_formula_light.png")
