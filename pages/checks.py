"""'Check this estimate': the no-ground-truth checks of llc_core.checks as a background job."""

import streamlit as st

from llc_core.checks import run_checks
from llc_core.jobs import Job
from pages.common import session_jobs

VERDICT_STYLE = {"pass": "green", "fail": "red", "inconclusive": "orange"}


def checks_job(task, config) -> Job:
    def work(cancel, publish):
        return run_checks(task, config, cancel, lambda done, total, label: publish((done, total, label)))

    return Job(work, label="checks")


def checks_panel(task, config) -> None:
    """The button, and the verdicts of the last checks of this session (live while they run)."""
    jobs = session_jobs()
    job = jobs.get("checks")
    busy = job is not None and job.running
    if st.button("Check this estimate", key="run_checks", disabled=config is None or busy,
                 help="Re-estimates λ̂ with the same function rescaled (ReLU layers), at ε/2 and 2ε, "
                      "and with twice the draws: a trustworthy λ̂ agrees with each."):
        job = jobs.start("checks", checks_job(task, config))
        busy = True
    if job is not None:
        _checks_view(job, busy)


def _show(job):
    state, update, results, error = job.peek()
    if state == "failed":
        st.error(f"The checks failed: {error}")
    elif state == "running":
        done, total, label = update or (0, 1, "starting")
        st.progress(done / total, text=f"Checking: run {done + 1} of {total} ({label})…")
    for check in results or []:
        colour = VERDICT_STYLE[check.verdict]
        st.markdown(f"**{check.name}**: :{colour}[**{check.verdict}**] — {check.reason}")


def _checks_view(job, busy: bool):
    @st.fragment(run_every=1.0 if busy else None)
    def view():
        _show(job)
        if busy and not job.running:
            st.rerun()

    view()
