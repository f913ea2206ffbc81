"""Run history (llc_core/history.py) and the run's downloads (llc_core/results.py): saved, loaded,
bounded, deleted, corrupt files skipped, bad ids refused; CSV columns and names; resolved nβ."""

import json

import numpy as np
import pytest

from llc_core import history
from llc_core.config import InputError, SGLDConfig
from llc_core.sampler import estimate_llc
from llc_core.toys import parse_toy

from tests.test_browser import playwright, server  # noqa: F401  (fixtures of the browser test below)

BROWSER = "A" * 20


@pytest.fixture(scope="module")
def result():
    """A short real run of a known-λ toy (nβ auto, so config.nbeta is None)."""
    task = parse_toy("crossing:1")
    return estimate_llc(task, task.defaults.replace(chains=2, draws=120, burnin=20, device="cpu"))


def record(result, model="toy:crossing:1"):
    return history.run_record(result, model, "crossing:1", "done")


def test_save_then_load_round_trips_numbers_settings_and_traces(tmp_path, result):
    saved = record(result)
    history.save_run(BROWSER, saved, root=tmp_path)
    runs, problems = history.load_runs(BROWSER, root=tmp_path)
    assert problems == [] and len(runs) == 1
    run = runs[0]
    assert run["lambda_hat"] == pytest.approx(result.lambda_hat)
    assert run["mcse"] == pytest.approx(result.lambda_hat_se)
    assert run["rhat"] == pytest.approx(result.diagnostics["rhat"])
    assert run["settings"]["nbeta"] == "auto" and run["settings"]["draws"] == 120
    assert run["nbeta"] == pytest.approx(result.nbeta)
    loss = np.array(run["traces"]["loss"], dtype=float)
    assert loss.shape == (2, len(run["traces"]["steps"])) and 0 < loss.shape[1] <= history.HISTORY_TRACE_POINTS
    # the stored loss is the plotted one, L_m − L_n(w*), at the kept steps
    first = list(result.traces["steps"]).index(run["traces"]["steps"][0])
    assert loss[0, 0] == pytest.approx(result.traces["loss"][0, first] - result.init_loss)
    assert not list(tmp_path.glob("**/*.tmp"))  # the atomic write left no temporary file


def test_history_keeps_only_the_newest_runs(tmp_path, result):
    ids = []
    for _ in range(5):
        r = record(result)
        ids.append(r["id"])
        history.save_run(BROWSER, r, root=tmp_path, keep=3)
    runs, _ = history.load_runs(BROWSER, root=tmp_path)
    assert [r["id"] for r in runs] == ids[::-1][:3]  # newest first, oldest two deleted


def test_delete_one_and_clear_all(tmp_path, result):
    a, b = record(result), record(result)
    for r in (a, b):
        history.save_run(BROWSER, r, root=tmp_path)
    assert history.delete_run(BROWSER, a["id"], root=tmp_path)
    assert [r["id"] for r in history.load_runs(BROWSER, root=tmp_path)[0]] == [b["id"]]
    assert not history.delete_run(BROWSER, a["id"], root=tmp_path)
    assert history.clear_runs(BROWSER, root=tmp_path) == 1
    assert history.load_runs(BROWSER, root=tmp_path) == ([], [])


def test_corrupt_files_are_skipped_with_a_message(tmp_path, result):
    good = record(result)
    history.save_run(BROWSER, good, root=tmp_path)
    folder = tmp_path / BROWSER
    (folder / "20250101T000000000000-deadbeef.json").write_text('{"id": "trunc')
    (folder / "20250101T000000000001-deadbeef.json").write_text(json.dumps({"id": "x"}))
    (folder / "20250101T000000000002-deadbeef.json").write_bytes(b"\xff\xfe")
    runs, problems = history.load_runs(BROWSER, root=tmp_path)
    assert [r["id"] for r in runs] == [good["id"]]
    assert len(problems) == 3
    assert any("000000000000-deadbeef.json" in p and "not valid JSON" in p for p in problems)
    assert any("missing field(s)" in p for p in problems)


