"""Issue 13, AppTest: Reset buttons, links that carry every setting and reproduce a run bit for bit,
uploaded models with their own defaults and name, and the Estimate page's pointer to Learn."""

import json
import re
import time
from functools import partial

from tests.conftest import wait_for as wait_for_shared
import urllib.parse

import streamlit as st
import streamlit.testing.v1.app_test as app_test_module
from streamlit.testing.v1 import AppTest

from llc_core.checkpoints import CACHE_DIR, load_task
from llc_core.toys import parse_toy
from pages.controls import DEVICE_KEY, HYPER_KEYS, defaults_for
from pages.models import cached_task
from tests.conftest import ROOT
from tests.test_browser import playwright, server  # noqa: F401 (fixtures: one streamlit server for this module)

EVERY_KEY = {"model", DEVICE_KEY, *HYPER_KEYS}


class RecordingStorage(app_test_module.MemoryMediaFileStorage):
    """The in-memory file storage AppTest uses, keeping what each download button would serve."""
    files: dict = {}

    def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
        file_id = super().load_and_get_id(path_or_data, mimetype, kind, filename)
        RecordingStorage.files[file_id] = path_or_data
        return file_id


def session(params: dict | None = None, page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(params or {})
    at.run()
    if page:
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def set_values(at, **values):
    kinds = (at.select_slider, at.slider, at.number_input, at.text_input, at.selectbox, at.multiselect)
    for key, value in values.items():
        next(w for w in kinds if any(x.key == key for x in w))(key=key).set_value(value)
    at.run()
    assert not at.exception, at.exception


wait_for = partial(wait_for_shared, timeout=120, poll=0.3)  # this file's runs need up to 120 s


def the_link(at) -> dict:
    """The query of the link in the Copy link box, as a dict."""
    links = [c.value for c in at.code if "?model=" in c.value]
    assert len(links) == 1, [c.value for c in at.code]
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(links[0]).query))


def run_json(at) -> dict:
    """Run to the end; the run's JSON download (exact floats)."""
    at.button(key="run").click().run()
    wait_for(at, lambda a: any(b.proto.label == "Download run (JSON)" for b in a.get("download_button")),
             what="the run to finish")
    url = next(b.proto.url for b in at.get("download_button") if b.proto.label == "Download run (JSON)")
    return json.loads(RecordingStorage.files[url.rsplit("/", 1)[1].split(".")[0]])


# -- Reset buttons ----------------------------------------------------------------------------

def test_estimate_reset_puts_back_the_model_defaults(app):
    set_values(app, model="toy:crossing:2")
    set_values(app, gamma=1000.0, chains=3, draws=110, nbeta="2x", seed=9)
    app.button(key="reset").click().run()
    assert not app.exception, app.exception
    wanted = defaults_for(cached_task("toy:crossing:2"))
    assert {k: app.session_state[k] for k in wanted} == wanted
    assert app.query_params["gamma"] == f"{wanted['gamma']:g}" and app.query_params["seed"] == "0"


def test_compare_reset_puts_back_settings_safe_for_both(app):
    app.switch_page("pages/compare.py").run()
    app.radio(key="cmp_mode").set_value("shared settings").run()  # Reset belongs to the shared mode
    keys = ["cmp_" + k for k in HYPER_KEYS]
    wanted = {k: app.session_state[k] for k in keys}  # shared mode opens at the settings safe for both
    assert wanted["cmp_epsilon"] == 1e-4  # the smaller of the MLP's and CNN's ε
    set_values(app, cmp_epsilon=1e-3, cmp_gamma=5.0, cmp_chains=2)
    app.button(key="cmp_reset").click().run()
    assert not app.exception, app.exception
    assert {k: app.session_state[k] for k in keys} == wanted


def test_calibrate_reset_puts_back_the_pilot_grid():
    at = session({"cal_model": "toy:crossing:2"}, page="calibrate")
    keys = ["cal_epsilons", "cal_gammas", "cal_nbeta_mults", "cal_chains", "cal_draws", "cal_burnin"]
    wanted = {k: at.session_state[k] for k in keys}  # a new model opens at its pilot grid
    set_values(at, cal_epsilons=[1e-3], cal_gammas=[5.0], cal_chains=1, cal_draws=60)
    at.button(key="cal_reset").click().run()
    assert not at.exception, at.exception
    assert {k: at.session_state[k] for k in keys} == wanted and wanted["cal_draws"] != 60


# -- links ------------------------------------------------------------------------------------

def test_the_url_carries_every_setting_from_the_start_and_after_each_move(app):
    assert EVERY_KEY <= set(app.query_params)
    set_values(app, model="toy:crossing:1")
    set_values(app, chains=3)
    assert EVERY_KEY <= set(app.query_params) and app.query_params["chains"] == "3"
    set_values(app, noise_scale=0.3)
    assert app.query_params["noise_scale"] == repr(0.3) and app.query_params["chains"] == "3"
    assert the_link(app) == {k: app.query_params[k] for k in app.query_params}


def test_a_link_opened_in_a_fresh_session_reproduces_the_same_lambda_bit_for_bit(monkeypatch):
    monkeypatch.setattr(app_test_module, "MemoryMediaFileStorage", RecordingStorage)
    st.cache_resource.clear()
    first = session({"model": "toy:crossing:2"})
    set_values(first, epsilon=3e-4, gamma=2.0, chains=2, draws=80, burnin=10, seed=7, nbeta="2x",
               noise_scale=0.9, thin=2)
    link = the_link(first)
    original = run_json(first)["result"]
    fresh = session(link)
    assert fresh.session_state["epsilon"] == 3e-4 and fresh.session_state["noise_scale"] == 0.9
    again = run_json(fresh)["result"]
    st.cache_resource.clear()
    assert again["lambda_hat_per_chain"] == original["lambda_hat_per_chain"]
    assert again["lambda_hat"] == original["lambda_hat"] and again["config"] == original["config"]


