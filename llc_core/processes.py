"""Starting a worker process without making it re-run the parent's main script.

A spawned child first re-imports the parent's `__main__` from its file (multiprocessing's
`init_main_from_path`). Under Streamlit that is the dashboard itself: every script run installs
a fresh module for the page script as `sys.modules["__main__"]`, with `__file__` = app.py. So each
worker the server spawned used to execute app.py in bare mode before it could take a job:
measured on this 2-core machine under load, 20.2 s to ready instead of 4.3–10.3 s. Under
Streamlit's AppTest the "script" of a test function needs arguments only AppTest provides, so
the child died at once (NameError: name '__args' is not defined) and the job failed.

The dashboard's workers never need the parent's main: their target and every job function live
in importable modules (llc_core, pages). `start(process)` shows multiprocessing a `__main__`
without a file for the moment of the start, so the child imports nothing of it. The swap lasts
the start (milliseconds: launching the child and writing its preparation data); Streamlit only
writes `sys.modules["__main__"]` (at each script run's start) and never reads it back.

Only for those workers. A script that hands its own top-level functions to a process pool (the
executor's `PoolExecutor`, e.g. `bench/truth_suite.py`'s `case_unit`) needs spawn to re-create its
`__main__` in the child, the usual `if __name__ == "__main__":` pattern; that pool starts its
processes plainly (and is never started from the dashboard's server).
"""

from __future__ import annotations

import sys
import threading
import types

# No __file__ and no __spec__: multiprocessing then has no main to re-create in the child.
_NO_MAIN = types.ModuleType("__main__")
# One start at a time: two overlapping swaps could otherwise restore each other's stand-in.
_START_LOCK = threading.Lock()


def start(process) -> None:
    """`process.start()`, with the child spared the parent's `__main__` (see the module doc)."""
    with _START_LOCK:
        saved = sys.modules.get("__main__")
        sys.modules["__main__"] = _NO_MAIN
        try:
            process.start()
        finally:
            # Streamlit may have installed the next script run's module meanwhile: keep that one.
            if sys.modules.get("__main__") is _NO_MAIN:
                if saved is None:
                    del sys.modules["__main__"]
                else:
                    sys.modules["__main__"] = saved
