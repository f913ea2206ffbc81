"""Dimensions: λ̂ beside the Hessian at w* and the intrinsic dimension, for one model.

Also two sections other pages call: `dimension_vs_k_section()` (Task variability: any measure
against K for MLP and CNN) and `rank_vs_llc_section()` (Learn: Hessian rank against λ on deep
linear networks). The page's own body runs only as a page script: Streamlit runs page scripts
with `__name__ == "__main__"`, while an import from another page sees "pages.dimensions".
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from llc_core.checkpoints import CACHE_DIR, list_checkpoints
from llc_core.dimension_sweep import MEASURES, DimensionSweepJob, measure_vs_k_figure
from llc_core.dimensions import CAVEATS, DimensionSettings, rank_vs_llc_demo
from llc_core.intrinsic_dim import SubspaceSettings
from llc_core.jobs import DimensionsJob
from pages.common import presentation_toggle, show_figure
from pages.controls import device_picker, run_stop_buttons
from pages.jobview import PageJobs

RANK_TOLERANCES = (1e-3, 1e-4, 1e-5, 1e-6, 1e-8, 1e-10)
STAGES = {"lambda_hat": "1/3 λ̂ (SGLD)", "hessian": "2/3 Hessian", "d_int90": "3/3 intrinsic dimension"}


def _fmt(value, spec=".4g") -> str:
    return "–" if value is None else format(value, spec)


def settings_sidebar(prefix: str, disabled: bool, device: str = "cpu") -> DimensionSettings:
    """The measures' settings (modest defaults: a dashboard run takes about a minute on a CPU)."""
    ss = st.session_state
    for key, value in (("eig", 10), ("probes", 10), ("rtol", 1e-6), ("chains", 2), ("draws", 300), ("steps", 200)):
        ss.setdefault(prefix + key, value)
    st.number_input("Top eigenvalues (Lanczos)", 1, 200, key=prefix + "eig", disabled=disabled)
    st.number_input("Hutchinson probes (trace)", 2, 1000, key=prefix + "probes", disabled=disabled)
    st.select_slider("Rank tolerance (relative to the top |eigenvalue|)", RANK_TOLERANCES, key=prefix + "rtol",
                     disabled=disabled, format_func=lambda v: f"{v:g}")
    st.number_input("SGLD chains (λ̂)", 1, 16, key=prefix + "chains", disabled=disabled)
    st.number_input("SGLD draws per chain (λ̂)", 50, 20_000, step=50, key=prefix + "draws", disabled=disabled)
    st.number_input("Adam steps per subspace (d_int90)", 10, 5000, step=50, key=prefix + "steps", disabled=disabled)
    return DimensionSettings(eigenvalues=int(ss[prefix + "eig"]), probes=int(ss[prefix + "probes"]),
                             rank_rtol=float(ss[prefix + "rtol"]), chains=int(ss[prefix + "chains"]),
                             draws=int(ss[prefix + "draws"]), subspace=SubspaceSettings(steps=int(ss[prefix + "steps"])),
                             device=device)


def spectrum_figure(values: list, rtol: float) -> go.Figure:
    fig = go.Figure(go.Scatter(x=list(range(1, len(values) + 1)), y=values, mode="markers+lines", name="eigenvalue"))
    if values:
        fig.add_hline(y=rtol * max(abs(v) for v in values), line_dash="dot",
                      annotation_text="rank tolerance", annotation_position="bottom right")
    fig.update_layout(title="Top of the Hessian spectrum", xaxis_title="index (largest first)",
                      yaxis_title="eigenvalue", height=320, margin=dict(l=40, r=20, t=50, b=40))
    return fig


def curve_figure(curve: list, target: float | None, metric: str) -> go.Figure:
    ds, perf = (zip(*curve) if curve else ((), ()))
    fig = go.Figure(go.Scatter(x=list(ds), y=list(perf), mode="markers+lines", name=metric))
    if target is not None:
        fig.add_hline(y=target, line_dash="dot", annotation_text="90% of the full model",
                      annotation_position="bottom right")
    fig.update_layout(title="Training in random subspaces", xaxis_title="subspace dimension d", xaxis_type="log",
                      yaxis_title=f"training {metric}", height=320, margin=dict(l=40, r=20, t=50, b=40))
    return fig