def test_settings_loaded_from_calibrate_are_all_in_the_url():
    at = session({"cal_model": "toy:crossing:2"}, page="calibrate")
    set_values(at, cal_epsilons=[3e-4], cal_gammas=[2.0], cal_nbeta_mults=[2.0], cal_chains=1, cal_draws=30,
               cal_burnin=0)
    at.button(key="cal_run").click().run()
    wait_for(at, lambda a: any(b.key == "cal_load" for b in a.button), what="the sweep")
    at.button(key="cal_load").click().run()
    assert not at.exception and at.title[0].value == "Estimate λ̂"
    assert EVERY_KEY <= set(at.query_params)
    assert (at.query_params["model"], at.query_params["epsilon"], at.query_params["gamma"],
            at.query_params["nbeta"]) == ("toy:crossing:2", "3.0e-04", "2", "2x")


def test_bad_values_in_a_link_are_named_and_replaced_in_the_url():
    at = session({"model": "toy:crossing:1", "chains": "999", "epsilon": "nan"})
    warnings = " ".join(w.value for w in at.warning)
    assert "Ignored chains='999'" in warnings and "Ignored epsilon='nan'" in warnings
    wanted = defaults_for(parse_toy("crossing:1"))
    assert at.query_params["chains"] == str(wanted["chains"]) and at.query_params["epsilon"] != "nan"


# -- uploaded models ----------------------------------------------------------------------------

def upload(at, name: str):
    files = [(f"{name}{suffix}", (CACHE_DIR / f"{name}{suffix}").read_bytes(), "application/octet-stream")
             for suffix in (".safetensors", ".json")]
    at.file_uploader(key="model_upload_files").set_value(files).run()
    assert not at.exception, at.exception


def test_an_upload_gets_its_own_defaults_its_name_and_a_link_that_says_it_cannot_be_shared(app):
    set_values(app, model="toy:crossing:1")
    set_values(app, epsilon=7e-5, gamma=20.0, chains=5)
    set_values(app, model="upload")
    upload(app, "mnist1d_mlp_k2_s0")
    wanted = defaults_for(load_task(CACHE_DIR / "mnist1d_mlp_k2_s0.safetensors"))
    assert {k: app.session_state[k] for k in wanted} == wanted  # not crossing:1's ε = 7e-5
    assert any("Uploaded **mnist1d_mlp_k2_s0.safetensors**" in c.value for c in app.caption)
    assert app.query_params["model"] == "upload"
    assert any("(**mnist1d_mlp_k2_s0.safetensors**)" in w.value and "cannot be shared" in w.value
               for w in app.warning)
    set_values(app, chains=2)  # a second upload is a new model: its own defaults again
    upload(app, "mnist1d_cnn_k2_s0")
    assert app.session_state["epsilon"] == defaults_for(load_task(CACHE_DIR / "mnist1d_cnn_k2_s0.safetensors"))[
        "epsilon"] and app.session_state["chains"] == wanted["chains"]


def test_a_link_to_an_upload_says_the_files_must_be_uploaded_again():
    at = session({"model": "upload", "chains": "3"})
    assert any("a link cannot carry it" in i.value for i in at.info)
    assert any("An uploaded model lives only in this browser session" in w.value for w in at.warning)
    assert at.selectbox(key="model").value == "upload"


# -- room-ready Estimate ------------------------------------------------------------------------

def test_estimate_says_what_lambda_is_and_links_to_learn(app):
    assert any("local learning coefficient" in m.value for m in app.markdown)
    links = app.get("page_link")
    assert any(link.proto.page == "pages/learn.py" or "learn" in link.proto.page for link in links)


# -- in a real browser, at a projector's 1280×720 -------------------------------------------------

def test_in_the_browser_at_1280x720_run_is_above_the_fold_copy_link_and_reset_work(server, playwright):
    from playwright.sync_api import expect

    from tests.test_browser import ARGS, ARTIFACTS, CHROMIUM

    ARTIFACTS.mkdir(exist_ok=True)
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{server}/?model=toy:crossing:1&chains=2&draws=150&burnin=0")
        run = page.locator(".st-key-run button")
        expect(run).to_be_enabled(timeout=90_000)
        box = run.bounding_box()
        assert box["y"] + box["height"] <= 720, box  # visible without scrolling
        expect(page.get_by_role("link", name="How λ̂ works: Learn")).to_be_in_viewport()
        page.screenshot(path=ARTIFACTS / "estimate_1280x720.png")
        page.get_by_role("button", name="Copy link").click()
        link = page.locator('[data-testid="stCode"]').first.inner_text().replace("\n", "")
        page.screenshot(path=ARTIFACTS / "estimate_copy_link.png")
        assert link.startswith(f"{server}/?model=toy:crossing:1&chains=2&draws=150&burnin=0&")
        assert EVERY_KEY <= set(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query)))
        page.keyboard.press("Escape")
        page.locator(".st-key-reset button").click()
        expect(page.locator(".st-key-draws input")).to_have_value("2000", timeout=15_000)
        expect(page).to_have_url(re.compile(r"[?&]draws=2000(&|$)"))
        assert "chains=32" in page.url  # every key, not only the one that moved
        expect(page.get_by_text("Traceback")).to_have_count(0)
    finally:
        browser.close()
