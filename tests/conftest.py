import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import os

# Tests never download anything: datasets they need are generated or written as IDX files.
os.environ["LLC_NO_DOWNLOAD"] = "1"


import pytest  # noqa: E402


@pytest.fixture
def app():
    """A fresh dashboard session (AppTest) on its default page; its jobs stop afterwards."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception
    yield at
    st.cache_resource.clear()  # stops this session's jobs (on_release)
