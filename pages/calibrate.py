"""Calibrate: sweep ε × γ (× nβ) with short chains, see where λ̂ is stable, or let auto-calibrate choose."""

import math

import pandas as pd
import streamlit as st

from llc_core.calibrate import pilot_config, pilot_grid
from llc_core.sweep import SweepGrid
from llc_core.limits import (MAX_CELL_BURNIN, MAX_CELL_CHAINS, MAX_CELL_DRAWS, MAX_SWEEP_CELLS, UI_MAX_BURNIN,
                             UI_MAX_CHAINS, UI_MAX_DRAWS)
from llc_core.config import InputError
from llc_core.jobs import AutoCalibrateJob, SweepJob
from llc_core.plots import sweep_heatmap
from pages.common import send_to_estimate
from pages.controls import EPS_GRID, GAMMA_GRID, reset_button, run_stop_buttons, snap
from pages.jobview import PageJobs
from pages.models import model_picker

NBETA_MULTS = [0.25, 0.5, 1.0, 2.0, 4.0]


def sweep_defaults(task) -> dict:
    grid, pilot = pilot_grid(task), pilot_config(task)
    return {"cal_epsilons": sorted({snap(e, EPS_GRID) for e in grid.epsilons}),
            "cal_gammas": sorted({snap(g, GAMMA_GRID) for g in grid.gammas}), "cal_nbeta_mults": [1.0],
            "cal_chains": min(MAX_CELL_CHAINS, pilot.chains), "cal_draws": pilot.draws, "cal_burnin": pilot.burnin}


def sweep_controls(task, disabled: bool):
    """Grid and pilot-chain controls; returns (grid, pilot config) or (None, None) if invalid."""
    ss = st.session_state
    if ss.get("cal_grid_for") != ss["cal_model"]:  # new model: its own pilot grid
        ss.update(sweep_defaults(task))
        ss["cal_grid_for"] = ss["cal_model"]
    st.multiselect("Step sizes ε", EPS_GRID, key="cal_epsilons",
                   persist_state="session", format_func=lambda v: f"{v:.1e}",
                   disabled=disabled)
    st.multiselect("Localizations γ", [g for g in GAMMA_GRID if g > 0], key="cal_gammas", persist_state="session",
                   format_func=lambda v: f"{v:g}", disabled=disabled)
    st.multiselect("nβ multipliers (× n/log n)", NBETA_MULTS, key="cal_nbeta_mults",
                   persist_state="session", format_func=lambda v: f"{v:g}×",
                   disabled=disabled)
    st.slider("Chains per cell", 1, MAX_CELL_CHAINS, key="cal_chains", persist_state="session", disabled=disabled)
    st.number_input("Draws per cell", 10, MAX_CELL_DRAWS, step=50, key="cal_draws",
                    persist_state="session", disabled=disabled)
    st.number_input("Burn-in per cell", 0, MAX_CELL_BURNIN, step=50, key="cal_burnin",
                    persist_state="session", disabled=disabled)
    reset_button("Reset to the pilot grid", sweep_defaults(task), key="cal_reset", disabled=disabled)
    grid = SweepGrid(tuple(ss["cal_epsilons"]), tuple(ss["cal_gammas"]), tuple(ss["cal_nbeta_mults"]))
    pilot = task.defaults.replace(chains=int(ss["cal_chains"]), draws=int(ss["cal_draws"]),
                                               burnin=int(ss["cal_burnin"]))
    try:
        grid.validate(pilot, task.n)
    except InputError as exc:
        st.error(str(exc))
        return None, None
    cells = len(grid.points())
    st.caption(f"{cells} cells (at most {MAX_SWEEP_CELLS}) × {pilot.chains} chains × {pilot.total_steps:,} steps")
    return grid, pilot


def auto_length_controls(task, disabled: bool):
    """The full run length auto-calibrate confirms at (its pilot cells are a fifth of it)."""
    with st.expander("Auto-calibrate: full run length"):
        st.number_input("Chains", 1, UI_MAX_CHAINS, value=min(task.defaults.chains, UI_MAX_CHAINS),
                        key="cal_full_chains", disabled=disabled)
        st.number_input("Draws per chain", 100, UI_MAX_DRAWS, value=task.defaults.draws, step=100,
                        key="cal_full_draws", disabled=disabled)
    ss = st.session_state
    return task.defaults.replace(chains=int(ss["cal_full_chains"]), draws=int(ss["cal_full_draws"]))


