"""Estimate: pick a model, set the SGLD hyperparameters, press Run and watch λ̂ converge."""

import numpy as np
import streamlit as st

from llc_core.jobs import EstimateJob
from llc_core.plots import loss_figure
from pages.common import copy_link, presentation_toggle, show_figure, session_jobs, take_sent_settings
from pages.controls import defaults_for, hyperparameter_controls, reset_button, run_stop_buttons, show_url_problems
from pages.models import UPLOAD, fill_controls, model_label, model_picker, size_caption
from pages.checks import checks_panel
from pages.jobview import PageJobs
from pages.live import run_info, run_panel

WHAT_LAMBDA_IS = ("**λ̂ estimates the local learning coefficient**: how much room the trained weights w* have "
                  "before the loss rises — roughly the number of parameters the model really uses, halved. "
                  "It comes from SGLD chains sampled near w*.")

st.title("Estimate λ̂")
page = PageJobs("estimate", start_keys=("run",))
running = page.running
take_sent_settings()

with st.sidebar:
    presentation_toggle()
    choice, task = model_picker(disabled=running)
    run_area = st.container()  # Run/Stop right under the model, above the fold on a projector
    config = None
    if task is not None:
        fill_controls(choice, task)
        show_url_problems()
        name = f"Uploaded **{task.info['upload_file']}** · " if choice == UPLOAD else ""
        st.caption(f"{name}{size_caption(task)}")
        config, nbeta_text = hyperparameter_controls(task, disabled=running)
        reset_button("Reset to this model's defaults", defaults_for(task), key="reset", disabled=running)
    with run_area:
        _, stop_clicked = run_stop_buttons("", page.busy, config is not None)

intro, links = st.columns([5, 2], vertical_alignment="center")
intro.markdown(WHAT_LAMBDA_IS)
with links:
    st.page_link("pages/learn.py", label="How λ̂ works: Learn", icon=":material/school:")
    copy_link(upload=(task.info.get("upload_file", "") if task is not None else "") if choice == UPLOAD else None)

if note := st.session_state.pop("sent_note", None):
    st.success(note)
if stop_clicked:
    page.stop()
if page.pressed("run") and config is not None:
    page.start(lambda: EstimateJob(task, config), run_info(task, model_label(choice, task), nbeta_text),
               "estimate_info")

if task is not None:
    with st.expander("Checks without ground truth", expanded=session_jobs().get("checks") is not None):
        checks_panel(task, config)

if page.idle:
    st.info("Pick a model and its SGLD settings in the sidebar, then press **Run**: every chain's loss "
            "trace and the running λ̂ stream in here, with a flag (cause and fix) the moment something "
            "goes wrong.")
    if config is not None:  # the empty axes of the run to come (and Plotly loaded before it starts)
        show_figure(loss_figure(np.array([]), np.zeros((0, 0)), config.burnin, None, config.total_steps),
                        key="estimate_idle_chart")
    st.stop()


page.live(lambda: run_panel(page.job, st.session_state.get("estimate_info", {}), key="estimate"))
