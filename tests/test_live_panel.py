"""The result panel of a run (pages/live.py) and its figures (llc_core/plots.py loss figure,
llc_core/trace_plots.py): convergence beside λ̂, the settings that produced it, diverged runs
shown as such, ArviZ-style trace views, live trend flags."""

import json
import math
import time

import numpy as np
import pytest
import torch
from torch import nn

from llc_core import LLCTask, SGLDConfig, estimate_llc
from llc_core.plots import lambda_figure, loss_figure
from llc_core.sampler import SGLDRun
from llc_core.toys import half_mse, parse_toy
from llc_core.trace_plots import chain_panels_figure, chain_ranks, density_figure, kde, rank_figure
from tests.test_app import configure, run_to_end


def annotations(fig):
    return [a.text for a in fig.layout.annotations]


def diverging_traces(chains=4, steps=200, blowups=None):
    """Loss traces that end (NaN) at each chain's blow-up step, as a run hands them out."""
    x = np.arange(1, steps + 1)
    loss = np.random.default_rng(0).normal(1.0, 0.3, (chains, steps))
    for c, step in (blowups or {}).items():
        loss[c, x >= step] = np.nan
    return x, loss


# -- the loss figure --------------------------------------------------------------------------

def test_divergence_labels_are_one_per_step_and_never_overprint():
    blowups = {0: 3, 1: 3, 2: 3, 3: 3}
    x, loss = diverging_traces(blowups=blowups)
    fig = loss_figure(x, loss, 0, blowups, total_steps=1000)
    assert [t for t in annotations(fig) if "diverged" in t] == ["chains 0, 1, 2, 3 diverged at step 3"]
    blowups = {0: 3, 1: 50, 2: 120}
    fig = loss_figure(*diverging_traces(blowups=blowups), 0, blowups, total_steps=1000)
    labels = [a for a in fig.layout.annotations if "diverged" in a.text]
    assert len(labels) == 3 and len({a.y for a in labels}) == 3  # stacked, not on top of each other


def test_every_chain_diverged_zooms_to_the_blowup():
    blowups = {0: 3, 1: 4, 2: 3, 3: 3}
    x, loss = diverging_traces(steps=4, blowups=blowups)
    fig = loss_figure(x, loss, 0, blowups, total_steps=5000)
    assert fig.layout.xaxis.range[1] <= 10  # not 0..5000 with the data squeezed against the axis
    some = {0: 3}
    fig = loss_figure(*diverging_traces(blowups=some), 0, some, total_steps=5000)
    assert fig.layout.xaxis.range[1] == 5000  # the other chains still run: keep the whole run


def test_each_diverged_chain_ends_in_a_marker():
    blowups = {1: 40, 3: 90}
    x, loss = diverging_traces(blowups=blowups)
    fig = loss_figure(x, loss, 0, blowups)
    marks = [t for t in fig.data if t.mode == "markers" and t.marker.symbol == "x"]
    assert [t.name for t in marks] == ["chain 1 diverged", "chain 3 diverged"]
    assert [t.x[0] for t in marks] == [39, 89]  # the last finite point before the blow-up


def test_below_init_band_only_when_most_draws_are_below():
    x = np.arange(1, 501)
    rng = np.random.default_rng(1)
    healthy = rng.normal(0.5, 0.3, (4, 500))  # dips below zero now and then: minibatch noise
    assert (healthy < 0).any()
    assert "below L_n(w*)" not in annotations(loss_figure(x, healthy, 50))
    descending = rng.normal(-0.5, 0.3, (4, 500))
    assert "below L_n(w*)" in annotations(loss_figure(x, descending, 50))


# -- ArviZ-style views -----------------------------------------------------------------------

def test_rank_histograms_are_flat_for_mixed_chains_and_sloped_for_a_stuck_one():
    rng = np.random.default_rng(2)
    mixed = rng.normal(size=(4, 2000))
    counts = chain_ranks(mixed)
    assert counts.sum() == mixed.size and abs(counts / counts.mean() - 1).max() < 0.35
    stuck = mixed.copy()
    stuck[0] += 3.0
    counts = chain_ranks(stuck)
    assert counts[0, -5:].sum() > 0.8 * 2000 and counts[0, :5].sum() < 20  # chain 0 ranks at the top
    fig = rank_figure(np.arange(1, 2001), stuck, 0)
    assert len([t for t in fig.data if t.type == "bar"]) == 4


def test_density_and_panels():
    grid = np.linspace(-6, 6, 601)
    values = np.random.default_rng(3).normal(size=5000)
    assert np.trapezoid(kde(values, grid), grid) == pytest.approx(1.0, abs=0.02)
    x, loss = diverging_traces(chains=10, blowups={2: 80})
    fig = chain_panels_figure(x, loss, 40, {2: 80}, 200)
    assert len([t for t in fig.data if t.mode == "lines"]) == 8  # the first 8 of 10 chains
    assert "first 8 of 10" in fig.layout.title.text
    assert len([s for s in fig.layout.shapes if s.type == "rect"]) == 8  # burn-in shaded in each panel
    dens = density_figure(x, loss, 40)
    assert [t.name for t in dens.data][-1] == "all chains" and len(dens.data) == 10  # chain 2 (diverged) left out


# -- live trend flags ------------------------------------------------------------------------

def test_trend_flags_fire_while_the_run_goes():
    """ε far too small: the loss is still climbing. The flag must show before the last record."""
    task = parse_toy("crossing:1", n=2000)
    run = SGLDRun(task, task.defaults.replace(epsilon=1e-7, chains=4, draws=500, burnin=0, thin=1, device="cpu"))
    early = [p.step for p in run if p.step < p.total_steps and "not_stationary" in [f.code for f in p.flags]]
    assert early and early[0] < 0.8 * run.cfg.total_steps
    assert "not_stationary" in [f.code for f in run.result.warnings]


