import atexit
import os
import pathlib
import shutil
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

# One torch (OpenMP) thread per process, set before anything imports torch and inherited by the
# CLI runs, servers and workers the tests start. `make test` runs one xdist worker per core, and
# torch's default of one thread per core in each of them oversubscribed the cores: the two
# crossing accuracy tests of test_toys.py took 142 s on two workers at the default, 26 s with this.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Tests never download anything: datasets they need are generated or written as IDX files.
os.environ["LLC_NO_DOWNLOAD"] = "1"
# Models trained and runs cached by the tests go to a throwaway folder, never the user's own
# (llc_core.paths); a test that needs its own folder still sets the variable itself.
_SCRATCH = pathlib.Path(tempfile.mkdtemp(prefix="llc-tests-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
os.environ["LLC_USER_MODELS"] = str(_SCRATCH / "user_models")
os.environ["LLC_CACHE_DIR"] = str(_SCRATCH / "cache")
# AppTest sessions in this process start a fresh JobRunner per test (the `app` fixture clears
# st.cache_resource), and most never press Run: warm workers (~3.4 CPU-s each to start) would
# be started and killed for nothing. Jobs here start their worker cold; the warm path is tested
# in test_jobs.py and by the real servers of the browser tests (server_env drops this).
os.environ["LLC_WARM_WORKERS"] = "0"


def server_env(**extra) -> dict:
    """The environment of a real `streamlit run` in the tests: this one, never a download, the
    server's default warm workers (as a user's server has them), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k != "LLC_WARM_WORKERS"}
    return {**env, "LLC_NO_DOWNLOAD": "1", **extra}


def stop_server(proc) -> None:
    """End a test's `streamlit run`: SIGTERM, then SIGKILL if it is still there after 30 s. A
    server ends each open session's jobs first (up to 5 s a session, llc_core.jobs.JobSlot.close),
    and on a loaded machine that took more than 10 s (the suite of 2026-12-03)."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


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


def wait_for(at, predicate, timeout=180, what="condition", poll=0.5):
    """Rerun an AppTest session until `predicate(at)` holds; a page exception fails at once."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        at.run()
        assert not at.exception, at.exception
        if predicate(at):
            return
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}; shown: {texts(at)[:6]}")


def texts(at):
    """Every text element an AppTest page shows, for assertions on what a user reads."""
    return [e.value for e in (*at.markdown, *at.caption, *at.success, *at.warning, *at.error, *at.info)]



def _sigint_state() -> tuple:
    """SIGINT's Python handler and its kernel-level state in this process (ignored / blocked / caught,
    from /proc/self/status: a library can change them with sigaction behind Python's back)."""
    import signal

    bit = 1 << (signal.SIGINT - 1)
    masks = [int(line.split()[1], 16) & bit for line in pathlib.Path("/proc/self/status").read_text().splitlines()
             if line.startswith(("SigBlk", "SigIgn", "SigCgt"))]
    return signal.getsignal(signal.SIGINT), tuple(masks)


@pytest.fixture(autouse=True)
def _ctrl_c_handling_left_as_found():
    """A test must leave this process's Ctrl-C handling as it found it: a subprocess started later
    (the CLI's Ctrl-C tests) inherits an ignored or blocked SIGINT and never sees the signal."""
    before = _sigint_state()
    yield
    assert _sigint_state() == before, f"SIGINT handling (handler, blocked/ignored/caught) changed: {before} -> {_sigint_state()}"
