"""Task variability: λ̂ against the number of classes for MLP and CNN, over the cached seeds."""

import math
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from llc_core.checkpoints import CACHE_DIR, list_checkpoints
from llc_core.jobs import VariabilityJob
from llc_core.limits import MAX_VARIABILITY_CHAINS, MAX_VARIABILITY_DRAWS
from llc_core.plots import variability_figure
from llc_core.recipes import arch_name
from llc_core.variability import (SHORT_DRAWS, cache_dir, per_k_rows, slope_difference, slope_fits, summarize)
from pages.common import presentation_toggle, show_figure
from pages.controls import fmt_eps, run_stop_buttons
from pages.jobview import PageJobs


@st.cache_data(ttl=30, show_spinner=False)
def experiment_models() -> list[dict]:
    """MNIST-1D checkpoints of cached_models/ (equal n for every K), by architecture, K, seed."""
    metas = [m for m in list_checkpoints(CACHE_DIR) if m["dataset"] == "mnist1d"]
    return sorted(metas, key=lambda m: (m["arch"]["kind"], m["classes"], m["seed"]))


st.title("Task variability")
st.caption("λ̂ against the number of classes K = 2..10 for the MNIST-1D MLP and CNN of `cached_models/` "
           "(the same n = 4000 training examples for every K), mean ± std over seeds, with a least-squares "
           "line per architecture. Every run is cached on disk: revisiting, or rerunning the same settings, is "
           "instant.")
page = PageJobs("variability", start_keys=("var_run",))
running = page.running
metas = experiment_models()

with st.sidebar:
    presentation_toggle()
    archs = sorted({arch_name(m["arch"]["kind"]) for m in metas})
    st.session_state.setdefault("var_archs", archs)
    st.session_state.setdefault("var_draws", 300)
    st.session_state.setdefault("var_chains", 2)
    st.multiselect("Architectures", archs, key="var_archs", persist_state="session", disabled=running)
    st.number_input("Draws per run", 50, MAX_VARIABILITY_DRAWS, step=50, key="var_draws", persist_state="session", disabled=running,
                    help="Each checkpoint's own SGLD defaults otherwise (ε, γ, burn-in, batch).")
    st.slider("Chains per run", 1, MAX_VARIABILITY_CHAINS, key="var_chains", persist_state="session", disabled=running)
    chosen = [m for m in metas if arch_name(m["arch"]["kind"]) in st.session_state["var_archs"]]
    st.caption(f"{len(chosen)} checkpoints")
    if int(st.session_state["var_draws"]) < SHORT_DRAWS:
        st.warning(f"{int(st.session_state['var_draws'])} draws per run is short (the checkpoints' calibrated "
                   f"runs use 1,000): expect many runs flagged and λ̂ not settled. Use at least {SHORT_DRAWS}.")
    _, stop_clicked = run_stop_buttons("var_", page.busy, bool(chosen))

if not metas:
    st.error(f"No MNIST-1D checkpoints in {CACHE_DIR}: rebuild them with `make models`.")
    st.stop()
if stop_clicked:
    page.stop()
if page.pressed("var_run") and chosen:
    overrides = {"draws": int(st.session_state["var_draws"]), "chains": int(st.session_state["var_chains"])}
    page.start(lambda: VariabilityJob(chosen, overrides), overrides, "var_settings")

from pages.dimensions import dimension_vs_k_section; dimension_vs_k_section()  # noqa: E702 (issue 15)
if page.idle:
    st.info("Choose the architectures and run length in the sidebar and press **Run**. Runs done before with "
            "the same settings come from the cache at once.")
    st.stop()


def settings_text(settings: dict) -> str:
    """The run's overrides in words: "50 draws × 1 chain per checkpoint (ε, γ, burn-in, batch: each one's own)"."""
    draws, chains = settings.get("draws"), settings.get("chains")
    return (f"{draws:,} draws × {chains} chain{'s' if chains != 1 else ''} per checkpoint; ε, γ, burn-in and "
            f"batch: each checkpoint's calibrated settings")


def estimate_link(row) -> str:
    """A link that opens this run's model and settings on Estimate (press Run there to repeat it)."""
    c = row.config
    if not c:
        return ""
    query = {"model": row.name, "epsilon": fmt_eps(c["epsilon"]), "gamma": f"{c['gamma']:g}",
             "chains": c["chains"], "draws": c["draws"], "burnin": c["burnin"], "batch_size": c["batch_size"]}
    return "./?" + urlencode(query)


