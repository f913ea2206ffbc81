"""History: this browser's finished and stopped runs, kept on disk (llc_core/history.py) — a table,
traces overlaid, the settings of two runs side by side, one click to load a run's settings into
Estimate, delete one or all. Its own page rather than a section of Estimate: it spans models and
sessions, and Estimate is already long enough to push Run below the fold."""

import streamlit as st

from llc_core import history
from llc_core.trace_plots import history_overlay_figure
from pages.browser import browser_id
from pages.common import presentation_toggle, send_to_estimate, session_jobs, show_figure

session_jobs()  # makes sure the page runs inside app.py's navigation
presentation_toggle()
st.title("Run history")
st.caption(f"Every finished or stopped run of Estimate in this browser (the newest {history.HISTORY_MAX_RUNS} "
           "are kept, on this server, visible only to this browser). It survives a reload.")
me = browser_id()
runs, problems = history.load_runs(me)
for problem in problems:
    st.warning(problem, icon="🗂️")
if not runs:
    st.info("No runs yet: press **Run** on Estimate; each finished or stopped run appears here.")
    st.stop()

by_id = {r["id"]: r for r in runs}
label = lambda run_id: history.run_label(by_id[run_id])
number = lambda spec: st.column_config.NumberColumn(format=spec)
st.dataframe(history.runs_table(runs), hide_index=True, key="history_table", column_config={
    "ε": number("%.3e"), "γ": number("%g"), "nβ": number("%.4g"), "λ̂": number("%.4g"), "± MCSE": number("%.2g"),
    "R̂": number("%.3f"), "ESS bulk": number("%.0f"), "ESS tail": number("%.0f")})

st.subheader("Overlay")
ticked = st.multiselect("Runs to overlay", list(by_id), default=list(by_id)[:2], format_func=label,
                        key="history_overlay")
if ticked:
    show_figure(history_overlay_figure([by_id[i] | {"label": label(i)} for i in ticked]),
                key="history_overlay_chart")

if len(runs) >= 2:
    st.subheader("Settings: what differs")
    left, right = st.columns(2)
    a = left.selectbox("Run A", list(by_id), index=0, format_func=label, key="history_diff_a")
    b = right.selectbox("Run B", list(by_id), index=1, format_func=label, key="history_diff_b")
    diff = history.settings_diff(by_id[a], by_id[b])
    if diff:
        st.table([{"setting": k, "A": str(va), "B": str(vb)} for k, va, vb in diff])
    else:
        st.info("Same model and settings.")

st.subheader("One run")
pick = st.selectbox("Run", list(by_id), format_func=label, key="history_pick")
chosen = by_id[pick]
uploaded = chosen["model"] == "upload"
load, delete = st.columns(2)
if load.button("Load these settings into Estimate", key="history_load", type="primary", disabled=uploaded,
               help="An uploaded model is not kept on the server: upload it again on Estimate." if uploaded else None):
    send_to_estimate(chosen["model"], chosen["settings"], note=f"Settings loaded from the run of "
                     f"{chosen['saved_at'][:19].replace('T', ' ')} UTC (History).")
if delete.button("Delete this run", key="history_delete"):
    history.delete_run(me, pick)
    st.rerun()
confirm = st.checkbox(f"Yes, delete all {len(runs)} runs", key="history_confirm_clear")
if st.button("Clear all", key="history_clear", disabled=not confirm):
    history.clear_runs(me)
    st.session_state.pop("history_confirm_clear", None)
    st.rerun()
