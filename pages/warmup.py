"""Import everything the pages need once, before any page runs, one session at a time.

On a fresh server several sessions' script threads used to race through first imports
(pandas via Plotly inside the live figure) and two of four pages showed `AttributeError:
partially initialized module 'pandas'`. app.py calls `warm()` first: the first session does
the imports (and builds one figure, which triggers Plotly's own lazy imports) under a lock;
sessions arriving meanwhile wait for it, and later calls return at once.
"""

from __future__ import annotations

import importlib
import threading

# Every module the pages, their figures and Streamlit's chart/table elements import lazily
# (arviz_stats: pages/live.py computes R̂/ESS of a running job's trace through llc_core.convergence).
MODULES = (
    "numpy", "pandas", "torch", "arviz_stats.base", "plotly", "plotly.graph_objects", "plotly.subplots", "plotly.io", "plotly.express",
    "llc_core", "llc_core.calibrate", "llc_core.checkpoints", "llc_core.config", "llc_core.data", "llc_core.demos",
    "llc_core.jobs", "llc_core.limits", "llc_core.plots", "llc_core.recipes", "llc_core.runqueue",
    "llc_core.sampler", "llc_core.sweep", "llc_core.toys", "llc_core.training", "llc_core.variability",
    "llc_core.workers", "pages.common", "pages.controls", "pages.jobview", "pages.live", "pages.models",
    "pages.navigation",
)
_lock = threading.Lock()
_done = False


def warm() -> None:
    global _done
    if _done:
        return
    with _lock:
        if _done:
            return
        for name in MODULES:
            importlib.import_module(name)
        _build_figures()
        _done = True


def _build_figures() -> None:
    """One empty figure of each live kind, serialized as st.plotly_chart does."""
    import numpy as np
    import pandas as pd
    import plotly.io

    from llc_core.plots import diagnostics_figure, lambda_figure, loss_figure

    empty = np.array([])
    for figure in (loss_figure(empty, np.zeros((1, 0)), 10, None, 100),
                   lambda_figure(empty, np.zeros((1, 0)), empty, 10, None, None, 100),
                   diagnostics_figure(empty, np.zeros((4, 1, 0)), 10, 100)):
        plotly.io.to_json(figure, validate=False)
    pd.DataFrame({"a": [1.0]}).to_json()
