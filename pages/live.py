"""Drawing a running or finished estimate (status, metrics, flags, plots, downloads).

Shared by Estimate, MLP vs CNN and Learn; the pages poll it from a fragment."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import streamlit as st

from llc_core import __version__, history
from llc_core import convergence as cv
from llc_core.convergence import MIN_POINTS
from llc_core.plots import diagnostics_figure, lambda_figure, loss_figure
from llc_core.trace_plots import chain_panels_figure, density_figure, rank_figure
from pages.browser import browser_id
from pages.common import show_figure

PLOTS = ["Loss traces", "Running λ̂", "Per chain", "Rank plot", "Density", "Diagnostics"]
FIRST_RECORD_WAIT = 0.6  # seconds a just-started run's first draw may wait for its first record
STATUS_STYLE = {"ok": "green", "warning": "orange", "negative": "red", "diverged": "red"}
NEVER_STARTED = "Stopped before it started (it left the queue): nothing ran. Press **Run** to queue again."
RUN_STATE = {"running": "running", "done": "finished", "stopped": "stopped (partial result)", "failed": "failed"}
# Panels whose finished runs go to the run history (pages/history.py): Estimate's own runs.
HISTORY_KEYS = ("estimate",)


def status_word(status: str) -> str:
    return f":{STATUS_STYLE.get(status, 'gray')}[**{status}**]"


def status_line(state, status, progress):
    where = ""
    if progress is not None and state == "running":
        phase = "burn-in" if progress.phase == "burnin" else "sampling"
        where = f" · step {progress.step:,} / {progress.total_steps:,} ({phase})"
    st.markdown(f"Status: {status_word(status)} · {RUN_STATE.get(state, state)}{where}")


def show_flags(flags):
    for flag in flags:
        box = st.error if flag.code in ("diverged", "negative") else st.warning
        box(f"**{flag.code}** — {flag.message}  \n**Fix:** {flag.fix}", icon="⚠️")


def downloads(result, info, key: str):
    """CSV and JSON of the run, named after its model and settings."""
    model = info.get("model") or info.get("name") or "model"
    stem = result.file_stem(model)
    frame = result.download_frame(model)
    payload = {"llc_lab_version": __version__, "model": info, "result": result.to_json_dict()}
    a, b = st.columns(2)
    a.download_button("Download traces (CSV)", frame.to_csv(index=False), f"{stem}_traces.csv", "text/csv",
                      width="stretch", key=f"{key}_csv")
    b.download_button("Download run (JSON)", json.dumps(payload, indent=1, default=str), f"{stem}.json",
                      "application/json", width="stretch", key=f"{key}_json")


def numbers(job):
    """(state, status, λ̂, std, chains used, progress, final result) of a job right now."""
    state, progress, result, _ = job.peek()
    final = result if state in ("done", "stopped") else None
    status = final.status if final else (progress.status if progress else "ok")
    lam = final.lambda_hat if final else (progress.lambda_hat if progress else math.nan)
    std = final.lambda_hat_std if final else (progress.lambda_std if progress else math.nan)
    used = final.chains_used if final else (progress.chains_used if progress else 0)
    return state, status, lam, std, used, progress, final


def fmt(value: float, spec: str = ".4g") -> str:
    return "–" if value is None or math.isnan(value) else format(value, spec)


def run_panel(job, info: dict, key: str, plots: bool = True, narrow: bool = False) -> None:
    """Everything about one estimate job. `key` keeps widget keys apart when several panels show;
    `narrow` (a panel in half the page, MLP vs CNN) puts the numbers two to a row."""
    deadline = time.monotonic() + FIRST_RECORD_WAIT
    while (peek := job.peek())[0] == "running" and peek[1] is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the first record comes one step after setup: draw it now, not a poll later
    state, status, lam, std, used, progress, final = numbers(job)
    if state == "failed":
        st.error(f"The run failed: {job.error}")
        return
    if state == "stopped" and progress is None and final is None and getattr(job, "worker_pid", 0) is None:
        st.info(NEVER_STARTED)
        return
    view = job.view()
    status_line(state, status, progress)
    if progress is None and final is None:
        st.caption("Stopped before the first draw: no numbers to show." if state == "stopped"
                   else "Computing L_n(w*) and starting the chains…")
        truth_caption(info)
        return
    fraction, text = progress_of(state, progress, final, view["total_steps"])
    st.progress(fraction, text=text)
    conv = final.diagnostics if final is not None else live_convergence(view, progress)
    mcse = conv.get("lambda_hat_mcse", conv.get("lambda_mcse", math.nan))  # finished / live key
    header(status, lam, used, view, progress, final, mcse, narrow)
    convergence_metrics(conv, final is not None, std, narrow)
    produced_by(final.config if final else getattr(job, "config", None), view["nbeta"], info)
    truth_caption(info)
    show_flags(final.warnings if final else progress.flags)
    if plots:
        # One figure per poll: building a Plotly figure holds the GIL for ~50 ms, time the
        # sampler thread would otherwise lose on every refresh.
        shown = st.segmented_control("Plot", PLOTS, key=f"{key}_plot_view", default=PLOTS[0],
                                     label_visibility="collapsed") or PLOTS[0]
        show_figure(live_figure(shown, view, info), key=f"{key}_chart")
    if final is not None:
        st.caption(f"{final.steps_per_second:,.0f} chain-steps/s · {final.wall_seconds:.1f} s · "
                   f"{final.path} path · {final.sampler} on {final.device} · nβ {info.get('nbeta_text', '')}")
        downloads(final, info, key)
        if key in HISTORY_KEYS:
            remember(job, final, info, state)


def progress_of(state, progress, final, total: int) -> tuple[float, str]:
    """The bar's fraction and words: full once the run finished, even when every chain blew up early."""
    if state == "done":
        done = final.steps_done if final else total
        early = f" early, at step {done:,} of {total:,}: no chain left" if done < total else ""
        return 1.0, f"finished{early}"
    step = final.steps_done if final is not None else (progress.step if progress else 0)
    return min(1.0, step / max(1, total)), f"step {step:,} of {total:,}"


