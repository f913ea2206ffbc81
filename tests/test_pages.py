"""AppTest coverage of the pages beyond Estimate: each page's main path and its error path."""

import re
import time
from functools import partial

from tests.conftest import texts, wait_for as wait_for_shared

import pytest

import llc_core.calibrate as calibrate
from llc_core.checkpoints import CACHE_DIR


def open_page(at, page):
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


wait_for = partial(wait_for_shared, timeout=180)  # this file's runs need up to 180 s




def set_values(at, **values):
    for key, value in values.items():
        kinds = (at.select_slider, at.slider, at.number_input, at.text_input, at.selectbox, at.multiselect,
                 at.checkbox)
        widget = next(w for w in kinds if any(x.key == key for x in w))
        widget(key=key).set_value(value)
    at.run()
    assert not at.exception, at.exception


def cached_models_snapshot():
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in CACHE_DIR.iterdir())


# -- MLP vs CNN ----------------------------------------------------------------------------

def test_compare_defaults_to_mlp_and_cnn_and_runs_both(app):
    open_page(app, "compare")
    a, b = app.selectbox(key="cmp_a").value, app.selectbox(key="cmp_b").value
    # A is the MLP, as the page's title "MLP vs CNN" reads (issue 13)
    assert "_mlp_" in a and "_cnn_" in b and a.split("_mlp_")[1] == b.split("_cnn_")[1]  # same K and seed
    app.radio(key="cmp_mode").set_value("shared settings").run()
    assert app.select_slider(key="cmp_epsilon").value == 1e-4  # the smaller of the two defaults
    set_values(app, cmp_chains=2, cmp_draws=60, cmp_burnin=0)
    app.button(key="cmp_run").click().run()
    # the difference is a bold headline only when both runs are clean; else a warning says so
    wait_for(app, lambda at: any("A − B =" in t for t in texts(at)), what="comparison")
    table = app.dataframe[0].value
    assert list(table["run"]) == ["done", "done"]
    assert table["status"].isin(["ok", "warning", "negative", "diverged"]).all()
    assert table["parameters"].tolist() == [15_210, 16_618]
    assert any("chains used" == m.label and m.value == "2 / 2" for m in app.metric)


def test_compare_bad_nbeta_is_an_error_and_nothing_runs(app):
    open_page(app, "compare")
    app.radio(key="cmp_mode").set_value("shared settings").run()
    set_values(app, cmp_nbeta="-3")
    assert any("nbeta" in e.value and "-3" in e.value for e in app.error)
    assert app.button(key="cmp_run").disabled


# -- Calibrate -----------------------------------------------------------------------------

def test_calibrate_sweep_fills_heatmap_and_loads_a_cell_into_estimate(app):
    open_page(app, "calibrate")
    set_values(app, cal_model="toy:crossing:1")
    set_values(app, cal_epsilons=[1e-5, 1e-4], cal_gammas=[1.0, 10.0], cal_chains=2, cal_draws=50, cal_burnin=0)
    app.button(key="cal_run").click().run()
    wait_for(app, lambda at: any("Sweep finished: 4 cells" in t for t in texts(at)), what="sweep")
    cells = app.dataframe[0].value
    assert len(cells) == 4 and set(cells["ε"]) == {1e-5, 1e-4} and set(cells["γ"]) == {1.0, 10.0}
    assert cells["verdict"].isin(["ok", "unstable", "negative", "diverged"]).all()
    assert len(app.get("plotly_chart")) >= 1
    labels = app.selectbox(key="cal_pick").options
    for _, row in cells.iterrows():  # "(ok)" only on a cell with no flag; a flagged one names its flags
        label = next(lb for lb in labels if f"ε {row['ε']:.1e} · γ {row['γ']:g} " in lb)
        assert ("(ok)" in label) == (row["verdict"] == "ok" and not row["flags"]), label
        assert all(code in label for code in filter(None, row["flags"].split(", "))), label
    pick = next(i for i, label in enumerate(labels) if "ε 1.0e-04 · γ 10" in label)
    app.selectbox(key="cal_pick").set_value(pick).run()
    app.button(key="cal_load").click().run()
    assert app.title[0].value == "Estimate λ̂"
    assert app.select_slider(key="epsilon").value == 1e-4
    assert app.select_slider(key="gamma").value == 10.0
    assert app.selectbox(key="model").value == "toy:crossing:1"
    assert any("Settings loaded from Calibrate" in s.value for s in app.success)


