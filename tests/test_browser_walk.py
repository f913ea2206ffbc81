"""Walk every page of the dashboard in real Chromium at 1280×720 (a projector), light and dark.

Screenshots of every page in both themes land in tests/artifacts/walk_<theme>_<page>.png; then every
button a page shows on arrival is pressed, one per fresh visit, and the page must not show an
exception afterwards. The pages come from the sidebar navigation, so a new page is walked without
editing this file. Buttons that only appear after a run (Stop, Load, downloads of a result) are
pressed by the page tests and tests/test_browser.py.
"""

import os
import re

import pytest
from playwright.sync_api import expect

from tests.test_browser import ARGS, ARTIFACTS, CHROMIUM, playwright, server  # noqa: F401 (fixtures)

VIEWPORT = {"width": 1280, "height": 720}
BUTTONS = ('[data-testid="stButton"] button, [data-testid="stDownloadButton"] button, '
           '[data-testid="stFormSubmitButton"] button')
SETTLE_MS = 1500  # after a click: long enough for the rerun it triggers to draw (or to raise)


@pytest.fixture(scope="module")
def browser(server, playwright):  # noqa: F811
    assert os.path.exists(CHROMIUM), "Debian's chromium is missing: `make test` installs it"
    ARTIFACTS.mkdir(exist_ok=True)
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield browser
    browser.close()


def wait_until_idle(page, timeout_ms=60_000):
    """Until the script run the visit started has finished and no other follows within a second.

    Reads the run state Streamlit writes on its app root for tests (`data-test-script-state`:
    initial, running, notRunning, ...). The status widget ("Running…") it replaced shows only once a
    run has lasted a while, so a page whose run had not yet shown it passed for idle with its sidebar
    still empty (CI, 2026-12-07: the Estimate page's buttons were never found)."""
    app = page.locator('[data-testid="stApp"]')
    quiet_ms, waited = 0, 0
    while quiet_ms < 1000 and waited < timeout_ms:
        idle = app.count() and app.first.get_attribute("data-test-script-state") == "notRunning"
        quiet_ms = quiet_ms + 250 if idle else 0
        page.wait_for_timeout(250)
        waited += 250
    assert quiet_ms >= 1000, f"{page.url}: the script still runs after {timeout_ms / 1000:.0f} s"


def open_page(page, url):
    page.goto(url)
    expect(page.locator('[data-testid="stSidebarNav"]')).to_be_visible(timeout=60_000)
    wait_until_idle(page)


def assert_no_exception(page, where):
    shown = page.locator('[data-testid="stException"]')
    assert shown.count() == 0, f"{where}: {shown.first.inner_text()[:1500]}"


def page_urls(page, server):  # noqa: F811
    open_page(page, server)
    hrefs = page.locator('[data-testid="stSidebarNav"] a').evaluate_all("links => links.map(a => a.href)")
    assert len(hrefs) >= 6, hrefs
    return hrefs


def slug(url, server):  # noqa: F811
    return url.removeprefix(server).strip("/") or "estimate"


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_page_renders_without_error_at_projector_size(server, browser, theme):  # noqa: F811
    context = browser.new_context(viewport=VIEWPORT, color_scheme=theme)
    page = context.new_page()
    for url in page_urls(page, server):
        open_page(page, url)
        assert_no_exception(page, url)
        page.screenshot(path=ARTIFACTS / f"walk_{theme}_{slug(url, server)}.png")
        background = page.evaluate("getComputedStyle(document.querySelector('.stApp')).backgroundColor")
        dark = sum(map(int, re.findall(r"\d+", background)[:3])) < 3 * 128
        assert dark == (theme == "dark"), (url, theme, background)  # the app follows the browser's theme
    context.close()


def test_every_button_on_every_page_can_be_pressed(server, browser):  # noqa: F811
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    pressed = []
    for url in page_urls(page, server):
        open_page(page, url)
        buttons = page.locator(BUTTONS)
        # Pressable on arrival; the others sit inside a closed expander or popover, or are disabled
        # until a run. Found once per page: a visit to check each (2 s apiece) found ten of them.
        pressable = [i for i in range(buttons.count()) if buttons.nth(i).is_visible() and buttons.nth(i).is_enabled()]
        for n, index in enumerate(pressable):
            if n:
                open_page(page, url)  # a fresh visit per button: each press starts from the page as it arrives
            button = page.locator(BUTTONS).nth(index)
            label = button.inner_text().strip()
            button.click()
            page.wait_for_timeout(SETTLE_MS)
            assert_no_exception(page, f"{url} after pressing {label!r}")
            pressed.append((slug(url, server), label))
    context.close()
    pages = {p for p, _ in pressed}
    assert {"estimate", "calibrate", "learn", "train"} <= pages, pressed
    assert len(pressed) >= 12, pressed
