"""MLP vs CNN: two models, run side by side with λ̂ overlaid live — at shared settings, or each at
its own calibrated settings (the honest comparison when no shared ε is clean for both)."""

import math

import pandas as pd
import streamlit as st

from llc_core.jobs import EstimateJob
from llc_core.limits import UI_MAX_CHAINS
from llc_core.plots import compare_figure
from llc_core.recipes import arch_name
from pages.common import presentation_toggle, show_figure
from pages.controls import (BIND, EPS_GRID, apply_defaults, defaults_for, hyperparameter_controls, init_defaults,
                            run_stop_buttons, show_url_problems, snap)
from pages.jobview import PageJobs
from pages.models import DEFAULT_MODEL, model_picker
from pages.live import fmt, numbers, run_info, run_panel, status_word

PREFIX = "cmp_"
SLOTS = ("compare_a", "compare_b")
SHARED, OWN = "shared settings", "each at its own calibrated settings"


def shared_defaults(task_a, task_b) -> dict:
    """One set of settings for both: the smaller ε, the larger γ, the longer run. Not necessarily
    clean for both: the MNIST-1D MLP at the CNN's ε = 1e-4 (and at 1.5e-4) is flagged high_mala, and
    the CNN at 3e-4 is far too large (llc_core/recipes.py) — so the page compares each at its own
    calibrated settings by default, and says so when a shared run comes back flagged."""
    a, b = defaults_for(task_a), defaults_for(task_b)
    out = dict(a)
    out["epsilon"] = snap(min(a["epsilon"], b["epsilon"]), EPS_GRID)
    for key in ("gamma", "chains", "draws", "burnin"):
        out[key] = max(a[key], b[key])
    out["batch_size"] = min(a["batch_size"], b["batch_size"])
    return out


def own_config(task):
    """A model's own calibrated settings (what Estimate runs by default), chains within the UI's cap."""
    return task.defaults.replace(chains=min(task.defaults.chains, UI_MAX_CHAINS))


def model_label(task) -> str:
    """The architecture's name (MLP / CNN) for legends; the model's own name for anything else."""
    kind = (task.info.get("arch") or {}).get("kind") if isinstance(task.info, dict) else None
    return arch_name(kind) if kind else task.name


def settings_text(config) -> str:
    return (f"ε = {config.epsilon:.3g}, γ = {config.gamma:g}, {config.chains} chains × {config.draws} draws "
            f"(burn-in {config.burnin}), batch {config.batch_size}")


def settings_short(config) -> str:
    """The settings column of the comparison table: the full text made the table wider than the page
    at 1280×720, cutting off the flags (the sidebar caption keeps the full text)."""
    return f"ε = {config.epsilon:.3g} · γ = {config.gamma:g} · {config.chains} × {config.draws}"


def set_shared_defaults(task_a, task_b) -> None:
    apply_defaults(task_a, PREFIX, shared_defaults(task_a, task_b))


st.title("MLP vs CNN")
st.caption("Two models run at the same time: at one shared set of SGLD settings, or each at its own "
           "calibrated settings. Defaults: A = the MNIST-1D MLP, B = the CNN, same classes and seed.")
page = PageJobs(*SLOTS, start_keys=("cmp_run",))
running = page.running
for key, default in (("cmp_a", DEFAULT_MODEL.replace("_cnn_", "_mlp_")), ("cmp_b", DEFAULT_MODEL)):
    if key not in st.session_state and key not in st.query_params:
        st.session_state[key] = default  # A is the MLP, as the page's title reads

with st.sidebar:
    presentation_toggle()
    choice_a, task_a = model_picker(running, key="cmp_a", allow_upload=False, label="Model A")
    choice_b, task_b = model_picker(running, key="cmp_b", allow_upload=False, label="Model B")
    configs = None
    if task_a is not None and task_b is not None:
        mode = st.radio("Settings", [OWN, SHARED], key="cmp_mode", disabled=running, bind=BIND,
                        help="Shared: one set of settings for both. Own: each model at the settings calibrated "
                             "for it (as Estimate runs it by default).")
        pair = (choice_a, choice_b)
        if st.session_state.get("cmp_pair") != pair:  # a new pair gets settings safe for both
            fill = apply_defaults if "cmp_pair" in st.session_state else init_defaults
            fill(task_a, PREFIX, shared_defaults(task_a, task_b))
            st.session_state["cmp_pair"] = pair
        show_url_problems()
        if mode == OWN:
            configs = own_config(task_a), own_config(task_b)
            nbeta_text = "auto: n/log n"
            for tag, task, config in zip("AB", (task_a, task_b), configs):
                st.caption(f"**{tag} ({model_label(task)})**: {settings_text(config)}")
        else:
            small = task_a if task_a.n <= task_b.n else task_b  # batch and nβ must suit both
            own_a, own_b = task_a.defaults.epsilon, task_b.defaults.epsilon
            if own_a != own_b:
                st.caption(f"Calibrated ε: A {own_a:.2g}, B {own_b:.2g}. At one shared ε at least one model runs "
                           f"off its calibrated step and may come back flagged; the result says so.")
            config, nbeta_text = hyperparameter_controls(small, disabled=running, prefix=PREFIX)
            configs = None if config is None else (config, config)
            # on_click: the defaults are set before the controls exist on the next run
            st.button("Reset to the shared defaults", disabled=running, key="cmp_reset",
                      on_click=set_shared_defaults, args=(task_a, task_b))
    _, stop_clicked = run_stop_buttons("cmp_", page.busy, configs is not None, "Run both")

