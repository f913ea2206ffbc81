"""The measures of llc_core.dimensions against the number of classes K, per architecture: one
cached `measure_dimensions` per (architecture, K, seed) checkpoint, for the task-variability page
and bench/dimensions.py."""

from __future__ import annotations

from typing import Callable

import numpy as np
import plotly.graph_objects as go

from .dimensions import DimensionSettings, measure_dimensions
from .jobs import PROGRESS_INTERVAL, ProcessJob, throttled
from .recipes import arch_name

# measure key -> (label, its uncertainty's key or None)
MEASURES = {
    "lambda_hat": ("λ̂ (± MCSE)", "lambda_hat_mcse"),
    "hessian_trace": ("Hessian trace (± s.e.)", "hessian_trace_se"),
    "top_eigenvalue": ("top Hessian eigenvalue", None),
    "numerical_rank": ("numerical rank of the Hessian", None),
    "d_int90": ("intrinsic dimension d_int90", None),
    "num_params": ("parameter count D", None),
}


def row_from(meta: dict, out: dict) -> dict:
    """One checkpoint's measures as a flat row."""
    top = out.get("top_eigenvalues") or []
    return {"name": meta["name"], "arch": arch_name(meta["arch"]["kind"]), "K": meta["classes"],
            "seed": meta["seed"], "lambda_hat": out.get("lambda_hat"), "lambda_hat_mcse": out.get("lambda_hat_mcse"),
            "hessian_trace": out.get("hessian_trace"), "hessian_trace_se": out.get("hessian_trace_se"),
            "top_eigenvalue": top[0] if top else None, "numerical_rank": out.get("numerical_rank"),
            "rank_is_lower_bound": out.get("rank_is_lower_bound"), "d_int90": out.get("d_int90"),
            "num_params": out.get("num_params"), "completed": out.get("completed", False),
            "cached": out.get("cached", False)}


def measure_checkpoints(metas: list[dict], settings: DimensionSettings, should_stop: Callable[[], bool] | None = None,
                        on_progress: Callable | None = None, load=None, use_cache: bool = True):
    """Rows, one per checkpoint in order (from the cache when measured before with these settings).
    A checkpoint stopped midway gives no row."""
    from .checkpoints import load_task

    stop = should_stop or (lambda: False)
    for i, meta in enumerate(metas):
        if stop():
            return
        task = (load or load_task)(meta["path"])
        out = measure_dimensions(task, settings, stop, lambda m, f, t: on_progress and on_progress(i, m, t),
                                 use_cache=use_cache)
        if out.get("completed"):
            yield row_from(meta, out)


def measure_vs_k_figure(rows: list[dict], measure: str) -> go.Figure:
    """The chosen measure against K, a line per architecture (mean over seeds, error bars: the
    measure's own uncertainty where it has one, averaged)."""
    label, err_key = MEASURES[measure]
    fig = go.Figure()
    for arch in sorted({r["arch"] for r in rows}):
        mine = [r for r in rows if r["arch"] == arch and r.get(measure) is not None]
        ks = sorted({r["K"] for r in mine})
        means = [float(np.mean([r[measure] for r in mine if r["K"] == k])) for k in ks]
        errors = ([float(np.mean([r[err_key] or 0.0 for r in mine if r["K"] == k])) for k in ks]
                  if err_key else None)
        fig.add_trace(go.Scatter(x=ks, y=means, mode="lines+markers", name=arch,
                                 error_y=dict(type="data", array=errors, visible=True) if errors else None))
    fig.update_layout(title=f"{label} against the number of classes", xaxis_title="classes K",
                      yaxis_title=label, height=380, margin=dict(l=40, r=20, t=50, b=40))
    fig.update_xaxes(dtick=1)
    return fig


def sweep_in_worker(metas: list[dict], settings: DimensionSettings, *, cancel, emit):
    send = throttled(emit, PROGRESS_INTERVAL)
    rows = []
    for row in measure_checkpoints(metas, settings, cancel.is_set,
                                   lambda i, measure, text: send("progress", (i, measure, text))):
        rows.append(row)
        emit("row", row)
    return rows


class DimensionSweepJob(ProcessJob):
    """The measures for several checkpoints in a worker process; rows arrive as they finish."""

    def __init__(self, metas: list[dict], settings: DimensionSettings):
        self.items, self.settings = list(metas), settings
        self.rows: list = []
        super().__init__(sweep_in_worker, (self.items, settings), label="dimension-sweep")

    def _receive(self, kind, value, publish):
        with self._lock:
            if kind == "row":
                self.rows.append(value)
            else:
                self.update = value  # (checkpoint index, measure, text)

    def _partial(self):
        return self.snapshot_rows()

    def snapshot_rows(self) -> list:
        with self._lock:
            return list(self.rows)
