"""MLP vs CNN: two models, the same SGLD settings, run side by side with λ̂ overlaid live."""

import math

import pandas as pd
import streamlit as st

from llc_core.jobs import EstimateJob
from llc_core.plots import compare_figure
from pages.controls import (EPS_GRID, apply_defaults, defaults_for, hyperparameter_controls, init_defaults,
                            reset_button, run_stop_buttons, show_url_problems, snap)
from pages.jobview import PageJobs
from pages.models import DEFAULT_MODEL, model_picker
from pages.live import fmt, numbers, run_info, run_panel, status_word

PREFIX = "cmp_"
SLOTS = ("compare_a", "compare_b")


def shared_defaults(task_a, task_b) -> dict:
    """Settings safe for both: the smaller ε, the larger γ, the longer run."""
    a, b = defaults_for(task_a), defaults_for(task_b)
    out = dict(a)
    out["epsilon"] = snap(min(a["epsilon"], b["epsilon"]), EPS_GRID)
    for key in ("gamma", "chains", "draws", "burnin"):
        out[key] = max(a[key], b[key])
    out["batch_size"] = min(a["batch_size"], b["batch_size"])
    return out


st.title("MLP vs CNN")
st.caption("Two models, the same SGLD settings, run at the same time. Defaults: the MNIST-1D MLP and CNN "
           "with the same classes and seed.")
page = PageJobs(*SLOTS)
running = page.running
if "cmp_b" not in st.session_state and "cmp_b" not in st.query_params:
    st.session_state["cmp_b"] = DEFAULT_MODEL.replace("_cnn_", "_mlp_")

with st.sidebar:
    choice_a, task_a = model_picker(running, key="cmp_a", allow_upload=False, label="Model A")
    choice_b, task_b = model_picker(running, key="cmp_b", allow_upload=False, label="Model B")
    config = None
    if task_a is not None and task_b is not None:
        pair = (choice_a, choice_b)
        if st.session_state.get("cmp_pair") != pair:  # a new pair gets settings safe for both
            fill = apply_defaults if "cmp_pair" in st.session_state else init_defaults
            fill(task_a, PREFIX, shared_defaults(task_a, task_b))
            st.session_state["cmp_pair"] = pair
        show_url_problems()
        small = task_a if task_a.n <= task_b.n else task_b  # batch and nβ must suit both
        config, nbeta_text = hyperparameter_controls(small, disabled=running, prefix=PREFIX)
        reset_button("Reset to settings safe for both", shared_defaults(task_a, task_b), key="cmp_reset",
                     prefix=PREFIX, disabled=running)
    run_clicked, stop_clicked = run_stop_buttons("cmp_", running, config is not None, "Run both")

if stop_clicked:
    page.stop()
if run_clicked and config is not None:
    for slot, task, choice in zip(SLOTS, (task_a, task_b), (choice_a, choice_b)):
        st.session_state[f"{slot}_info"] = run_info(task, choice, nbeta_text)
    page.start(lambda: [EstimateJob(task_a, config), EstimateJob(task_b, config)])

if page.idle:
    st.info("Pick two models (A and B) and one set of SGLD settings in the sidebar, then press **Run both**. "
            "Both λ̂ traces stream into one plot, and a comparison table appears when they finish.")
    st.stop()


def label(slot: str) -> str:
    info = st.session_state.get(f"{slot}_info", {})
    return f"{'AB'[SLOTS.index(slot)]}: {info.get('name', slot)}"


def comparison_table(jobs_now):
    rows = []
    for slot, job in zip(SLOTS, jobs_now):
        state, status, lam, std, used, _, final = numbers(job)
        info = st.session_state.get(f"{slot}_info", {})
        rows.append({"model": label(slot), "parameters": info.get("num_params"), "λ̂": lam,
                     "std across chains": std, "std error": final.lambda_hat_se if final else math.nan,
                     "chains used": used, "status": status,
                     "flags": ", ".join(f.code for f in final.warnings) if final else "",
                     "run": state})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={"λ̂": st.column_config.NumberColumn(format="%.4g"),
                                "std across chains": st.column_config.NumberColumn(format="%.3g"),
                                "std error": st.column_config.NumberColumn(format="%.3g")})
    a, b = rows
    diff, se = a["λ̂"] - b["λ̂"], math.hypot(a["std error"], b["std error"])
    if all(r["run"] in ("done", "stopped") for r in rows) and math.isfinite(diff):
        sig = f", {abs(diff) / se:.1f} standard errors" if se > 0 and math.isfinite(se) else ""
        partial = " (partial: stopped early)" if any(r["run"] == "stopped" for r in rows) else ""
        st.markdown(f"**A − B = {fmt(diff)}** (± {fmt(se, '.3g')}{sig}){partial}. "
                    f"A: {status_word(a['status'])} · B: {status_word(b['status'])}")


def live_view():
    jobs_now = [page.slot.get(s) for s in SLOTS]
    views = [j.view() for j in jobs_now]
    runs = [{"label": label(s), "steps": v["lam_steps"], "lam": v["lam"], "pooled": v["pooled"],
             "burnin": v["burnin"]} for s, v in zip(SLOTS, views)]
    st.plotly_chart(compare_figure(runs, max(v["total_steps"] for v in views)), key="cmp_chart")
    comparison_table(jobs_now)
    for col, slot, job in zip(st.columns(2), SLOTS, jobs_now):
        with col:
            st.subheader(label(slot))
            run_panel(job, st.session_state.get(f"{slot}_info", {}), key=slot, plots=False)


page.live(live_view)