st.title("Calibrate")
st.caption("Short chains over a grid of step sizes ε and localizations γ: find where λ̂ is stable before "
           "spending a long run. **Auto-calibrate** walks ε over as many decades as it takes (short chains), "
           "confirms at full length, grows the chains when they are too short, and recommends only settings "
           "whose own run carried no flag.")
page = PageJobs("calibrate")
job, running = page.job, page.running

with st.sidebar:
    choice, task = model_picker(disabled=running, key="cal_model")
    grid = pilot = None
    if task is not None:
        st.caption(f"{task.num_params:,} parameters · n = {task.n:,}")
        grid, pilot = sweep_controls(task, running)
    sweep_clicked, stop_clicked = run_stop_buttons("cal_", running, grid is not None, "Run sweep")
    full = auto_length_controls(task, running) if task is not None else None
    auto_clicked = st.button("Auto-calibrate", key="cal_auto", disabled=running or task is None,
                             width="stretch", help="ε bracket on a half-decade ladder, full-length "
                             "confirmation with a one-step-lower agreement check, within a time budget.")

if stop_clicked:
    page.stop()
if (sweep_clicked and grid is not None) or (auto_clicked and task is not None):
    page.start(lambda: AutoCalibrateJob(task, base=full) if auto_clicked else SweepJob(task, grid, pilot),
               {"model": choice, "name": task.name, "auto": bool(auto_clicked),
                "true_lambda": task.true_lambda, "target": task.target_lambda}, "cal_info")

if job is None:
    st.info("Choose a model and a grid in the sidebar and press **Run sweep**, or press **Auto-calibrate** "
            "for a recommendation. Cells fill in as they finish.")
    st.stop()


def cell_table(cells) -> pd.DataFrame:
    return pd.DataFrame([{"ε": c.epsilon, "γ": c.gamma, "nβ": c.nbeta, "λ̂": c.lambda_hat, "std": c.lambda_std,
                          "verdict": c.verdict, "MALA": c.mala, "flags": ", ".join(c.flags),
                          "seconds": c.seconds} for c in cells])


def heatmaps(job, cells, chosen):
    mults = sorted(set(job.grid.nbeta_multipliers))
    tabs = st.tabs([f"nβ × {m:g}" for m in mults]) if len(mults) > 1 else [st.container()]
    for tab, m in zip(tabs, mults):
        layer = {(c.epsilon, c.gamma): (c.lambda_hat, c.verdict) for c in cells if c.nbeta_multiplier == m}
        mark = (chosen.epsilon, chosen.gamma) if chosen is not None and chosen.nbeta_multiplier == m else None
        with tab:
            # auto-calibrate's cells go where its bracket takes them, beyond the start grid
            epsilons = sorted(set(job.grid.epsilons) | {c.epsilon for c in cells})
            gammas = sorted(set(job.grid.gammas) | {c.gamma for c in cells})
            st.plotly_chart(sweep_heatmap(epsilons, gammas, layer, mark),
                            key=f"cal_heatmap_{m:g}")


def recommendation_box(rec, info):
    if not rec.found:
        st.error("**No recommendation.** " + " ".join(rec.reasons))
        return
    box = st.success if rec.confirmed else st.warning
    c = rec.config
    box(f"**Recommended: ε = {rec.epsilon:.3g}, γ = {rec.gamma:g}, nβ = {rec.nbeta:.4g}, sampler {c.sampler}, "
        f"{c.chains} chains × {c.draws} draws (burn-in {c.burnin}, thin {c.thin}), batch {c.batch_size}**"
        + ("" if rec.confirmed else " — not confirmed"))
    span = f" (runs gave {rec.lambda_range[0]:.4g} … {rec.lambda_range[1]:.4g})" if rec.lambda_range else ""
    st.markdown(f"λ̂ = {rec.lambda_hat:.4g} ± {rec.lambda_hat_se:.2g}, status **{rec.status}**{span}")
    st.markdown("\n".join(f"- {r}" for r in rec.reasons))
    if info.get("true_lambda") is not None:
        ref = info.get("target") or info["true_lambda"]
        what = "finite-n target" if info.get("target") else "true λ"
        st.caption(f"Known-λ toy: the recommended run's λ̂ = {rec.lambda_hat:.4g} is "
                   f"{(rec.lambda_hat / ref - 1):+.1%} from the {what} {ref:.4g}.")
    nbeta = "auto" if rec.nbeta_multiplier == 1 else f"{rec.nbeta_multiplier:g}x"
    if st.button("Use these settings in Estimate", key="cal_use_recommended", type="primary"):
        length = {"chains": c.chains, "draws": c.draws, "burnin": c.burnin}
        fits = c.chains <= UI_MAX_CHAINS and c.draws <= UI_MAX_DRAWS and c.burnin <= UI_MAX_BURNIN
        send_to_estimate(info["model"], {"epsilon": rec.epsilon, "gamma": rec.gamma, "nbeta": nbeta,
                                         **(length if fits else {})})


