"""Estimate: pick a model, set the SGLD hyperparameters, press Run and watch λ̂ converge."""

import json
import math

import streamlit as st

from llc_core import __version__
from llc_core.config import InputError
from llc_core.jobs import EstimateJob
from llc_core.plots import diagnostics_figure, lambda_figure, loss_figure
from pages.common import (DEFAULT_MODEL, UPLOAD, apply_defaults, cached_task, hyperparameter_controls,
                          init_defaults, model_catalogue, session_jobs, uploaded_task)

PLOTS = ["Loss traces", "Running λ̂", "Diagnostics"]
STATUS_STYLE = {"ok": "green", "warning": "orange", "negative": "red", "diverged": "red"}

st.title("Estimate λ̂")
jobs = session_jobs()
job = jobs.get("estimate")
running = job is not None and job.running
catalogue = model_catalogue()
choices = list(catalogue)
if st.session_state.get("model") not in choices:
    url_model = st.query_params.get("model")  # a shared link's model wins over the default
    st.session_state["model"] = url_model if url_model in choices else (
        DEFAULT_MODEL if DEFAULT_MODEL in choices else choices[0])


def on_model_change():
    choice = st.session_state["model"]
    if choice != UPLOAD:
        try:
            apply_defaults(cached_task(choice))
        except InputError:
            pass  # reported below, where the task is loaded again


with st.sidebar:
    st.selectbox("Model", choices, key="model", format_func=catalogue.get, on_change=on_model_change,
                 disabled=running, bind="query-params")
    choice = st.session_state.get("model", DEFAULT_MODEL)
    task = None
    try:
        if choice == UPLOAD:
            files = st.file_uploader("Weights (.safetensors) and metadata (.json)", type=["safetensors", "json"],
                                     accept_multiple_files=True, key="upload_files")
            if files:
                task = uploaded_task(files)
        else:
            task = cached_task(choice)
    except InputError as exc:
        st.error(f"Cannot use this model: {exc}")
    except Exception as exc:  # a broken file must not take the page down
        st.error(f"Cannot use this model ({type(exc).__name__}): {exc}")
    config = None
    if task is not None:
        init_defaults(task)
        st.caption(f"{task.num_params:,} parameters · n = {task.n:,} training points")
        config, nbeta_text = hyperparameter_controls(task, disabled=running)
        if st.button("Reset to this model's defaults", disabled=running):
            apply_defaults(task)
            st.rerun()
    left, right = st.columns(2)
    run_clicked = left.button("Run", key="run", type="primary", disabled=running or config is None,
                              use_container_width=True)
    stop_clicked = right.button("Stop", key="stop", disabled=not running, use_container_width=True)

if stop_clicked and job is not None:
    job.stop()
if run_clicked and config is not None:
    try:
        job = jobs.start("estimate", EstimateJob(task, config))
        st.session_state["estimate_info"] = {"model": choice, "name": task.name, "nbeta_text": nbeta_text,
                                             "true_lambda": task.true_lambda, "target": task.target_lambda,
                                             "num_params": task.num_params, "n": task.n}
        st.rerun()
    except InputError as exc:
        st.error(str(exc))

if job is None:
    st.info("Pick a model and its SGLD settings in the sidebar, then press **Run**: every chain's loss "
            "trace and the running λ̂ stream in here, with a flag (cause and fix) the moment something "
            "goes wrong.")
    st.stop()


def status_line(state, status, progress):
    color = STATUS_STYLE.get(status, "gray")
    where = ""
    if progress is not None:
        phase = "burn-in" if progress.phase == "burnin" else "sampling"
        where = f" · step {progress.step:,} / {progress.total_steps:,} ({phase})"
    run_state = {"running": "running", "done": "finished", "stopped": "stopped (partial result)",
                 "failed": "failed"}.get(state, state)
    st.markdown(f"Status: :{color}[**{status}**] · {run_state}{where}")


def show_flags(flags):
    for flag in flags:
        box = st.error if flag.code in ("diverged", "negative") else st.warning
        box(f"**{flag.code}** — {flag.message}  \n**Fix:** {flag.fix}", icon="⚠️")


def downloads(result, info):
    frame = result.traces_frame()
    payload = {"llc_lab_version": __version__, "model": info, "result": result.to_json_dict()}
    a, b = st.columns(2)
    a.download_button("Download traces (CSV)", frame.to_csv(index=False), "llc_traces.csv", "text/csv",
                      use_container_width=True)
    b.download_button("Download run (JSON)", json.dumps(payload, indent=1), "llc_run.json",
                      "application/json", use_container_width=True)


@st.fragment(run_every=1.0 if running else None)
def live_view():
    state, progress, result, error = job.peek()
    info = st.session_state.get("estimate_info", {})
    if state == "failed":
        st.error(f"The run failed: {error}")
        return
    view = job.view()
    final = result if state in ("done", "stopped") else None
    status = final.status if final else (progress.status if progress else "ok")
    status_line(state, status, progress)
    if progress is None and final is None:
        st.caption("Computing L_n(w*) and starting the chains…")
        return
    st.progress(min(1.0, (progress.step if progress else 0) / max(1, view["total_steps"])))
    lam = final.lambda_hat if final else progress.lambda_hat
    std = final.lambda_hat_std if final else progress.lambda_std
    used = final.chains_used if final else progress.chains_used
    cols = st.columns(4)
    cols[0].metric("λ̂", "–" if math.isnan(lam) else f"{lam:.4g}", None if math.isnan(std) else f"± {std:.3g} (std)",
                   delta_color="off")
    alive = int(progress.alive.sum()) if progress is not None else used
    cols[1].metric("chains used" if used else "chains alive", f"{used or alive} / {view['chains']}")
    cols[2].metric("L_n(w*)", "–" if view["init_loss"] is None else f"{view['init_loss']:.4g}")
    cols[3].metric("nβ", f"{job.run.nbeta:.4g}")
    if info.get("true_lambda") is not None:
        target = info.get("target")
        st.caption(f"True λ = {info['true_lambda']:.4g}" + (
            f" · exact finite-n target nβ·E[K] = {target:.4g} (the gap to λ is the estimator's own "
            f"finite-n bias, not sampler error)" if target is not None else ""))
    show_flags(final.warnings if final else progress.flags)
    # One figure per poll: building a Plotly figure holds the GIL for ~50 ms, time the
    # sampler thread would otherwise lose on every refresh.
    shown = st.segmented_control("Plot", PLOTS, key="plot_view", default=PLOTS[0],
                                 label_visibility="collapsed") or PLOTS[0]
    if shown == PLOTS[0]:
        fig = loss_figure(view["loss_steps"], view["loss"], view["burnin"], view["diverged_steps"],
                          view["total_steps"])
    elif shown == PLOTS[1]:
        fig = lambda_figure(view["lam_steps"], view["lam"], view["pooled"], view["burnin"],
                            info.get("true_lambda"), info.get("target"), view["total_steps"])
    else:
        fig = diagnostics_figure(view["diag_steps"], view["diag"], view["burnin"], view["total_steps"])
    st.plotly_chart(fig, key="live_chart")
    if final is not None:
        st.caption(f"{final.steps_per_second:,.0f} chain-steps/s · {final.wall_seconds:.1f} s · "
                   f"{final.path} path · nβ {info.get('nbeta_text', '')}")
        downloads(final, info)
    if state != "running" and running:
        st.rerun()  # re-enable the controls once the run ends


live_view()