def metric_card(column, label: str, value: str, caveat: str) -> None:
    with column.container(border=True):
        st.metric(label, value)
        st.caption(caveat)


def show_measures(out: dict) -> None:
    """The six measures side by side, each with its one-line caveat, then the two plots."""
    top = out.get("top_eigenvalues") or []
    rank = out.get("numerical_rank")
    rank_text = "–" if rank is None else (f"≥ {rank}" if out.get("rank_is_lower_bound") else str(rank))
    cards = [
        ("λ̂ ± MCSE", f"{_fmt(out.get('lambda_hat'))} ± {_fmt(out.get('lambda_hat_mcse'), '.2g')}", "lambda_hat"),
        ("Hessian trace ± s.e.", f"{_fmt(out.get('hessian_trace'))} ± {_fmt(out.get('hessian_trace_se'), '.2g')}",
         "hessian_trace"),
        ("Top eigenvalue", _fmt(top[0] if top else None), "top_eigenvalues"),
        ("Numerical rank", rank_text, "numerical_rank"),
        ("d_int90", _fmt(out.get("d_int90"), "d"), "d_int90"),
        ("Parameters D", f"{out['num_params']:,}", "num_params"),
    ]
    for row in (cards[:3], cards[3:]):
        for column, (label, value, key) in zip(st.columns(3), row):
            metric_card(column, label, value, CAVEATS[key])
    left, right = st.columns(2)
    if top:
        with left:
            show_figure(spectrum_figure(top, out.get("rank_tolerance", 1e-6)), key="dim_spectrum")
    if out.get("d_int90_curve"):
        with right:
            show_figure(curve_figure(out["d_int90_curve"], out.get("full_performance", 0) * 0.9,
                                     out.get("d_int_metric", "")), key="dim_curve")
    if out.get("true_lambda") is not None:
        st.caption(f"Known λ of this toy: {out['true_lambda']:.4g} (2λ = {2 * out['true_lambda']:.4g}).")


def live_view(page: PageJobs) -> None:
    job = page.job
    state, update, result, error = job.peek()
    if state == "failed":
        st.error(f"The measurement failed: {error}")
        return
    out = result if result else job.part()
    if state in ("running", "queued"):
        stage, fraction, text = update or ("lambda_hat", 0.0, "starting…")
        st.progress(min(1.0, max(0.0, fraction)), text=f"{STAGES.get(stage, stage)}: {text}")
    elif state == "stopped" or not (out or {}).get("completed"):
        st.caption("Stopped: partial results." if out else "Stopped before any measure finished.")
    else:
        st.caption("Done" + (" (from the cache)." if out.get("cached") else "."))
    if out:
        show_measures(out)


def page_main() -> None:
    from pages.models import model_picker

    st.title("Dimensions: λ̂ beside the Hessian and the intrinsic dimension")
    st.caption("One model, three ways to count its effective dimensions: the local learning coefficient λ̂ "
               "(SGLD), the Hessian of the training loss at w* (top spectrum by Lanczos, trace by Hutchinson, "
               "numerical rank) and the intrinsic dimension d_int90 (Li et al. 2018: the smallest random "
               "subspace whose training reaches 90% of the model's performance). At a minimum expect "
               "rank(H) ≤ 2λ ≤ D. Finished measurements are cached by weights hash and settings.")
    page = PageJobs("dimensions", start_keys=("dim_run",))
    with st.sidebar:
        presentation_toggle()
        _, task = model_picker(disabled=page.running, key="dim_model")
        settings = settings_sidebar("dim_", page.running, device_picker(page.running))
        _, stop_clicked = run_stop_buttons("dim_", page.busy, task is not None)
    if stop_clicked:
        page.stop()
    if page.pressed("dim_run") and task is not None:
        page.start(lambda: DimensionsJob(task, settings))
    if page.idle:
        st.info("Pick a model and press **Run**: λ̂ first, then the Hessian, then d_int90; each appears as it "
                "finishes.")
        return
    page.live(lambda: live_view(page))


@st.cache_data(ttl=30, show_spinner=False)
def seed0_models() -> list[dict]:
    """The seed-0 MNIST-1D checkpoints of cached_models/, by architecture and K."""
    metas = [m for m in list_checkpoints(CACHE_DIR) if m["dataset"] == "mnist1d" and m["seed"] == 0]
    return sorted(metas, key=lambda m: (m["arch"]["kind"], m["classes"]))


