"""Calibrate: sweep ε × γ (× nβ) with short chains, see where λ̂ is stable, or let auto-calibrate choose."""

import math

import pandas as pd
import streamlit as st

from llc_core.calibrate import DEFAULT_BUDGET_SECONDS, pilot_config, pilot_grid
from llc_core.sweep import SweepGrid, cell_config
from llc_core.limits import (MAX_BUDGET_SECONDS, MAX_CELL_BURNIN, MAX_CELL_CHAINS, MAX_CELL_DRAWS, MAX_SWEEP_CELLS,
                             MIN_BUDGET_SECONDS, UI_MAX_BURNIN, UI_MAX_CHAINS, UI_MAX_DRAWS)
from llc_core.config import InputError
from llc_core.jobs import AutoCalibrateJob, SweepJob
from llc_core.plots import cell_trace_figure, sweep_heatmap, sweep_lines
from pages.common import presentation_toggle, send_to_estimate, show_figure
from pages.controls import BIND, EPS_GRID, GAMMA_GRID, run_stop_buttons, snap
from pages.jobview import PageJobs
from pages.models import model_picker, size_caption

NBETA_MULTS = [0.25, 0.5, 1.0, 2.0, 4.0]
# The grid's controls, all mirrored in the URL (bind="query-params"): a link reproduces the grid.
GRID_KEYS = ("cal_epsilons", "cal_gammas", "cal_nbeta_mults", "cal_chains", "cal_draws", "cal_burnin")


def sweep_defaults(task) -> dict:
    grid, pilot = pilot_grid(task), pilot_config(task)
    return {"cal_epsilons": sorted({snap(e, EPS_GRID) for e in grid.epsilons}),
            "cal_gammas": sorted({snap(g, GAMMA_GRID) for g in grid.gammas}), "cal_nbeta_mults": [1.0],
            "cal_chains": min(MAX_CELL_CHAINS, pilot.chains), "cal_draws": pilot.draws, "cal_burnin": pilot.burnin}


def init_grid(task) -> None:
    """The model's pilot grid: on a new model every control; on the session's first visit only those
    the URL does not set (a shared link's grid wins)."""
    ss = st.session_state
    if ss.get("cal_grid_for") == ss["cal_model"]:
        return
    first_visit = "cal_grid_for" not in ss
    for key, value in sweep_defaults(task).items():
        if not (first_visit and key in st.query_params):
            ss[key] = value
    ss["cal_grid_for"] = ss["cal_model"]


def sweep_controls(task, disabled: bool):
    """Grid and pilot-chain controls; returns (grid, pilot config) or (None, None) if invalid."""
    ss = st.session_state
    init_grid(task)
    common = {"disabled": disabled, "bind": BIND, "persist_state": "session"}
    st.multiselect("Step sizes ε", EPS_GRID, key="cal_epsilons", format_func=lambda v: f"{v:.1e}", **common)
    st.multiselect("Localizations γ", [g for g in GAMMA_GRID if g > 0], key="cal_gammas",
                   format_func=lambda v: f"{v:g}", **common)
    st.multiselect("nβ multipliers (× n/log n)", NBETA_MULTS, key="cal_nbeta_mults",
                   format_func=lambda v: f"{v:g}×", **common)
    st.slider("Chains per cell", 1, MAX_CELL_CHAINS, key="cal_chains", **common)
    st.number_input("Draws per cell", 10, MAX_CELL_DRAWS, step=50, key="cal_draws", **common)
    st.number_input("Burn-in per cell", 0, MAX_CELL_BURNIN, step=50, key="cal_burnin", **common)
    # on_click runs before the widgets exist on the next run: setting their values there is allowed
    st.button("Reset to the pilot grid", disabled=disabled, key="cal_reset",
              on_click=lambda: ss.update(sweep_defaults(task)))
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
    """The full run length auto-calibrate confirms at (its pilot cells are a fifth of it) and its
    wall-clock budget; returns (base config, budget in seconds)."""
    with st.expander("Auto-calibrate: full run length and time budget"):
        st.number_input("Chains", 1, UI_MAX_CHAINS, value=min(task.defaults.chains, UI_MAX_CHAINS),
                        key="cal_full_chains", disabled=disabled)
        st.number_input("Draws per chain", 100, UI_MAX_DRAWS, value=task.defaults.draws, step=100,
                        key="cal_full_draws", disabled=disabled)
        st.number_input("Time budget (s)", MIN_BUDGET_SECONDS, MAX_BUDGET_SECONDS, value=int(DEFAULT_BUDGET_SECONDS),
                        step=60, key="cal_budget", disabled=disabled,
                        help="Wall-clock limit of the whole search. Confirming needs a run, one twice as long "
                             "and one a step lower: with too small a budget the answer stays unconfirmed.")
    ss = st.session_state
    return (task.defaults.replace(chains=int(ss["cal_full_chains"]), draws=int(ss["cal_full_draws"])),
            float(ss["cal_budget"]))