def metric_slots(narrow: bool) -> list:
    """Four places for metrics: one row, or two rows of two in a half-width panel, where four to a row
    cut the values themselves ("L_n(w*) 0.0…", "± 35.8 (MC…" at 1280×720)."""
    return st.columns(4) if not narrow else [*st.columns(2), *st.columns(2)]


def header(status: str, lam: float, used: int, view: dict, progress, final, mcse: float,
           narrow: bool = False) -> None:
    """λ̂ ± MCSE (struck through, with the reason, when chains diverged), chains, L_n(w*), nβ."""
    cols = metric_slots(narrow)
    chains = view["chains"]
    if status == "diverged":
        dead = chains - (used if final else int(progress.alive.sum()) if progress is not None else used)
        cols[0].metric("λ̂", "not valid", help="Chains diverged: the number from the survivors is not an estimate.")
        cols[0].markdown(f"No λ̂: {dead} of {chains} chains diverged" if math.isnan(lam) else
                         f":gray[~~{fmt(lam)}~~] — {dead} of {chains} chains diverged; the survivors' λ̂ "
                         f"is not an estimate")
    else:
        cols[0].metric("λ̂", fmt(lam), None if math.isnan(mcse) else f"± {mcse:.3g} (MCSE)",
                       delta_color="off", delta_arrow="off",
                       help="Pooled over the chains that did not diverge; ± its Monte-Carlo standard error "
                            "(from the effective sample size of the loss draws).")
    alive = int(progress.alive.sum()) if progress is not None else used
    cols[1].metric("chains used" if final else "chains alive", f"{used if final else alive} / {chains}")
    cols[2].metric("L_n(w*)", "–" if view["init_loss"] is None else f"{view['init_loss']:.3g}")
    cols[3].metric("nβ", f"{view['nbeta']:.4g}")


