"""ArviZ-style views of a run's loss draws, and the run history's overlay. Plotly only, no streamlit.

- `chain_panels_figure`: one small panel per chain (shared x), burn-in shaded, blow-ups marked —
  a chain that wanders off is visible on its own instead of hidden in the overlay.
- `rank_figure`: rank plot (Vehtari et al. 2021, as `arviz.plot_rank`): the post-burn-in draws of
  all chains ranked together, a histogram of each chain's ranks. Mixed chains give flat
  histograms; a chain stuck high or low gives a sloped one.
- `density_figure`: each chain's density of the post-burn-in draws of L_m − L_n(w*) (Gaussian
  kernel), the pooled one thicker; overlapping densities mean the chains sample the same thing.
- `history_overlay_figure`: running λ̂ and loss of several saved runs (llc_core/history.py).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .plots import _layout, _vband, chain_color

MAX_PANELS = 8  # chains drawn as small multiples; more would be too thin to read
RANK_BINS = 20
DENSITY_POINTS = 200
RUN_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def post_burnin_draws(steps, loss, burnin: int) -> tuple[np.ndarray, list[int]]:
    """(chains with only finite draws, (C', N)) after burn-in, and which chains they are."""
    steps, loss = np.asarray(steps), np.asarray(loss, dtype=float)
    if loss.ndim != 2 or loss.shape[1] != len(steps):
        return np.zeros((0, 0)), []
    draws = loss[:, steps > burnin]
    keep = [c for c in range(len(draws)) if draws.shape[1] and np.isfinite(draws[c]).all()]
    return draws[keep], keep


def chain_panels_figure(steps, loss, burnin: int, diverged: dict | None = None, total_steps=None) -> go.Figure:
    """L_m − L_n(w*), one row per chain (the first MAX_PANELS), burn-in shaded, ✕ where one blew up."""
    shown = min(loss.shape[0], MAX_PANELS)
    rows = max(shown, 1)
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.02)
    for c in range(shown):
        fig.add_trace(go.Scatter(x=steps, y=loss[c], mode="lines", name=f"chain {c}",
                                 line=dict(width=1, color=chain_color(c))), row=c + 1, col=1)
        _panel_label(fig, c, c)
        finite = np.flatnonzero(np.isfinite(loss[c]))
        if c in (diverged or {}) and finite.size:
            fig.add_trace(go.Scatter(x=[steps[finite[-1]]], y=[loss[c][finite[-1]]], mode="markers",
                                     marker=dict(symbol="x", size=11, color=chain_color(c)), showlegend=False,
                                     name=f"chain {c} diverged"), row=c + 1, col=1)
        if burnin > 0:
            axis = "" if c == 0 else str(c + 1)
            _vband(fig, 0, burnin, "#999999", 0.12, xref=f"x{axis}", yref=f"y{axis} domain")
    more = f" (first {MAX_PANELS} of {loss.shape[0]})" if loss.shape[0] > MAX_PANELS else ""
    fig = _layout(fig, f"L_m(w_t) − L_n(w*), one panel per chain{more}", "", "", height=110 + 75 * rows,
                  total_steps=total_steps)
    fig.update_xaxes(title_text="SGLD step", row=rows, col=1)
    fig.update_layout(showlegend=False)
    return fig


def _panel_label(fig: go.Figure, row: int, chain: int) -> None:
    """"chain N" in the top-left corner of subplot `row` (0-based), in the chain's colour."""
    axis = "" if row == 0 else str(row + 1)
    fig.add_annotation(x=0.005, y=1, xref=f"x{axis} domain", yref=f"y{axis} domain", text=f"chain {chain}",
                       showarrow=False, xanchor="left", yanchor="top", font=dict(size=11, color=chain_color(chain)))


def chain_ranks(draws: np.ndarray, bins: int = RANK_BINS) -> np.ndarray:
    """(C, bins) counts of each chain's draws in `bins` equal slices of the pooled ranks."""
    flat = draws.ravel()
    ranks = np.empty(flat.size)
    ranks[np.argsort(flat, kind="stable")] = np.arange(flat.size)
    ranks = ranks.reshape(draws.shape)
    edges = np.linspace(0, flat.size, bins + 1)
    return np.stack([np.histogram(row, bins=edges)[0] for row in ranks]) if flat.size else np.zeros((0, bins))


def rank_figure(steps, loss, burnin: int) -> go.Figure:
    """ArviZ's rank plot of the post-burn-in draws: flat bars = the chains mix."""
    draws, chains = post_burnin_draws(steps, loss, burnin)
    chains = chains[:MAX_PANELS]
    rows = max(len(chains), 1)
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.02)
    if draws.size:
        counts = chain_ranks(draws)[: len(chains)]
        expected = draws.shape[1] / RANK_BINS
        centers = (np.arange(RANK_BINS) + 0.5) * draws.size / RANK_BINS
        for i, c in enumerate(chains):
            fig.add_trace(go.Bar(x=centers, y=counts[i], marker_color=chain_color(c), name=f"chain {c}",
                                 width=draws.size / RANK_BINS * 0.9), row=i + 1, col=1)
            axis = "" if i == 0 else str(i + 1)  # raw shape: add_hline costs ~50 ms per call
            fig.add_shape(type="line", x0=0, x1=1, y0=expected, y1=expected, xref=f"x{axis} domain",
                          yref=f"y{axis}", line=dict(color="gray", dash="dash", width=1))
            _panel_label(fig, i, c)
    note = "" if draws.size else " — no post-burn-in draws yet"
    fig = _layout(fig, f"Rank plot of the loss draws (flat bars: the chains mix; dashed: uniform){note}", "", "",
                  height=110 + 75 * rows)
    fig.update_xaxes(title_text="rank among all chains' draws", row=rows, col=1)
    fig.update_layout(showlegend=False, hovermode="closest", bargap=0)
    return fig


