"""Streamlit glue every page shares: the session's background jobs, and handing a model and
settings from one page to Estimate. UI only: the work lives in llc_core."""

from __future__ import annotations

import urllib.parse

import streamlit as st

from llc_core.config import InputError
from llc_core.jobs import JobRunner, JobSlot
from llc_core.runqueue import default_limit
from pages.controls import GAMMA_GRID, apply_defaults, eps_options, snap
from pages.models import cached_task
from pages.navigation import require_app_navigation

# The pages' URL paths (st.Page derives them from the file names; Estimate is the default, at "/").
PAGE_PATHS = ("estimate", "compare", "history", "calibrate", "variability", "dimensions", "learn", "train")
# Stop waits this long for the job to end (its worker gets STOP_GRACE = 0.5 s to return the partial
# result, then is killed), so the page redraws already stopped instead of one poll later.
STOP_WAIT = 2.0


@st.cache_resource(on_release=lambda runner: runner.close(), show_spinner=False)
def job_runner() -> JobRunner:
    """The server's run limit (LLC_MAX_RUNS, default the number of cores), its fair queue and
    its warm worker processes, shared by every session."""
    return JobRunner(default_limit()).start()


@st.cache_resource(scope="session", on_release=lambda slot: slot.close(), show_spinner=False)
def _job_slot() -> JobSlot:
    return JobSlot(job_runner())


def session_jobs() -> JobSlot:
    """This browser session's background jobs; stopped when the tab closes. Every page calls it
    first, so it also makes sure the page runs inside app.py's navigation (pages/navigation.py)."""
    require_app_navigation()
    return _job_slot()


def send_to_estimate(model: str, settings: dict, note: str = "Settings loaded from Calibrate.") -> None:
    """Open Estimate with this model and these settings (the rest from the model's defaults); values as
    the widgets hold them (nβ as text: "auto" or "2x")."""
    st.session_state["load_settings"] = {"model": model, "settings": settings, "note": note}
    # query_params={} rather than the default clear(), which refuses while widgets are URL-bound
    st.switch_page("pages/estimate.py", query_params={})


def take_sent_settings() -> None:
    """On Estimate, before its widgets: apply what another page sent with send_to_estimate."""
    sent = st.session_state.pop("load_settings", None)
    if not sent:
        return
    st.session_state["model"] = sent["model"]
    try:
        task = cached_task(sent["model"])
    except InputError:
        return  # the picker reports the model's problem
    apply_defaults(task)
    for key, value in sent["settings"].items():
        if key == "epsilon":
            value = snap(value, eps_options(task))
        elif key == "gamma":
            value = snap(value, GAMMA_GRID)
        st.session_state[key] = value
    st.session_state["controls_for"] = sent["model"]  # filled for this model: fill_controls keeps them
    st.session_state["sent_note"] = sent["note"]


def page_root() -> str:
    """The app's address without a page path, from the browser's URL (st.context.url), else from the
    request's Host header; "" when neither is known (the link is then relative)."""
    url = st.context.url
    if not url:
        host = st.context.headers.get("host") if st.context.headers else None
        return f"http://{host}" if host else ""
    root = urllib.parse.urlsplit(url)
    path = root.path.rstrip("/")
    last = path.rsplit("/", 1)[-1]
    if last in PAGE_PATHS:  # the session may have started on another page: drop its path
        path = path[: -len(last)].rstrip("/")
    return f"{root.scheme}://{root.netloc}{path}"


def current_link(page_path: str = "") -> str:
    """The full link to this page with everything now in the URL (model and every setting)."""
    query = urllib.parse.urlencode(st.query_params.to_dict(), safe=":,")
    return f"{page_root()}/{page_path}?{query}"


def copy_link(page_path: str = "", upload: str | None = None) -> None:
    """The "Copy link" popover: the full link in a code box (its copy icon copies it). `upload` (the
    file name, or "" before the files arrive) marks an uploaded model: a link cannot carry it."""
    with st.popover("Copy link", icon=":material/link:"):
        if upload is not None:
            named = f" (**{upload}**)" if upload else ""
            st.warning(f"An uploaded model{named} lives only in this browser session: this link cannot be "
                       f"shared to reproduce the run. It opens the uploader with these settings; whoever opens "
                       f"it must upload the same two files.", icon="🔒")
        else:
            st.caption("This link opens this model with every setting on screen; a run with it repeats "
                       "this one bit for bit (same seed, same device type).")
        st.code(current_link(page_path), language=None, wrap_lines=True)


# -- figures: theme and presentation mode (issue 13) ------------------------------------------

PRESENTATION_KEY = "presentation"


def presentation_toggle() -> bool:
    """The sidebar's "Presentation mode" switch (kept for the session, on every page that calls it):
    larger ticks and annotations, thicker lines, taller plots for a projector."""
    ss = st.session_state
    # A widget's own state is dropped on a page without it; the switch's value lives in a plain key,
    # copied into the widget before it is drawn, so it stays on from page to page.
    ss[PRESENTATION_KEY + "_switch"] = bool(ss.get(PRESENTATION_KEY, False))
    return st.sidebar.toggle("Presentation mode", key=PRESENTATION_KEY + "_switch",
                             on_change=lambda: ss.update({PRESENTATION_KEY: ss[PRESENTATION_KEY + "_switch"]}),
                             help="Larger text (≥ 16 px), thicker lines and taller plots, for a room.")


def style_figure(fig):
    """`fig` sized for the current mode (llc_core.plots.style). Colours are left to the theme."""
    from llc_core.plots import style

    return style(fig, presentation=bool(st.session_state.get(PRESENTATION_KEY)))


def show_figure(fig, **kwargs):
    """st.plotly_chart of the styled figure, in Streamlit's theme (light or dark, as the viewer chose)."""
    return st.plotly_chart(style_figure(fig), theme="streamlit", **kwargs)
