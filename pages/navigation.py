"""The app's pages and sections, used by app.py and by the deep-link guard below.

Why a guard: Streamlit serves a script whose folder holds `pages/` in its legacy pages-folder
mode until the first documented `st.navigation` call. On a fresh server whose first visit is a
deep link (/learn) that page then runs alone, every module of pages/ listed beside it. The
first page run of such a session calls `st.navigation` itself (which, as documented, makes
Streamlit ignore the pages folder from then on) and reruns, so app.py's navigation takes over.
"""

from __future__ import annotations

import streamlit as st

# Session key app.py sets on every run: a page that finds it missing ran without app.py.
APP_RAN = "app_navigation_ran"


def sections() -> dict[str, list]:
    """Every page of the dashboard, by sidebar section; the first is the default page."""
    return {
        "Estimate": [
            st.Page("pages/estimate.py", title="Estimate", icon=":material/show_chart:", default=True),
            st.Page("pages/compare.py", title="MLP vs CNN", icon=":material/compare_arrows:"),
            st.Page("pages/history.py", title="History", icon=":material/history:"),
        ],
        "Tune and explore": [
            st.Page("pages/calibrate.py", title="Calibrate", icon=":material/tune:"),
            st.Page("pages/variability.py", title="Task variability", icon=":material/bar_chart:"),
            st.Page("pages/dimensions.py", title="Dimensions", icon=":material/deployed_code:"),
        ],
        "Teach and build": [
            st.Page("pages/learn.py", title="Learn", icon=":material/school:"),
            st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        ],
    }


def app_navigation():
    """app.py's navigation (call `.run()` on it); marks this session as run through app.py."""
    st.session_state[APP_RAN] = True
    return st.navigation(sections())


def require_app_navigation() -> None:
    """Rerun through app.py when this page was started by the legacy pages-folder mode."""
    if not st.session_state.get(APP_RAN):
        app_navigation()
        st.rerun()