# -- the panel on Estimate (AppTest) -----------------------------------------------------------

def arrow(metric_element) -> str:
    proto = metric_element.proto
    return proto.DESCRIPTOR.fields_by_name["direction"].enum_type.values_by_number[proto.direction].name


def metric(at, label):
    return next(m for m in at.metric if m.label == label)


def test_finished_run_shows_mcse_rhat_ess_and_the_settings_that_produced_it(app):
    configure(app, "toy:crossing:1", chains=4, draws=300, burnin=100)
    assert "finished" in run_to_end(app)
    lam = metric(app, "λ̂")
    assert lam.proto.delta.startswith("± ") and lam.proto.delta.endswith("(MCSE)")
    assert arrow(lam) == "NONE"  # no ↑ that would read as "increased"
    assert float(metric(app, "R̂").value) < 1.2 and float(metric(app, "ESS bulk").value.replace(",", "")) > 0
    assert float(metric(app, "ESS tail").value.replace(",", "")) > 0
    this_run = [c.value for c in app.caption if c.value.startswith("**This run:**")]
    assert this_run and "· 4 chains × 300 draws" in this_run[0] and "burn-in 100" in this_run[0]
    eps = f"ε {app.select_slider(key='epsilon').value:.3g}"
    assert eps in this_run[0]
    app.select_slider(key="epsilon").set_value(1e-3).run()  # a slider moves: the panel still says what ran
    assert [c.value for c in app.caption if c.value.startswith("**This run:**")] == this_run
    assert app.get("progress")[0].proto.value == 100


def test_every_chain_diverged_strikes_lambda_and_fills_the_bar(app):
    configure(app, "toy:crossing:1", epsilon=0.1, chains=4, draws=100, burnin=0)
    assert "diverged" in run_to_end(app)
    assert metric(app, "λ̂").value == "not valid"
    assert any(m.value == "No λ̂: 4 of 4 chains diverged" for m in app.markdown)
    bar = app.get("progress")[0].proto
    assert bar.value == 100 and "finished early" in bar.text
    assert any("no chain is left, so there is no λ̂" in e.value for e in app.error)
    assert not any("pools the 0" in e.value for e in app.error)
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["xaxis"]["range"][1] <= 20  # zoomed to the blow-up, not 0..500


def test_live_run_shows_rhat_and_ess_so_far(app):
    configure(app, "toy:crossing:1", chains=2, draws=20_000, burnin=0)
    app.button(key="run").click().run()
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.5)
        app.run()
        rhat = [m for m in app.metric if m.label == "R̂ (so far)"]
        if rhat and rhat[0].value != "–":
            break
    app.button(key="stop").click().run()
    assert rhat and float(rhat[0].value) > 0.9
    assert metric(app, "λ̂").proto.delta.endswith("(MCSE)")


def poisoned_result():
    """A real run where some chains of 8 blow up (a poison example, as in test_flags)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 1, generator=g)
    x[17] = 1e30
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    task = LLCTask(model, x, torch.zeros(1000, 1), half_mse)
    return estimate_llc(task, SGLDConfig(epsilon=1e-4, gamma=1.0, chains=8, draws=250, burnin=50, batch_size=1,
                                         seed=0, device="cpu"))


def header_script():
    import streamlit as st

    from pages.live import header

    final = st.session_state["result"]
    view = {"chains": 8, "init_loss": final.init_loss, "nbeta": final.nbeta}
    header(final.status, final.lambda_hat, final.chains_used, view, None, final, final.lambda_hat_se)


def test_some_chains_diverged_lambda_is_struck_through_with_the_reason():
    from streamlit.testing.v1 import AppTest

    final = poisoned_result()
    assert final.status == "diverged" and 0 < final.chains_used < 8 and math.isfinite(final.lambda_hat)
    at = AppTest.from_function(header_script)
    at.session_state["result"] = final
    at.run()
    assert not at.exception, at.exception
    assert metric(at, "λ̂").value == "not valid"
    struck = [m.value for m in at.markdown if "~~" in m.value][0]
    assert f"~~{final.lambda_hat:.4g}~~" in struck and f"{8 - final.chains_used} of 8 chains diverged" in struck


def test_a_one_glyph_y_title_is_written_upright_and_a_long_one_stays_an_axis_title():
    """Plotly turns y titles by 90°: "λ̂" read as a sideways "<" with its hat beside it. A title of at
    most three characters becomes an upright label at the top of the axis, left of the legend."""
    steps = np.arange(1, 51)
    lam = np.random.default_rng(0).normal(1.0, 0.1, (2, 50))
    fig = lambda_figure(steps, lam, lam.mean(axis=0), burnin=10)
    assert fig.layout.yaxis.title.text is None
    label = next(a for a in fig.layout.annotations if a.text == "λ̂")
    assert (label.xref, label.x, label.xanchor, label.yref, label.y, label.yanchor) == ("paper", 0, "right", "paper", 1, "bottom")
    assert not label.textangle  # upright
    assert fig.layout.legend.x == 0 and fig.layout.legend.xanchor in (None, "left")  # the legend starts right of it
    loss = loss_figure(steps, lam, 10)
    assert loss.layout.yaxis.title.text == "L_m(w_t) − L_n(w*)" and "L_m(w_t) − L_n(w*)" not in annotations(loss)