def run_table(rows) -> None:
    """Every run, flagged ones marked ⚠ with their codes, each with a link to it on Estimate."""
    frame = pd.DataFrame([{"model": r.name, "architecture": r.arch, "K": r.classes, "seed": r.seed,
                           "λ̂": r.lambda_hat, "std": r.lambda_std, "status": ("⚠ " if r.flagged else "") + r.status,
                           "flags": ", ".join(r.flags), "cached": r.cached, "open on Estimate": estimate_link(r)}
                          for r in rows])
    st.dataframe(frame, hide_index=True, width="stretch", key="var_runs",
                 column_config={"open on Estimate": st.column_config.LinkColumn(display_text="open ↗"),
                                "λ̂": st.column_config.NumberColumn(format="%.4g"),
                                "std": st.column_config.NumberColumn(format="%.3g")})


def fit_table(rows) -> None:
    """Slope of λ̂ against K with its 95% confidence interval per architecture, and the test that the
    two slopes are equal (llc_core.variability.slope_difference)."""
    fits = slope_fits(rows)
    st.dataframe(pd.DataFrame([{"architecture": a, "slope dλ̂/dK": f.slope, "95% CI low": f.ci_low,
                                "95% CI high": f.ci_high, "std error": f.se, "intercept": f.intercept,
                                "R²": f.r2, "runs": f.n} for a, f in fits.items()]),
                 hide_index=True, column_config={k: st.column_config.NumberColumn(format="%.3g") for k in (
                     "slope dλ̂/dK", "95% CI low", "95% CI high", "std error", "intercept", "R²")})
    if len(fits) == 2:
        (a, fa), (b, fb) = fits.items()
        d = slope_difference(fa, fb)
        if math.isfinite(d.p_value):
            st.markdown(f"**Slope difference {a} − {b} = {d.difference:.3g}** (95% CI {d.ci_low:.3g} … "
                        f"{d.ci_high:.3g}); t = {d.t:.2f} on {d.df} degrees of freedom, two-sided p = "
                        f"{d.p_value:.2g} — " + ("the slopes differ (p < 0.05)." if d.p_value < 0.05 else
                                                 "no evidence that the slopes differ (p ≥ 0.05)."))
            st.caption("OLS over every run (each seed a point); the test pools the residual variance of both "
                       "fits (t with n₁ + n₂ − 4 degrees of freedom).")


def live_view():
    job = page.job
    state, current, _, error = job.peek()
    rows = job.snapshot_rows()
    total = len(job.items)
    settings = st.session_state.get("var_settings") or {}
    if state == "failed":
        st.error(f"The experiment failed: {error}")
    elif state == "running":
        name = job.items[current]["name"] if current is not None else "…"
        st.progress(len(rows) / total, text=f"{len(rows)} of {total} runs done · running {name}")
    else:
        partial = " (stopped: partial results)" if state == "stopped" else ""
        cached = sum(r.cached for r in rows)
        st.caption(f"{len(rows)} of {total} runs{partial} · {cached} from the cache · {settings_text(settings)}")
    if settings.get("draws", SHORT_DRAWS) < SHORT_DRAWS:
        st.warning(f"These runs have {settings['draws']} draws each: short. Flagged (hollow) points are common "
                   f"at this length; rerun with at least {SHORT_DRAWS} draws before reading the slopes.")
    if not rows:
        return
    summary = summarize(rows)
    flagged = sum(r.flagged for r in rows)
    show_figure(variability_figure(summary), key="var_chart")
    if flagged:
        st.caption(f"⚠ {flagged} of {len(rows)} runs flagged: drawn hollow, their flag codes in the hover and in "
                   "the run table below.")
    fit_table(rows)
    table = pd.DataFrame(per_k_rows(summary, flag_mark=" ⚠")).rename(columns={a: f"{a} λ̂" for a in summary})
    st.dataframe(table, hide_index=True)
    st.caption("⚠: at least one seed's run was flagged (its codes in the run table; open it on Estimate to see "
               f"why). Cache: {cache_dir()}")
    st.subheader("Every run")
    run_table(rows)


page.live(live_view)