def live_convergence(view: dict, progress) -> dict:
    """R̂, ESS and MCSE of the live loss trace so far ({} before there are enough draws): the
    page's thinned trace (≤ LIVE_POINTS a chain) makes ESS conservative; ArviZ takes ~5 ms."""
    if progress is None or view["init_loss"] is None or not len(view["loss_steps"]):
        return {}
    post = view["loss_steps"] > view["burnin"]
    if post.sum() < MIN_POINTS:
        return {}
    alive = progress.alive & np.isfinite(view["loss"][:, post]).all(axis=1)
    if not alive.any():
        return {}
    return cv.of_trace(view["loss_steps"], view["loss"], view["burnin"], alive, view["nbeta"], 0.0).to_dict()


def convergence_metrics(d: dict, finished: bool, std: float, narrow: bool = False) -> None:
    """R̂ and bulk/tail ESS of the loss draws (ArviZ), of the finished run or of the draws so far."""
    so_far = "" if finished else " (so far)"
    cols = metric_slots(narrow)
    cols[0].metric(f"R̂{so_far}", fmt(d.get("rhat", math.nan), ".3f"), help="rank-normalised split R̂ of the "
                   "loss draws; ≤ 1.05 means the chains agree")
    cols[1].metric(f"ESS bulk{so_far}", fmt(d.get("ess_bulk", math.nan), ",.0f"),
                   help="effective number of independent draws for the mean; ≥ 100 wanted")
    cols[2].metric(f"ESS tail{so_far}", fmt(d.get("ess_tail", math.nan), ",.0f"),
                   help="effective number of independent draws for the tails; ≥ 100 wanted")
    cols[3].metric("std across chains", fmt(std, ".3g"))


def produced_by(config, nbeta: float, info: dict) -> None:
    """The settings of the run on screen, so that a moved slider does not pass for its cause."""
    if config is None:
        return
    sigma = "" if config.noise_scale == 1.0 else f" · σ {config.noise_scale:g}"
    st.caption(f"**This run:** {info.get('name') or info.get('model', '')} · {config.sampler} · "
               f"ε {config.epsilon:.3g} · γ {config.gamma:g} · nβ {nbeta:.4g} · {config.chains} chains × "
               f"{config.draws:,} draws (thin {config.thin}) · burn-in {config.burnin:,} · batch "
               f"{config.batch_size} · seed {config.seed}{sigma}")


def remember(job, final, info: dict, state: str) -> None:
    """Save a finished or stopped run to this browser's history, once per job."""
    if getattr(job, "saved_to_history", False):
        return
    job.saved_to_history = True
    try:
        history.save_run(browser_id(), history.run_record(final, info.get("model", ""), info.get("name", ""), state))
    except (OSError, ValueError, TypeError) as exc:
        st.warning(f"This run could not be saved to the history: {exc}")


def truth_caption(info: dict) -> None:
    """A known-λ toy's λ (and exact finite-n target) beside the estimate."""
    if info.get("true_lambda") is not None:
        target = info.get("target")
        st.caption(f"True λ = {info['true_lambda']:.4g}" + (
            f" · exact finite-n target nβ·E[K] = {target:.4g} (the gap to λ is the estimator's own "
            f"finite-n bias, not sampler error)" if target is not None else ""))


def live_figure(shown: str, view: dict, info: dict):
    if shown in PLOTS[2:5]:
        args = (view["loss_steps"], view["loss"], view["burnin"])
        if shown == "Per chain":
            return chain_panels_figure(*args, view["diverged_steps"], view["total_steps"])
        return rank_figure(*args) if shown == "Rank plot" else density_figure(*args)
    if shown == PLOTS[0]:
        return loss_figure(view["loss_steps"], view["loss"], view["burnin"], view["diverged_steps"],
                           view["total_steps"])
    if shown == PLOTS[1]:
        return lambda_figure(view["lam_steps"], view["lam"], view["pooled"], view["burnin"],
                             info.get("true_lambda"), info.get("target"), view["total_steps"])
    return diagnostics_figure(view["diag_steps"], view["diag"], view["burnin"], view["total_steps"])


def run_info(task, choice: str, nbeta_text: str) -> dict:
    """What a run's downloads and plots need to know about its model."""
    return {"model": choice, "name": task.name, "nbeta_text": nbeta_text, "true_lambda": task.true_lambda,
            "target": task.target_lambda, "num_params": task.num_params, "n": task.n}
