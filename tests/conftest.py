import atexit
import os
import pathlib
import shutil
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Tests never download anything: datasets they need are generated or written as IDX files.
os.environ["LLC_NO_DOWNLOAD"] = "1"
# Models trained and runs cached by the tests go to a throwaway folder, never the user's own
# (llc_core.paths); a test that needs its own folder still sets the variable itself.
_SCRATCH = pathlib.Path(tempfile.mkdtemp(prefix="llc-tests-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
os.environ["LLC_USER_MODELS"] = str(_SCRATCH / "user_models")
os.environ["LLC_CACHE_DIR"] = str(_SCRATCH / "cache")


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