def test_calibrate_oversized_sweep_is_refused(app):
    open_page(app, "calibrate")
    set_values(app, cal_model="toy:crossing:1")
    assert "1 parameter · n = 10,000 training points" in [c.value for c in app.caption]  # not "1 parameters"
    from pages.controls import EPS_GRID, GAMMA_GRID
    set_values(app, cal_epsilons=EPS_GRID[:8], cal_gammas=[g for g in GAMMA_GRID if g > 0][:8])
    assert any("64 cells is too large" in e.value and "at most 60" in e.value for e in app.error)
    assert app.button(key="cal_run").disabled


def test_calibrate_stop_keeps_partial_cells(app):
    open_page(app, "calibrate")
    set_values(app, cal_model="toy:crossing:1")
    set_values(app, cal_epsilons=[1e-5, 3e-5, 1e-4], cal_gammas=[1.0, 10.0], cal_chains=2, cal_draws=3000,
               cal_burnin=0)
    app.button(key="cal_run").click().run()
    wait_for(app, lambda at: len(at.dataframe) > 0, what="first cell")
    app.button(key="cal_stop").click().run()
    wait_for(app, lambda at: any("partial sweep" in t for t in texts(at)), timeout=15, what="stop")
    assert 1 <= len(app.dataframe[0].value) < 6


def test_auto_calibrate_recommends_and_sends_settings(app, monkeypatch):
    """Page wiring of auto-calibrate, with shortened pilot and full-length runs (its accuracy
    is tested on the full procedure in test_calibrate.py)."""
    open_page(app, "calibrate")
    set_values(app, cal_model="toy:crossing:1")
    set_values(app, cal_full_chains=4, cal_full_draws=500)  # full runs of 4 × 500 draws, pilots a fifth
    set_values(app, cal_budget=90)  # the page's budget reaches the search: it ends by then
    app.button(key="cal_auto").click().run()
    wait_for(app, lambda at: any("Recommended: ε" in s or "No recommendation" in s for s in texts(at)),
             timeout=300, what="recommendation")
    assert any("Recommended: ε" in s for s in texts(app)), texts(app)
    searched = next(re.search(r"searched for (\d+) s of its 90 s budget", t) for t in texts(app) if "searched for" in t)
    assert int(searched.group(1)) <= 90 + 5  # the deadline cuts a run under way (plus the wrap-up)
    assert any("Pilot bracket" in t for t in texts(app)) and any("status **" in t for t in texts(app))
    cells = app.dataframe[0].value
    # the ε ladder: every cell on it, at least two rungs (a rung too short to judge is rerun longer)
    assert 2 <= len(cells) <= calibrate.MAX_PILOT_CELLS and cells["ε"].nunique() >= 2
    assert all(any(abs(e - rung) <= 1e-9 * rung for rung in calibrate.LADDER) for e in cells["ε"])
    app.button(key="cal_use_recommended").click().run()
    assert app.title[0].value == "Estimate λ̂"
    assert app.select_slider(key="epsilon").value > 0


# -- Task variability ----------------------------------------------------------------------

def test_variability_fits_a_line_and_revisits_from_the_cache(app, monkeypatch, tmp_path):
    monkeypatch.setenv("LLC_CACHE_DIR", str(tmp_path))
    open_page(app, "variability")
    set_values(app, var_archs=["MLP"], var_draws=50, var_chains=1)
    app.button(key="var_run").click().run()
    # the finished caption ("27 of 27 runs · …"), not the progress bar's last "27 of 27 runs done · running …",
    # while which Run is still disabled (the second click below failed on a loaded machine)
    wait_for(app, lambda at: any("27 of 27 runs ·" in c for c in texts(at)), timeout=300, what="27 runs")
    fits = app.dataframe[0].value
    assert list(fits["architecture"]) == ["MLP"] and fits["runs"].iloc[0] == 27
    assert fits["slope dλ̂/dK"].iloc[0] == fits["slope dλ̂/dK"].iloc[0]  # a number, not NaN
    assert len(list((tmp_path / "runs").glob("*.json"))) == 27
    started = time.time()
    app.button(key="var_run").click().run()
    wait_for(app, lambda at: any("27 from the cache" in c for c in texts(at)), timeout=60, what="cached rerun")
    assert time.time() - started < 30