st.title("Calibrate")
st.caption("Short chains over a grid of step sizes ε and localizations γ: find where λ̂ is stable before "
           "spending a long run. **Auto-calibrate** walks ε over as many decades as it takes (short chains), "
           "confirms at full length, grows the chains when they are too short, and recommends only settings "
           "whose own run carried no flag.")
page = PageJobs("calibrate", start_keys=("cal_run", "cal_auto"))
job, running = page.job, page.running

with st.sidebar:
    presentation_toggle()
    choice, task = model_picker(disabled=running, key="cal_model")
    grid = pilot = None
    if task is not None:
        st.caption(size_caption(task))
        grid, pilot = sweep_controls(task, running)
    _, stop_clicked = run_stop_buttons("cal_", page.busy, grid is not None, "Run sweep")
    full, budget = auto_length_controls(task, running) if task is not None else (None, None)
    st.button("Auto-calibrate", key="cal_auto", disabled=page.busy or task is None, width="stretch",
              help="ε bracket on a half-decade ladder, then full-length confirmation: a run must agree "
              "with one twice as long and with one a step lower, within a time budget.")

if stop_clicked:
    page.stop()
sweep_clicked, auto_clicked = page.pressed("cal_run"), page.pressed("cal_auto")


def swept_cells(task, model: str) -> list:
    """The cells of this session's last sweep of `model`, as (config, Cell) for auto-calibrate to reuse
    (it runs only the ladder cells these do not already hold)."""
    last, info = page.job, st.session_state.get("cal_info", {})
    if last is None or info.get("auto") or info.get("model") != model or last.running:
        return []
    return [(cell_config(last.pilot, c.epsilon, c.gamma, c.nbeta_multiplier, task.n), c)
            for c in last.snapshot_cells() if c.completed]


if (sweep_clicked and grid is not None) or (auto_clicked and task is not None):
    known = swept_cells(task, choice) if auto_clicked else []
    page.start(lambda: AutoCalibrateJob(task, budget, base=full, known_cells=known) if auto_clicked
               else SweepJob(task, grid, pilot),
               {"model": choice, "name": task.name, "auto": bool(auto_clicked), "reusable": len(known),
                "true_lambda": task.true_lambda, "target": task.target_lambda}, "cal_info")
    job = page.job

if page.idle:
    st.info("Choose a model and a grid in the sidebar and press **Run sweep**, or press **Auto-calibrate** "
            "for a recommendation. Cells fill in as they finish.")
    st.stop()


def cell_table(cells) -> pd.DataFrame:
    return pd.DataFrame([{"ε": c.epsilon, "γ": c.gamma, "nβ": c.nbeta, "λ̂": c.lambda_hat, "std": c.lambda_std,
                          "verdict": c.verdict, "MALA": c.mala, "flags": ", ".join(c.flags),
                          "seconds": c.seconds} for c in cells])


def usable_cells(cells) -> list:
    """The cells that can be loaded into Estimate (a finite λ̂), in the order the picker lists them."""
    return [c for c in cells if math.isfinite(c.lambda_hat)]


def cell_at(cells, eps_label: str, gamma_label: str, mult: float):
    """The usable cell a heatmap click names (its axis labels), as an index into usable_cells, or None."""
    for i, c in enumerate(usable_cells(cells)):
        if (f"{c.epsilon:.1e}", f"{c.gamma:g}", c.nbeta_multiplier) == (eps_label, gamma_label, mult):
            return i
    return None


def on_cell_click(chart_key: str, mult: float) -> None:
    """A click on a heatmap cell picks that cell in the "load a cell" picker (and shows its traces)."""
    points = st.session_state[chart_key].selection.points
    if points:
        index = cell_at(job.snapshot_cells(), str(points[0]["x"]), str(points[0]["y"]), mult)
        if index is not None:
            st.session_state["cal_pick"] = index