def cell_loader(cells, info):
    usable = [c for c in cells if math.isfinite(c.lambda_hat)]
    if not usable:
        return
    labels = {i: f"ε {c.epsilon:.1e} · γ {c.gamma:g} · nβ×{c.nbeta_multiplier:g} — λ̂ {c.lambda_hat:.4g} "
                 f"({c.verdict})" for i, c in enumerate(usable)}
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    pick = left.selectbox("Load a cell's settings into Estimate", list(labels), format_func=labels.get,
                          key="cal_pick")
    if right.button("Load into Estimate", key="cal_load", width="stretch"):
        c = usable[pick]
        nbeta = "auto" if c.nbeta_multiplier == 1 else f"{c.nbeta_multiplier:g}x"
        send_to_estimate(info["model"], {"epsilon": c.epsilon, "gamma": c.gamma, "nbeta": nbeta})


def info_auto() -> bool:
    return bool(st.session_state.get("cal_info", {}).get("auto"))


def progress_line(state, progress, cells, what: str):
    """Where the sweep (or auto-calibrate) stands: running cell, confirmation run, or how it ended."""
    done = len(cells)
    if state == "running" and getattr(job, "phase", "pilot") == "confirm":
        share = progress.step / max(1, progress.total_steps) if progress else 0.0
        st.progress(min(1.0, share), text=f"{what}: confirming at full length (run {len(job.attempts) + 1})…")
    elif state == "running" and info_auto():
        st.progress(min(1.0, done / job.total_cells), text=f"{what}: pilot cell {done + 1} on the ε ladder "
                    f"(at most {job.total_cells}; budget {job.budget_seconds:.0f} s)…")
    elif state == "running":
        st.progress(job.fraction(), text=f"{what}: cell {min(done + 1, job.total_cells)} of {job.total_cells}…")
    elif state == "stopped" and info_auto():
        st.warning(f"Stopped: partial auto-calibration after {done} pilot cells and {len(job.attempts)} full runs.")
    elif state == "stopped":
        st.warning(f"Stopped: partial sweep, {done} of {job.total_cells} cells (the cell in progress was dropped).")
    elif state == "done":
        st.caption(f"{what} finished: {done} cells in {sum(c.seconds for c in cells):.0f} s.")


def live_view():
    state, progress, result, error = job.peek()
    info = st.session_state.get("cal_info", {})
    cells = job.snapshot_cells()
    if state == "failed":
        st.error(f"The sweep failed: {error}")
    progress_line(state, progress, cells, "Auto-calibrate" if info.get("auto") else "Sweep")
    rec = result if (state == "done" and info.get("auto")) else None
    chosen = None
    if rec is not None and rec.found:
        chosen = next((c for c in cells if (c.epsilon, c.gamma, c.nbeta_multiplier)
                       == (rec.epsilon, rec.gamma, rec.nbeta_multiplier)), None)
    heatmaps(job, cells, chosen)
    if rec is not None:
        recommendation_box(rec, info)
    if cells:
        st.dataframe(cell_table(cells), hide_index=True, width="stretch",
                     column_config={k: st.column_config.NumberColumn(format="%.3g")
                                    for k in ("ε", "γ", "nβ", "λ̂", "std", "MALA", "seconds")})
        if state != "running":
            cell_loader(cells, info)


page.live(live_view)