def dimension_vs_k_section() -> None:
    """Task variability's extra plot: any measure of llc_core.dimensions against K, MLP and CNN
    (seed 0), each checkpoint measured once and cached."""
    st.header("Other measures of dimension against K")
    st.caption("λ̂ (± MCSE), the Hessian's trace (± s.e.), top eigenvalue and numerical rank, the intrinsic "
               "dimension d_int90 and the parameter count, for the seed-0 MLP and CNN at the chosen K (the "
               "Dimensions page shows one model in full). Short settings; every checkpoint is cached.")
    page = PageJobs("dimension_sweep", start_keys=("dimk_run",))
    metas = seed0_models()
    ks = sorted({m["classes"] for m in metas})
    st.session_state.setdefault("dimk_ks", [k for k in (2, 5, 10) if k in ks])
    left, right = st.columns([3, 2])
    left.multiselect("Classes K", ks, key="dimk_ks", disabled=page.running)
    measure = right.selectbox("Measure", list(MEASURES), format_func=lambda m: MEASURES[m][0], key="dimk_measure")
    chosen = [m for m in metas if m["classes"] in st.session_state["dimk_ks"]]
    with st.expander("Settings"):
        settings = settings_sidebar("dimk_", page.running)
    _, stop_clicked = run_stop_buttons("dimk_", page.busy, bool(chosen))
    if stop_clicked:
        page.stop()
    if page.pressed("dimk_run") and chosen:
        page.start(lambda: DimensionSweepJob(chosen, settings))
    if page.idle:
        st.info(f"{len(chosen)} checkpoints chosen: press **Run** to measure them.")
        return
    page.live(lambda: _sweep_view(page, measure))


def _sweep_view(page: PageJobs, measure: str) -> None:
    job = page.job
    state, update, _, error = job.peek()
    rows = job.snapshot_rows()
    if state == "failed":
        st.error(f"The measurement failed: {error}")
    elif state in ("running", "queued") and update:
        index, stage, text = update
        st.progress(len(rows) / len(job.items), text=f"{len(rows)} of {len(job.items)} checkpoints · "
                    f"{job.items[index]['name']}: {STAGES.get(stage, stage)}: {text}")
    elif state == "stopped":
        st.caption("Stopped: partial results.")
    if rows:
        show_figure(measure_vs_k_figure(rows, measure), key="dimk_chart")
        st.dataframe(pd.DataFrame(rows), hide_index=True)


@st.cache_data(show_spinner="Exact Hessians of the deep linear networks…")
def _rank_table() -> pd.DataFrame:
    return pd.DataFrame(rank_vs_llc_demo())


def rank_vs_llc_section() -> None:
    """Learn's case: the Hessian rank against 2λ on deep linear networks at their teacher."""
    st.header("What the Hessian cannot see")
    st.markdown(r"""
At a deep linear network's teacher the residual is zero, so the Hessian is the Gauss–Newton matrix
JᵀJ, computed here exactly (float64). Its rank counts the directions where the loss rises
quadratically; λ counts every direction by how fast the loss rises, so at a minimum
**rank(H) ≤ 2λ ≤ D**. The gap 2λ − rank(H) is the degeneracy the Hessian misses: directions of zero
curvature along which the loss still grows, at fourth order or higher. With rank-0 teachers and three
or more layers the Hessian is the zero matrix (rank 0, trace 0: "perfectly flat") while λ > 0.
The gap D − 2λ is what the parameter count misses. (At a minimum 2λ cannot fall below the rank:
the quadratic directions alone contribute rank(H)/2.)
""")
    st.dataframe(_rank_table(), hide_index=True, width="stretch",
                 column_config={"Hessian trace": st.column_config.NumberColumn(format="%.4g"),
                                "top eigenvalue": st.column_config.NumberColumn(format="%.4g")})
    st.caption("λ̂ estimates these λ: try dln:5,5,5:r0 with **Estimate it** above, or on the Dimensions page.")


if __name__ == "__main__":  # run as a page (see the module docstring), not imported for a section
    page_main()
