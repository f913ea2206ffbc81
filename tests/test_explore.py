"""Issue 13, the explorer pages: Calibrate as a sweep explorer (reuse, colour scale, traces),
task-variability statistics, theme-safe figure styling, presentation mode."""

import math

import numpy as np
import plotly.graph_objects as go
import pytest
import scipy.stats

import llc_core.calibrate as calibrate
import llc_core.sweep as sweep_module
from llc_core import plots
from llc_core.sweep import SweepGrid, cell_config, sweep
from llc_core.toys import parse_toy


class CountingRun(sweep_module.SGLDRun):
    """The real SGLDRun, counting how many runs were started (a spy: it changes nothing)."""
    started = 0

    def __init__(self, *args, **kwargs):
        type(self).started += 1
        super().__init__(*args, **kwargs)


def count_runs(monkeypatch):
    CountingRun.started = 0
    monkeypatch.setattr(sweep_module, "SGLDRun", CountingRun)
    monkeypatch.setattr(calibrate, "SGLDRun", CountingRun)
    return CountingRun


# -- auto-calibrate reuses the cells a sweep already ran ----------------------------------------

def small_base(task):
    """Full runs of 4 × 500 draws: short enough for a test, long enough that crossing:1's search
    confirms in a few full runs (at 2 × 250 every full run was too short and the search grew them
    through its length ladder for a minute per calibration)."""
    return task.defaults.replace(chains=4, draws=500, burnin=100)


def test_auto_calibrate_reuses_swept_cells_instead_of_running_them(monkeypatch):
    """The page's flow: a sweep at the pilot length around the default ε, then auto-calibrate given
    those cells. Every ladder cell it needs that the sweep ran is taken, not rerun (counted), and the
    answer is the same as without them (same seed, same settings: same numbers)."""
    task = parse_toy("crossing:1")
    base = small_base(task)
    runs = count_runs(monkeypatch)
    alone = calibrate.auto_calibrate(task, budget_seconds=300, base=base)
    runs_alone = runs.started
    pilot = calibrate.pilot_config(task, base.replace(seed=0))
    start = calibrate.ladder_index(base.epsilon)
    grid = SweepGrid(tuple(calibrate.LADDER[start - 2: start + 3]), (base.gamma,), (1.0,))
    swept = list(sweep(task, grid, pilot))
    known = [(cell_config(pilot, c.epsilon, c.gamma, 1.0, task.n), c) for c in swept]
    runs.started, seen = 0, []
    helped = calibrate.auto_calibrate(task, budget_seconds=300, base=base, known_cells=known, on_cell=seen.append)
    assert helped.reused >= 1, helped.reasons  # the ladder walk passes through a swept rung
    assert runs.started == runs_alone - helped.reused  # exactly the reused cells were not run again
    assert sum(any(cell is c for c in swept) for cell in seen) == helped.reused  # the sweep's own cells
    assert (helped.epsilon, helped.lambda_hat) == (alone.epsilon, alone.lambda_hat)
    assert any("reused" in r for r in helped.reasons)


def test_a_cell_with_other_settings_is_not_reused():
    task = parse_toy("crossing:1")
    pilot = calibrate.pilot_config(task)
    config = cell_config(pilot, 1e-4, 1.0, 1.0, task.n)
    cell = sweep_module.Cell(1e-4, 1.0, 1.0, config.nbeta, 0.5, 0.1, "ok", [], 0.9, 1.0)
    assert calibrate.known_cell([(config, cell)], config) is cell
    assert calibrate.known_cell([(config.replace(draws=config.draws + 1), cell)], config) is None
    assert calibrate.known_cell([(config, cell)], config.replace(epsilon=3e-4)) is None


# -- task variability: slope confidence intervals and the slope-difference test ---------------

from llc_core.variability import Row, slope_difference, slope_fit, slope_fits, summarize  # noqa: E402


def two_lines(seed=0):
    rng = np.random.default_rng(seed)
    k = np.repeat(np.arange(2, 11), 3).astype(float)
    return k, 1.0 + 0.8 * k + rng.normal(0, 0.6, k.size), 2.0 + 0.3 * k + rng.normal(0, 0.9, k.size)


def test_slope_ci_matches_scipy_linregress():
    k, mlp, _ = two_lines()
    fit = slope_fit(k, mlp)
    ref = scipy.stats.linregress(k, mlp)
    assert fit.slope == pytest.approx(ref.slope, rel=1e-12)
    assert fit.se == pytest.approx(ref.stderr, rel=1e-10)
    half = scipy.stats.t.ppf(0.975, k.size - 2) * ref.stderr
    assert (fit.ci_low, fit.ci_high) == (pytest.approx(ref.slope - half), pytest.approx(ref.slope + half))
    assert fit.r2 == pytest.approx(ref.rvalue**2)


