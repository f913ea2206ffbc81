"""This browser's id, which keys its run history (llc_core/history.py) so that on a shared server
nobody sees another person's runs.

Public Streamlit API only: the id is read from a cookie with `st.context.cookies` (the cookies the
browser sent when the session opened) and written by a one-line script in `st.html(...,
unsafe_allow_javascript=True)`. A missing or malformed cookie (it names a folder, so it is checked
strictly) gives a fresh random id, written back for the next visit."""

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
    if st.context.cookies.get(COOKIE) != ss[SESSION_KEY] and not ss.get("browser_cookie_written"):
        ss["browser_cookie_written"] = True
        # The id is [A-Za-z0-9_-] only (checked above), so it is safe inside the script text.
        st.html(f"<script>document.cookie = '{COOKIE}={ss[SESSION_KEY]}; path=/; "
                f"max-age={COOKIE_DAYS * 86400}; SameSite=Strict' + (location.protocol === 'https:' ? "
                f"'; Secure' : '');</script>", unsafe_allow_javascript=True)
    return ss[SESSION_KEY]


def valid(value) -> bool:
    try:
        history.check_browser_id(value)
        return True
    except InputError:
        return False