if stop_clicked:
    page.stop()
if page.pressed("cmp_run") and configs is not None:
    for slot, task, choice, config in zip(SLOTS, (task_a, task_b), (choice_a, choice_b), configs):
        st.session_state[f"{slot}_info"] = {**run_info(task, choice, nbeta_text), "arch": model_label(task),
                                            "settings": settings_short(config), "mode": mode}
    page.start(lambda: [EstimateJob(task_a, configs[0]), EstimateJob(task_b, configs[1])])

if page.idle:
    st.info("Pick two models (A and B) and one set of SGLD settings in the sidebar, then press **Run both**. "
            "Both λ̂ traces stream into one plot, and a comparison table appears when they finish.")
    st.stop()


def label(slot: str) -> str:
    """"A: MLP" — the architecture, not the file name; the model's name only if both share one."""
    infos = [st.session_state.get(f"{s}_info", {}) for s in SLOTS]
    info = infos[SLOTS.index(slot)]
    arch = info.get("arch", info.get("name", slot))
    same = len({i.get("arch") for i in infos}) == 1
    return f"{'AB'[SLOTS.index(slot)]}: {arch}" + (f" ({info.get('name')})" if same else "")


def shared_verdict(rows) -> str | None:
    """At shared settings, a flagged run makes the comparison rest on it: say which, and what to do."""
    info = st.session_state.get(f"{SLOTS[0]}_info", {})
    flagged = [f"{r['model']} ({r['flags'] or r['status']})" for r in rows if r["flags"] or r["status"] != "ok"]
    if info.get("mode") != SHARED or not flagged:
        return None
    return (f"At these shared settings {' and '.join(flagged)} carried a flag, so no shared setting here is clean "
            f"for both: the difference below rests on a flagged run. Compare **{OWN}** instead (Settings, "
            f"in the sidebar).")


def comparison_table(jobs_now):
    rows = []
    for slot, job in zip(SLOTS, jobs_now):
        state, status, lam, std, used, _, final = numbers(job)
        info = st.session_state.get(f"{slot}_info", {})
        # what decides the comparison first (λ̂, its error, status, flags); the settings last
        rows.append({"model": label(slot), "λ̂": lam, "std error": final.lambda_hat_se if final else math.nan,
                     "status": status, "flags": ", ".join(f.code for f in final.warnings) if final else "",
                     "std across chains": std, "chains used": used, "parameters": info.get("num_params"),
                     "settings": info.get("settings", ""), "run": state})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={"λ̂": st.column_config.NumberColumn(format="%.4g"),
                                "std error": st.column_config.NumberColumn(format="%.3g"),
                                "status": st.column_config.TextColumn(width=80),  # sized while it said "running"
                                "flags": st.column_config.TextColumn(width="medium"),
                                "run": None,  # the job's state: used below, already in the panels' status lines
                                "std across chains": st.column_config.NumberColumn("std (chains)", format="%.3g"),
                                "chains used": st.column_config.NumberColumn("chains", format="%d"),
                                "parameters": st.column_config.NumberColumn("params", format="%d")})
    a, b = rows
    diff, se = a["λ̂"] - b["λ̂"], math.hypot(a["std error"], b["std error"])
    if all(r["run"] in ("done", "stopped") for r in rows) and math.isfinite(diff):
        sig = f", {abs(diff) / se:.1f} standard errors" if se > 0 and math.isfinite(se) else ""
        partial = " (partial: stopped early)" if any(r["run"] == "stopped" for r in rows) else ""
        text = (f"A − B = {fmt(diff)} (± {fmt(se, '.3g')}{sig}){partial}. "
                f"A: {status_word(a['status'])} · B: {status_word(b['status'])}")
        warning = shared_verdict(rows)
        if warning:  # no flagged headline: the number stays, in plain text under the warning
            st.warning(warning)
            st.caption(text)
        else:
            st.markdown(f"**{text.replace('. ', '**. ', 1)}")


def live_view():
    jobs_now = [page.slot.get(s) for s in SLOTS]
    views = [j.view() for j in jobs_now]
    runs = [{"label": label(s), "steps": v["lam_steps"], "lam": v["lam"], "pooled": v["pooled"],
             "burnin": v["burnin"]} for s, v in zip(SLOTS, views)]
    show_figure(compare_figure(runs, max(v["total_steps"] for v in views)), key="cmp_chart")
    comparison_table(jobs_now)
    for col, slot, job in zip(st.columns(2), SLOTS, jobs_now):
        with col:
            st.subheader(label(slot))
            run_panel(job, st.session_state.get(f"{slot}_info", {}), key=slot, plots=False, narrow=True)


page.live(live_view)