def test_slope_difference_equals_the_interaction_term_of_one_regression():
    """Reference computed independently: y ~ 1 + g + K + K·g by least squares; the t of K·g is the
    slope-difference t (same pooled variance, n − 4 degrees of freedom)."""
    k, mlp, cnn = two_lines(1)
    x = np.concatenate([k, k])
    g = np.concatenate([np.ones_like(k), np.zeros_like(k)])  # 1 = MLP
    y = np.concatenate([mlp, cnn])
    design = np.column_stack([np.ones_like(x), g, x, x * g])
    coef, sse, *_ = np.linalg.lstsq(design, y, rcond=None)
    df = y.size - 4
    cov = sse[0] / df * np.linalg.inv(design.T @ design)
    t_ref = coef[3] / math.sqrt(cov[3, 3])
    p_ref = 2 * scipy.stats.t.sf(abs(t_ref), df)
    d = slope_difference(slope_fit(k, mlp), slope_fit(k, cnn))
    assert d.difference == pytest.approx(coef[3], rel=1e-10)
    assert d.se == pytest.approx(math.sqrt(cov[3, 3]), rel=1e-10)
    assert d.t == pytest.approx(t_ref, rel=1e-10) and d.df == df
    assert d.p_value == pytest.approx(p_ref, rel=1e-8) and d.p_value < 0.05


def test_too_few_points_give_nan_not_an_error():
    fit = slope_fit([2, 3], [1.0, 2.0])
    assert math.isfinite(fit.slope) and math.isnan(fit.se)
    assert math.isnan(slope_difference(fit, fit).p_value)


def row(arch, k, seed, lam, status="ok", flags=()):
    return Row(f"m_{arch}_{k}_{seed}", arch, k, seed, lam, 0.1, status, False, list(flags), {})


def test_flagged_runs_carry_their_codes_into_the_summary_and_the_figure():
    rows = [row("MLP", 2, 0, 3.0), row("MLP", 2, 1, 3.4, "warning", ["not_stationary"]), row("MLP", 5, 0, 5.0),
            row("MLP", 5, 1, 5.2), row("MLP", 8, 0, 7.1)]
    s = summarize(rows)["MLP"]
    assert s["flagged"] == [True, False, False] and s["flag_codes"][0] == ["not_stationary"]
    fig = plots.variability_figure(summarize(rows))
    runs = next(t for t in fig.data if "runs" in t.name)
    hollow = [sym == "circle-open" for sym in runs.marker.symbol]
    assert hollow == [r.flagged for r in rows]
    assert "not_stationary" in runs.customdata[1][1]
    means = next(t for t in fig.data if "mean" in t.name)
    assert list(means.marker.symbol) == ["diamond-open", "diamond", "diamond"]
    assert slope_fits(rows)["MLP"].n == 5


# -- figures: theme-safe colours, a colour scale no outlier swamps, presentation mode ----------

def every_figure():
    steps = np.arange(0, 100, 10)
    lam = np.vstack([np.linspace(0, 1, 10), np.linspace(0, 1.2, 10)])
    cells = [sweep_module.Cell(e, g, 1.0, 100.0, lam_, 0.1, "ok", [] if lam_ < 100 else ["low_mala"], 0.9, 1.0)
             for e, g, lam_ in [(1e-5, 1.0, 0.4), (1e-4, 1.0, 0.5), (1e-3, 1.0, 4290.0), (1e-5, 10.0, 0.45)]]
    yield plots.loss_figure(steps, lam - 0.5, burnin=20, diverged={0: 50})
    yield plots.lambda_figure(steps, lam, lam.mean(0), burnin=20, true_lambda=0.5, target=0.49)
    yield plots.compare_figure([{"label": "A: MLP", "steps": steps, "lam": lam, "pooled": lam.mean(0), "burnin": 0}])
    yield plots.sweep_heatmap([1e-5, 1e-4, 1e-3], [1.0, 10.0], {(c.epsilon, c.gamma): (c.lambda_hat, c.verdict)
                                                                for c in cells}, chosen=(1e-4, 1.0))
    yield plots.sweep_lines(cells)
    yield plots.variability_figure(summarize([row("MLP", k, s, k + s * 0.1) for k in (2, 5) for s in (0, 1)]))