def kde(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaussian kernel density of `values` on `grid` (Scott's bandwidth)."""
    values = values[np.isfinite(values)]
    if values.size < 2 or float(values.std()) == 0.0:
        return np.zeros_like(grid)
    h = 1.06 * float(values.std()) * values.size ** (-1 / 5)
    z = (grid[:, None] - values[None, :]) / h
    return np.exp(-0.5 * z * z).sum(axis=1) / (values.size * h * np.sqrt(2 * np.pi))


def density_figure(steps, loss, burnin: int) -> go.Figure:
    """Density of each chain's post-burn-in L_m − L_n(w*) and of all of them pooled."""
    draws, chains = post_burnin_draws(steps, loss, burnin)
    fig = go.Figure()
    if draws.size:
        low, high = np.percentile(draws, [0.5, 99.5])
        pad = 0.1 * (high - low or 1.0)
        grid = np.linspace(low - pad, high + pad, DENSITY_POINTS)
        for i, c in enumerate(chains):
            fig.add_trace(go.Scatter(x=grid, y=kde(draws[i], grid), mode="lines", name=f"chain {c}",
                                     line=dict(width=1, color=chain_color(c))))
        fig.add_trace(go.Scatter(x=grid, y=kde(draws.ravel(), grid), mode="lines", name="all chains",
                                 line=dict(width=3, color="gray")))
        fig.add_shape(type="line", x0=0, x1=0, y0=0, y1=1, xref="x", yref="y domain",
                      line=dict(color="gray", dash="dot", width=1))  # L_n(w*)
    note = "" if draws.size else " — no post-burn-in draws yet"
    fig = _layout(fig, f"Density of the post-burn-in draws of L_m(w_t) − L_n(w*){note}", "L_m(w_t) − L_n(w*)",
                  "density")
    fig.update_layout(hovermode="closest")
    return fig


def history_overlay_figure(runs: list[dict]) -> go.Figure:
    """Saved runs overlaid: running pooled λ̂ (top) and each chain's L_m − L_n(w*) (bottom, faint),
    one colour per run. Each run: a history record (llc_core/history.py) plus a "label"."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
                        subplot_titles=("Running λ̂ (pooled over chains)", "L_m(w_t) − L_n(w*), each chain"))
    for i, run in enumerate(runs):
        color, label = RUN_COLORS[i % len(RUN_COLORS)], run["label"]
        tr = run.get("traces", {})
        steps = tr.get("steps", [])
        pooled = [np.nan if v is None else v for v in tr.get("pooled_lambda", [])]
        fig.add_trace(go.Scatter(x=steps, y=pooled, mode="lines", name=label, legendgroup=label,
                                 line=dict(width=2, color=color)), row=1, col=1)
        for chain in tr.get("loss", []):
            fig.add_trace(go.Scatter(x=steps, y=[np.nan if v is None else v for v in chain], mode="lines",
                                     opacity=0.45, legendgroup=label, showlegend=False, name=label,
                                     line=dict(width=1, color=color)), row=2, col=1)
    fig = _layout(fig, "Saved runs overlaid", "", "", height=620)
    fig.update_xaxes(title_text="SGLD step", row=2, col=1)
    fig.update_layout(legend=dict(orientation="v", yanchor="top", y=-0.12, x=0))
    return fig