def heatmaps(job, cells, chosen, picked):
    mults = sorted(set(job.grid.nbeta_multipliers) | {c.nbeta_multiplier for c in cells})
    tabs = st.tabs([f"nβ × {m:g}" for m in mults]) if len(mults) > 1 else [st.container()]
    for tab, m in zip(tabs, mults):
        layer = {(c.epsilon, c.gamma): (c.lambda_hat, c.verdict) for c in cells if c.nbeta_multiplier == m}
        mark = (chosen.epsilon, chosen.gamma) if chosen is not None and chosen.nbeta_multiplier == m else None
        pick = (picked.epsilon, picked.gamma) if picked is not None and picked.nbeta_multiplier == m else None
        with tab:
            # auto-calibrate's cells go where its bracket takes them, beyond the start grid
            epsilons = sorted(set(job.grid.epsilons) | {c.epsilon for c in cells})
            gammas = sorted(set(job.grid.gammas) | {c.gamma for c in cells})
            key = f"cal_heatmap_{m:g}"
            show_figure(sweep_heatmap(epsilons, gammas, layer, mark, pick), key=key, on_select=lambda k=key, m=m:
                        on_cell_click(k, m), selection_mode="points")
            mine = [c for c in cells if c.nbeta_multiplier == m]
            if len({c.epsilon for c in mine}) > 1:
                show_figure(sweep_lines(mine), key=f"cal_lines_{m:g}")


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
    budget = f" of its {rec.budget_seconds:g} s budget" if rec.budget_seconds else ""
    st.markdown(f"λ̂ = {rec.lambda_hat:.4g} ± {rec.lambda_hat_se:.2g}, status **{rec.status}**{span} · "
                f"searched for {rec.seconds:.0f} s{budget}")
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


def cell_label(c) -> str:
    """"ok" only for a cell with no flag at all; a stable cell (the heatmap colours it) that
    carries convergence or step-bias flags says "stable" and names them, so nobody loads it
    thinking it clean."""
    verdict = ("ok" if not c.flags else "stable") if c.verdict == "ok" else c.verdict
    flags = f" · flags: {', '.join(c.flags)}" if c.flags else ""
    return f"ε {c.epsilon:.1e} · γ {c.gamma:g} · nβ×{c.nbeta_multiplier:g} — λ̂ {c.lambda_hat:.4g} ({verdict}{flags})"


def preselect(usable, chosen) -> None:
    """Once per finished job: the picker starts on the recommended cell (auto-calibrate), else the first."""
    ss = st.session_state
    if ss.get("cal_pick_for") == id(job):
        return
    ss["cal_pick_for"] = id(job)
    ss["cal_pick"] = next((i for i, c in enumerate(usable) if c is chosen), 0)


def cell_loader(cells, info, chosen):
    """The picked cell (by the picker or a click on the heatmap): its traces and "Load into Estimate"."""
    usable = usable_cells(cells)
    if not usable:
        return
    preselect(usable, chosen)
    if st.session_state.get("cal_pick") not in range(len(usable)):
        st.session_state["cal_pick"] = 0
    labels = {i: cell_label(c) + ("  ★ recommended" if c is chosen else "") for i, c in enumerate(usable)}
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    pick = left.selectbox("Load a cell's settings into Estimate (or click a cell above)", list(labels),
                          format_func=labels.get, key="cal_pick")
    c = usable[pick]
    if right.button("Load into Estimate", key="cal_load", width="stretch"):
        nbeta = "auto" if c.nbeta_multiplier == 1 else f"{c.nbeta_multiplier:g}x"
        send_to_estimate(info["model"], {"epsilon": c.epsilon, "gamma": c.gamma, "nbeta": nbeta})
    if c.trace is not None and len(c.trace["steps"]):
        flags = ", ".join(c.flags) or "none"
        show_figure(cell_trace_figure(c.trace, f"Cell ε {c.epsilon:.1e} · γ {c.gamma:g}: running λ̂ "
                                               f"(flags: {flags})"), key="cal_cell_trace")


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
    usable = usable_cells(cells)
    picked = usable[st.session_state["cal_pick"]] if (state != "running" and st.session_state.get(
        "cal_pick_for") == id(job) and st.session_state.get("cal_pick") in range(len(usable))) else None
    heatmaps(job, cells, chosen, picked)
    if rec is not None:
        recommendation_box(rec, info)
    if rec is not None and getattr(rec, "reused", 0):
        st.caption(f"{rec.reused} pilot cell(s) came from the sweep you ran before (same settings): not rerun.")
    if cells:
        if state != "running":
            cell_loader(cells, info, chosen)
        with st.expander("Every cell", expanded=False):
            st.dataframe(cell_table(cells), hide_index=True, width="stretch",
                         column_config={k: st.column_config.NumberColumn(format="%.3g")
                                        for k in ("ε", "γ", "nβ", "λ̂", "std", "MALA", "seconds")})


page.live(live_view)