def colours_in(fig: go.Figure) -> list[str]:
    """Every explicit colour of lines, markers, shapes and annotations in the figure."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("color", "fillcolor", "bgcolor") and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)
    spec = fig.to_plotly_json()
    spec["layout"].pop("template", None)  # plotly's default, which Streamlit replaces by its theme
    walk(spec)
    return found


def luminance(colour: str) -> float | None:
    if colour.startswith("#") and len(colour) in (4, 7):
        hex6 = colour[1:] if len(colour) == 7 else "".join(ch * 2 for ch in colour[1:])
        r, g, b = (int(hex6[i:i + 2], 16) for i in (0, 2, 4))
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255
    return None  # rgba(...) washes and named colours: not ink


@pytest.mark.parametrize("index", range(6))
def test_figures_leave_the_background_to_the_theme_and_use_no_near_black_or_near_white_ink(index):
    fig = list(every_figure())[index]
    import plotly.io as pio

    layout = fig.to_plotly_json()["layout"]
    assert "plot_bgcolor" not in layout and "paper_bgcolor" not in layout
    assert fig.layout.template == pio.templates[pio.templates.default]  # no template of our own (Streamlit themes it)
    inks = [(c, luminance(c)) for c in colours_in(fig) if luminance(c) is not None]
    assert all(0.15 <= lum <= 0.85 for _, lum in inks), [c for c, lum in inks if not 0.15 <= lum <= 0.85]


def test_heatmap_colour_scale_is_log_so_one_outlier_does_not_swamp_the_rest():
    fig = list(every_figure())[3]
    heat = fig.data[0]
    assert heat.colorbar.title.text == "λ̂<br>log scale" and heat.colorbar.title.side == "top"  # upright
    z = np.array(heat.z, float)
    assert z[0, 0] == pytest.approx(math.log10(0.4)) and z[0, 2] == pytest.approx(math.log10(4290.0))
    # the outlier spans ~4 decades of colour, the two ordinary cells stay apart (not both at the bottom)
    span = np.nanmax(z) - np.nanmin(z)
    assert (z[0, 1] - z[0, 0]) / span > 0.02  # linear scale: (0.5 - 0.4) / 4290 ≈ 2e-5
    assert heat.text[0][2] == "⚠ 4.29e+03"  # the cell still says the value itself (flagged: ⚠)
    assert list(heat.colorbar.ticktext)[:2] == ["0.1", "0.3"]


def test_colour_scale_clips_when_a_value_is_not_positive():
    z, title, _ = plots.colour_scale([[-1.0, 0.5, 0.6, 0.7, 0.8, 1000.0]])
    assert title.startswith("λ̂ clipped<br>to ") and np.nanmax(z) < 1000 and np.nanmin(z) > -1


def test_default_text_is_at_least_12px_and_presentation_mode_enlarges_everything():
    for fig in every_figure():
        plots.style(fig)
        assert fig.layout.font.size >= 12 and fig.layout.xaxis.tickfont.size >= 12
        assert all((a.font.size or 12) >= 12 for a in fig.layout.annotations)
    normal = plots.style(list(every_figure())[1])
    big = plots.style(list(every_figure())[1], presentation=True)
    assert big.layout.xaxis.tickfont.size >= 16 and big.layout.legend.font.size >= 16
    assert all(a.font.size >= 16 for a in big.layout.annotations)
    assert big.layout.height > normal.layout.height
    pooled = [t for t in big.data if t.name == "pooled λ̂"][0]
    assert pooled.line.width > [t for t in normal.data if t.name == "pooled λ̂"][0].line.width


def test_true_lambda_and_target_labels_sit_at_opposite_ends():
    fig = list(every_figure())[1]
    notes = {a.text.split(" =")[0]: a for a in fig.layout.annotations if "=" in (a.text or "")}
    assert notes["true λ"].x != notes["finite-n target"].x


# -- pages (AppTest) -------------------------------------------------------------------------

import shutil  # noqa: E402
from functools import partial  # noqa: E402

from tests.conftest import texts, wait_for as wait_for_shared  # noqa: E402

from llc_core.checkpoints import CACHE_DIR  # noqa: E402


wait_for = partial(wait_for_shared, timeout=300)  # this file's runs need up to 300 s




def open_page(at, page, **params):
    at.query_params.update(params)
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def test_calibrate_grid_comes_from_the_link_and_reset_restores_the_pilot_grid(app):
    open_page(app, "calibrate", cal_model="toy:crossing:1", cal_epsilons=["1.0e-05", "1.0e-04"], cal_gammas="10",
              cal_chains="3")
    assert app.multiselect(key="cal_epsilons").value == [1e-5, 1e-4]
    assert app.multiselect(key="cal_gammas").value == [10.0] and app.slider(key="cal_chains").value == 3
    assert any("2 cells" in c.value for c in app.caption)
    app.button(key="cal_reset").click().run()  # crashed with StreamlitWidgetAlreadyInstantiatedError before
    assert not app.exception
    assert len(app.multiselect(key="cal_epsilons").value) == 5 and len(app.multiselect(key="cal_gammas").value) == 3
    assert app.slider(key="cal_chains").value == 8


def test_auto_calibrate_after_a_sweep_reuses_its_cells_and_preselects_the_recommended_one(app):
    open_page(app, "calibrate", cal_model="toy:crossing:1")
    # the sweep at exactly auto-calibrate's pilot settings for a 2 × 250-draw full run (pilots: 2 × 100)
    app.multiselect(key="cal_epsilons").set_value([1e-5, 3e-5, 1e-4]).run()
    app.multiselect(key="cal_gammas").set_value([1.0]).run()
    app.slider(key="cal_chains").set_value(2).run()
    app.number_input(key="cal_draws").set_value(100).run()
    app.number_input(key="cal_burnin").set_value(200).run()
    app.button(key="cal_run").click().run()
    wait_for(app, lambda at: any("Sweep finished: 3 cells" in t for t in texts(at)), what="sweep")
    app.number_input(key="cal_full_chains").set_value(2).run()
    app.number_input(key="cal_full_draws").set_value(250).run()
    app.number_input(key="cal_budget").set_value(150).run()
    app.button(key="cal_auto").click().run()
    wait_for(app, lambda at: any("Recommended: ε" in t or "No recommendation" in t for t in texts(at)),
             timeout=300, what="recommendation")
    assert any("came from the sweep you ran before" in t for t in texts(app)), texts(app)
    pick = app.selectbox(key="cal_pick")
    assert "★ recommended" in pick.format_func(pick.value)  # preselected: the recommended cell


def test_compare_each_at_its_own_settings_names_architectures(app):
    open_page(app, "compare")
    assert app.radio(key="cmp_mode").value == "each at its own calibrated settings"
    assert any("A (MLP)" in c.value and "ε = 0.0002" in c.value for c in app.caption)
    assert any("B (CNN)" in c.value and "ε = 0.0001" in c.value for c in app.caption)
    app.button(key="cmp_run").click().run()
    wait_for(app, lambda at: len(at.dataframe) > 0, what="comparison table")
    table = app.dataframe[0].value
    assert table["model"].tolist() == ["A: MLP", "B: CNN"]
    assert "ε = 0.0002" in table["settings"][0] and "ε = 0.0001" in table["settings"][1]
    app.button(key="cmp_stop").click().run()
    wait_for(app, lambda at: not at.radio(key="cmp_mode").disabled, timeout=30, what="stopped")
    app.radio(key="cmp_mode").set_value("shared settings").run()
    app.select_slider(key="cmp_epsilon").set_value(5e-4).run()
    app.button(key="cmp_reset").click().run()  # crashed with StreamlitWidgetAlreadyInstantiatedError before
    assert not app.exception and app.select_slider(key="cmp_epsilon").value == 1e-4


@pytest.fixture
def three_ks(tmp_path, monkeypatch):
    """A checkpoint folder with the MLP and CNN at K = 2, 5, 10 (seed 0) and an empty run cache."""
    folder = tmp_path / "models"
    folder.mkdir()
    for arch in ("mlp", "cnn"):
        for k in (2, 5, 10):
            for suffix in (".json", ".safetensors"):
                shutil.copy(CACHE_DIR / f"mnist1d_{arch}_k{k}_s0{suffix}", folder)
    monkeypatch.setattr("llc_core.checkpoints.CACHE_DIR", folder)
    monkeypatch.setenv("LLC_CACHE_DIR", str(tmp_path / "cache"))
    return folder


def test_variability_warns_on_short_runs_marks_flags_links_runs_and_tests_the_slopes(app, three_ks):
    open_page(app, "variability")
    app.number_input(key="var_draws").set_value(50).run()
    app.slider(key="var_chains").set_value(1).run()
    assert any("50 draws per run is short" in w.value for w in app.warning)
    app.button(key="var_run").click().run()
    # the finished caption ("6 of 6 runs · …"), not the progress bar's last "6 of 6 runs done · running …"
    wait_for(app, lambda at: any("6 of 6 runs ·" in t for t in texts(at)), what="6 runs")
    assert any("50 draws × 1 chain per checkpoint" in t for t in texts(app))  # not a Python dict
    assert not any("{'draws'" in t for t in texts(app))
    fits = app.dataframe[0].value
    assert list(fits["architecture"]) == ["CNN", "MLP"]
    assert (fits["95% CI low"] < fits["slope dλ̂/dK"]).all() and (fits["slope dλ̂/dK"] < fits["95% CI high"]).all()
    assert any(t.startswith("**Slope difference CNN − MLP") and "p = " in t for t in texts(app))
    runs = next(d.value for d in app.dataframe if "open on Estimate" in d.value.columns)
    assert len(runs) == 6 and runs["open on Estimate"].str.startswith("./?model=mnist1d_").all()
    link = runs[runs["model"] == "mnist1d_mlp_k2_s0"]["open on Estimate"].iloc[0]
    assert "draws=50" in link and "chains=1" in link and "epsilon=2.0e-04" in link
    flagged = runs[runs["status"].str.startswith("⚠")]
    assert (flagged["flags"].str.len() > 0).all() or (flagged["status"] != "⚠ ok").all()


def test_learn_text_renders_names_and_formulas(app):
    open_page(app, "learn")
    assert app.button(key="learn_untrained").label == "Untrained w\\* → negative"
    assert any("$K(w) = \\tfrac12 \\prod_i w_i^{2p_i}$" in m.value for m in app.markdown)
    assert not any("about a second" in c.value for c in app.caption)  # the calibrated demo takes ~10 s


def test_learn_toy_tables_have_no_empty_cells(app):
    """DLNs have no multiplicity or exact finite-n target here: they get their own table, not "None"."""
    open_page(app, "learn")
    tables = [d.value for d in app.dataframe if "toy" in d.value.columns]
    assert len(tables) == 2 and sum(len(t) for t in tables) == 8
    assert not any(t.isna().any().any() for t in tables)
    assert list(tables[1].columns) == ["toy", "parameters", "n", "λ (Aoyagi)"]


@pytest.mark.parametrize("page", ["estimate", "compare", "history", "calibrate", "variability", "dimensions",
                                  "learn", "train"])
def test_presentation_mode_switch_is_on_every_page_and_kept_across_pages(app, page):
    """A room switches it on once: every page offers it and it stays on when the page changes."""
    app.run()
    app.toggle(key="presentation_switch").set_value(True).run()
    app.switch_page(f"pages/{page}.py").run()
    assert not app.exception, app.exception
    assert app.toggle(key="presentation_switch").value is True


def test_sweep_lines_keep_the_flag_labels_of_the_end_points_inside_the_plot():
    """A flag code centred on the first or last point of a line was cut in half by the axis edge."""
    flagged = ["low_mala"]
    cells = [sweep_module.Cell(e, 1.0, 1.0, 100.0, lam, 0.1, "warning", flagged, 0.9, 1.0)
             for e, lam in [(1e-5, 0.001), (1e-4, 0.02), (1e-3, 0.2)]]
    line = plots.sweep_lines(cells).data[0]
    assert list(line.text) == flagged * 3
    assert list(line.textposition) == ["top right", "top center", "top left"]
    alone = plots.sweep_lines(cells[:1]).data[0]
    assert list(alone.textposition) == ["top center"]


def test_a_step_biased_cell_is_drawn_unstable_a_short_one_stable():
    """step_bias says ε is too large (auto-calibrate steps down on it): the heatmap marks it ⚠. Length
    flags alone (every short pilot chain has low_ess) leave a cell stable."""
    biased = sweep_module.Cell(1e-3, 1.0, 1.0, 100.0, 0.197, 0.01, "warning", ["high_rhat", "step_bias"], 0.97, 1.0)
    short = sweep_module.Cell(1e-4, 1.0, 1.0, 100.0, 0.2, 0.01, "warning", ["high_rhat", "low_ess"], 0.97, 1.0)
    assert biased.verdict == "unstable" and short.verdict == "ok"
    line = plots.sweep_lines([short, biased]).data[0]
    assert list(line.marker.symbol) == ["circle", "circle-open"] and list(line.text) == ["", "step_bias"]


def test_a_short_training_curve_has_one_tick_per_epoch():
    """Two epochs drew ticks at 0.5 and 1.5, which name no epoch."""
    assert plots.training_figure([(1, 1.93), (2, 1.59)], epochs=2).layout.xaxis.dtick == 1
    assert plots.training_figure([(e, 1.0 / e) for e in range(1, 61)], epochs=60).layout.xaxis.dtick is None