def test_variability_without_checkpoints_says_how_to_get_them(app, monkeypatch, tmp_path):
    monkeypatch.setattr("llc_core.checkpoints.CACHE_DIR", tmp_path)
    open_page(app, "variability")
    assert any("No MNIST-1D checkpoints" in e.value and "make models" in e.value for e in app.error)


# -- Learn ---------------------------------------------------------------------------------

@pytest.mark.parametrize("demo, word", [("diverge", "diverged"), ("untrained", "negative"),
                                        ("few_draws", "not_stationary"), ("big_step", "step_bias")])
def test_learn_demo_provokes_its_flag(app, demo, word):
    open_page(app, "learn")
    assert any("n\\beta" in e.body for e in app.get("latex"))
    app.button(key=f"learn_{demo}").click().run()
    wait_for(app, lambda at: any("finished" in m.value for m in at.markdown if m.value.startswith("Status:")),
             what=f"{demo} demo")
    flagged = [*app.error, *app.warning]
    assert any(f"**{word}**" in f.value and "Fix:" in f.value for f in flagged)


def test_learn_lists_toys_with_their_lambda_and_finite_n_target(app):
    open_page(app, "learn")
    table = next(d.value for d in app.dataframe if "finite-n target" in d.value.columns)
    row = table[table["toy"] == "crossing:1,1"].iloc[0]
    assert row["λ"] == 0.5 and row["multiplicity"] == 2 and row["finite-n target"] < 0.5


def test_learn_toy_estimate_can_be_stopped(app):
    open_page(app, "learn")
    app.selectbox(key="learn_toy").set_value("crossing:1").run()
    app.button(key="learn_toy_run").click().run()
    assert any("calibrated defaults" in m.value for m in app.markdown)
    app.button(key="learn_stop").click().run()
    wait_for(app, lambda at: any("stopped (partial result)" in m.value for m in at.markdown), timeout=15,
             what="stop")
    assert any("True λ = 0.5" in c.value for c in app.caption)


# -- Train ---------------------------------------------------------------------------------

def test_train_saves_to_user_models_and_joins_the_model_list(app, monkeypatch, tmp_path):
    monkeypatch.setenv("LLC_USER_MODELS", str(tmp_path))
    before = cached_models_snapshot()
    open_page(app, "train")
    # The architecture first: a new dataset/architecture resets Epochs to its recipe's (set in the same
    # rerun, the 2 epochs were overwritten and 200 trained).
    set_values(app, train_dataset="mnist1d", train_arch="mlp")
    set_values(app, train_classes=3, train_epochs=2, train_name="tiny_mlp")
    app.button(key="train_run").click().run()
    # 2 epochs stop far from convergence: saved, but as a warning that says so (issue 13's w* guard)
    wait_for(app, lambda at: any("Saved **tiny_mlp**" in s.value and "Stopped far from convergence" in s.value
                                 for s in at.warning), what="training")
    assert (tmp_path / "tiny_mlp.safetensors").exists() and (tmp_path / "tiny_mlp.json").exists()
    assert cached_models_snapshot() == before
    assert len(app.get("plotly_chart")) == 1
    app.run()
    assert any("Saved as 'tiny_mlp'" in i.value for i in app.info) and not app.error  # not "name taken"
    app.button(key="train_open").click().run()
    assert app.title[0].value == "Estimate λ̂"
    assert app.selectbox(key="model").value == "tiny_mlp"


def test_train_refuses_an_existing_name_and_reports_missing_data(app, monkeypatch, tmp_path):
    monkeypatch.setenv("LLC_USER_MODELS", str(tmp_path))
    monkeypatch.setenv("LLC_DATA_DIR", str(tmp_path / "no-data"))
    open_page(app, "train")
    set_values(app, train_name="mnist1d_cnn_k10_s0")
    assert any("already exists in cached_models/" in e.value for e in app.error)
    assert app.button(key="train_run").disabled
    set_values(app, train_name="../escape")
    assert any("'../escape' is invalid" in e.value for e in app.error)
    set_values(app, train_dataset="mnist", train_name="needs_idx", train_epochs=1)
    app.button(key="train_run").click().run()
    wait_for(app, lambda at: any("Training failed" in e.value for e in at.error), what="failure")
    assert any("mnist" in e.value.lower() for e in app.error if "Training failed" in e.value)
    assert not list(tmp_path.glob("*.safetensors"))