def test_bad_browser_and_run_ids_are_refused(tmp_path, result):
    for bad in ("../etc", "short", "a/b" * 10, "", None, "x" * 65, "ok_id_but_with space"):
        with pytest.raises(InputError, match="browser id"):
            history.load_runs(bad, root=tmp_path)
    with pytest.raises(InputError, match="run id"):
        history.delete_run(BROWSER, "../../secret", root=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing was created for a refused id
    assert history.check_browser_id(history.new_browser_id())


def test_two_browsers_never_see_each_others_runs(tmp_path, result):
    history.save_run(BROWSER, record(result), root=tmp_path)
    assert history.load_runs("B" * 20, root=tmp_path) == ([], [])


def test_settings_diff_lists_only_what_differs(result):
    a, b = record(result), record(result, model="toy:crossing:2")
    b["settings"] = {**a["settings"], "epsilon": 2e-3, "nbeta": "2x"}
    assert history.settings_diff(a, b) == [("model", "toy:crossing:1", "toy:crossing:2"),
                                           ("epsilon", a["settings"]["epsilon"], 2e-3),
                                           ("nbeta", "auto", "2x")]
    assert history.settings_diff(a, a) == []


def test_json_carries_the_resolved_nbeta(result):
    out = result.to_json_dict()
    assert result.config.nbeta is None and out["config"]["nbeta"] == pytest.approx(result.nbeta)
    assert SGLDConfig.from_dict(out["config"]) == result.config.replace(nbeta=result.nbeta)  # reruns it


def test_download_csv_has_settings_columns_and_the_plotted_loss(result):
    frame = result.download_frame("toy:crossing:1")
    assert list(frame.columns[:3]) == ["model", "sampler", "epsilon"]
    assert (frame["model"] == "toy:crossing:1").all() and (frame["nbeta"] == result.nbeta).all()
    assert np.allclose(frame["loss_minus_init_loss"], frame["minibatch_loss"] - result.init_loss, equal_nan=True)
    assert {"running_lambda_hat", "chain", "step", "gamma", "draws"} <= set(frame.columns)


def test_download_names_follow_model_and_settings(result):
    stem = result.file_stem("toy:crossing:1")
    assert stem.startswith("llc_toy-crossing-1_sgld_eps") and "_2x120_" in stem and stem.endswith("seed0")
    other = result.file_stem("mnist1d_cnn_k10_s0")
    assert other != stem and "/" not in other


# -- the History page (AppTest) ---------------------------------------------------------------

def saved_runs(result, browser, epsilons):
    """Runs saved for `browser` in the tests' history folder, one per ε (oldest first)."""
    records = []
    for eps in epsilons:
        r = record(result)
        r["settings"] = {**r["settings"], "epsilon": eps}
        history.save_run(browser, r)
        records.append(r)
    return records


def open_history(at, browser):
    at.session_state["browser_id"] = browser
    at.switch_page("pages/history.py").run()
    assert not at.exception, at.exception
    return at


def test_history_page_table_overlay_and_diff(app, result):
    browser = history.new_browser_id()
    old, new = saved_runs(result, browser, [1e-4, 3e-4])
    open_history(app, browser)
    table = app.dataframe[0].value
    assert list(table["ε"]) == [3e-4, 1e-4] and list(table["status"]) == [result.status] * 2
    assert table["λ̂"].iloc[0] == pytest.approx(result.lambda_hat)
    assert app.multiselect(key="history_overlay").value == [new["id"], old["id"]]
    assert app.get("plotly_chart")  # the overlay
    diff = app.table[0].value
    assert list(diff["setting"]) == ["epsilon"]
    app.selectbox(key="history_diff_b").set_value(new["id"]).run()
    assert any(i.value == "Same model and settings." for i in app.info)


def test_history_page_load_sends_the_settings_to_estimate(app, result):
    browser = history.new_browser_id()
    run = saved_runs(result, browser, [3e-4])[0]
    run_settings = run["settings"]
    open_history(app, browser)
    app.button(key="history_load").click().run()
    assert not app.exception, app.exception
    assert app.selectbox(key="model").value == "toy:crossing:1"
    assert app.select_slider(key="epsilon").value == pytest.approx(3e-4)
    assert app.number_input(key="draws").value == run_settings["draws"] == 120
    assert app.text_input(key="nbeta").value == "auto"
    assert any("Settings loaded from the run of" in s.value for s in app.success)


def test_history_page_delete_one_and_clear_all(app, result):
    browser = history.new_browser_id()
    old, new = saved_runs(result, browser, [1e-4, 3e-4])
    open_history(app, browser)
    app.selectbox(key="history_pick").set_value(new["id"]).run()
    app.button(key="history_delete").click().run()
    assert [r["id"] for r in history.load_runs(browser)[0]] == [old["id"]]
    assert len(app.dataframe[0].value) == 1
    assert app.button(key="history_clear").disabled  # not without the tick
    app.checkbox(key="history_confirm_clear").check().run()
    app.button(key="history_clear").click().run()
    assert not app.exception, app.exception
    assert history.load_runs(browser) == ([], [])
    assert any("No runs yet" in i.value for i in app.info)


def test_history_page_skips_a_corrupt_file_and_keeps_working(app, result):
    browser = history.new_browser_id()
    saved_runs(result, browser, [1e-4])
    (history.browser_folder(browser) / "20200101T000000000000-00000000.json").write_text("{oops")
    open_history(app, browser)
    assert any("Skipped the history file 20200101T000000000000-00000000.json" in w.value for w in app.warning)
    assert len(app.dataframe[0].value) == 1


def test_a_malformed_browser_id_is_replaced_not_used(app):
    """An id that could name another folder ("../..") is never used: the session gets a fresh one."""
    app.session_state["browser_id"] = "../../etc"
    open_history(app, "../../etc")
    fresh = app.session_state["browser_id"]
    assert fresh != "../../etc" and history.check_browser_id(fresh)
    assert any("No runs yet" in i.value for i in app.info)


def test_an_estimate_run_lands_in_the_history(app):
    from tests.test_app import configure, run_to_end

    browser = history.new_browser_id()
    app.session_state["browser_id"] = browser
    configure(app, "toy:crossing:1", chains=2, draws=60, burnin=10)
    assert "finished" in run_to_end(app)
    app.run()  # a poll after the end must not save it twice
    runs, _ = history.load_runs(browser)
    assert len(runs) == 1 and runs[0]["model"] == "toy:crossing:1" and runs[0]["settings"]["draws"] == 60
    open_history(app, browser)
    assert len(app.dataframe[0].value) == 1


# -- in a real browser: the id lives in a cookie, so the history survives a reload ------------

def test_history_survives_a_reload_and_stays_with_its_browser(server, playwright):
    """Chromium: a run finishes, the tab reloads on History and finds it; a second browser
    (its own cookies) sees none. Also screenshots of the diverged panel and the trace views."""
    from playwright.sync_api import expect

    from tests.test_browser import ARGS, ARTIFACTS, CHROMIUM

    ARTIFACTS.mkdir(exist_ok=True)
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    mine = browser.new_context(viewport={"width": 1280, "height": 720})
    page = mine.new_page()
    page.goto(f"{server}/?model=toy:crossing:1&chains=2&draws=200&burnin=20")
    run = page.locator(".st-key-run button")
    expect(run).to_be_enabled(timeout=90_000)
    run.click()
    expect(page.get_by_text("Status:")).to_contain_text("finished", timeout=120_000)
    for label, ending in (("Download run (JSON)", ".json"), ("Download traces (CSV)", "_traces.csv")):
        with page.expect_download() as download:
            page.get_by_role("button", name=label).click()
        name = download.value.suggested_filename
        assert name.startswith("llc_toy-crossing-1_sgld_eps") and "_2x200_b20_seed0" in name and name.endswith(ending)
    header = open(download.value.path(), encoding="utf-8").readline()
    assert header.startswith("model,sampler,epsilon,gamma,nbeta,") and "loss_minus_init_loss" in header
    chart = page.locator(".js-plotly-plot").first
    for view, title in (("Per chain", "one panel per chain"), ("Rank plot", "Rank plot"), ("Density", "Density")):
        page.get_by_text(view, exact=True).first.click()
        expect(chart.locator(".gtitle").first).to_contain_text(title, timeout=30_000)
        chart.screenshot(path=ARTIFACTS / f"estimate_{view.split()[0].lower()}.png")
    assert any(c["name"] == "llc_lab_browser" for c in mine.cookies())
    page.goto(f"{server}/history")  # a new session of the same browser
    expect(page.get_by_text("Overlay", exact=True)).to_be_visible(timeout=60_000)
    expect(page.locator('[data-testid="stDataFrame"]')).to_be_visible()
    page.screenshot(path=ARTIFACTS / "history.png", full_page=True)
    other = browser.new_context().new_page()
    other.goto(f"{server}/history")
    expect(other.get_by_text("No runs yet", exact=False)).to_be_visible(timeout=60_000)
    page.goto(f"{server}/?model=toy:crossing:1&epsilon=1.0e-01&chains=4&draws=100&burnin=0")
    expect(run).to_be_enabled(timeout=90_000)
    run.click()
    expect(page.get_by_text("Status:")).to_contain_text("finished", timeout=60_000)
    expect(page.get_by_text("No λ̂: 4 of 4 chains diverged")).to_be_visible()
    expect(page.get_by_text("not valid", exact=True)).to_be_visible()  # the λ̂ metric, drawn (not a skeleton)
    expect(page.get_by_text("finished early, at step", exact=False)).to_be_visible()
    page.screenshot(path=ARTIFACTS / "estimate_all_diverged.png")
    expect(chart.locator(".annotation-text").filter(has_text="diverged at step")).to_have_count(1)
    chart.screenshot(path=ARTIFACTS / "estimate_all_diverged_chart.png")
    browser.close()
