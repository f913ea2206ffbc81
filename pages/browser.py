"""This browser's id, which keys its run history (llc_core/history.py) so that on a shared server
nobody sees another person's runs.

Public Streamlit API only: the id is read from a cookie with `st.context.cookies` (the cookies the
browser sent when the session opened) and written by a one-line script in `st.html(...,
unsafe_allow_javascript=True)` that app.py emits on every full run (`keep_cookie`). A missing or
malformed cookie (it names a folder, so it is checked strictly) gives a fresh random id, written
back for the next visit."""

from __future__ import annotations

import streamlit as st

from llc_core import history
from llc_core.config import InputError

COOKIE = "llc_lab_browser"
SESSION_KEY = "browser_id"
COOKIE_DAYS = 365


def browser_id() -> str:
    """The id of the browser this session runs in (one per session when cookies are off)."""
    ss = st.session_state
    if not valid(ss.get(SESSION_KEY)):
        cookie = st.context.cookies.get(COOKIE)
        ss[SESSION_KEY] = cookie if valid(cookie) else history.new_browser_id()
    return ss[SESSION_KEY]


def keep_cookie() -> None:
    """Write this session's id to the browser's cookie, on every full run of app.py until a
    reload sends it back. app.py calls it, never a fragment: a script element written once inside
    a fragment (as it was, when a run finished) could be replaced by the fragment's next run
    before the browser ran it, and the cookie was then never set (a CI failure of 2026-12-03)."""
    me = browser_id()
    if st.context.cookies.get(COOKIE) == me:
        return
    # The id is [A-Za-z0-9_-] only (browser_id checks it), so it is safe inside the script text.
    # The sidebar holds it so that the page's own layout does not shift by an empty element.
    st.sidebar.html(f"<script>document.cookie = '{COOKIE}={me}; path=/; max-age={COOKIE_DAYS * 86400}; "
                    f"SameSite=Strict' + (location.protocol === 'https:' ? '; Secure' : '');</script>",
                    unsafe_allow_javascript=True)


def valid(value) -> bool:
    try:
        history.check_browser_id(value)
        return True
    except InputError:
        return False
