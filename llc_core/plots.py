"""Plotly figures for λ̂ runs: loss traces, running λ̂, diagnostics. No streamlit here.

One colour per chain, the same in every figure; legends sit above the plot, not on the data.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

PALETTE = qualitative.D3 + qualitative.Dark24
POOLED = "#111111"


def chain_color(c: int) -> str:
    return PALETTE[c % len(PALETTE)]


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 340, total_steps=None) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0, font=dict(size=15)), height=height,
        margin=dict(l=60, r=20, t=70, b=45), template="plotly_white",
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, font=dict(size=11)),
        xaxis_title=x, yaxis_title=y, hovermode="x unified",
    )
    if total_steps:  # the whole run's extent, so a live plot shows how far it has come
        fig.update_xaxes(range=[0, total_steps])
    return fig


# Shapes are added as raw layout dicts: plotly's add_hline / add_vrect cost ~50-120 ms each,
# which a live page re-pays on every poll.
def _vband(fig, x0, x1, color, opacity, label=None, xref="x", yref="y domain"):
    fig.add_shape(type="rect", x0=x0, x1=x1, y0=0, y1=1, xref=xref, yref=yref, fillcolor=color,
                  opacity=opacity, line_width=0, layer="below")
    if label:
        fig.add_annotation(x=x0, y=1, xref=xref, yref=yref, text=label, showarrow=False, xanchor="left",
                           yanchor="top", font=dict(size=11, color="#666"))


def _hline(fig, y, color, dash, label=None, width=1, anchor="top"):
    fig.add_shape(type="line", x0=0, x1=1, y0=y, y1=y, xref="x domain", yref="y",
                  line=dict(color=color, width=width, dash=dash))
    if label:
        fig.add_annotation(x=1, y=y, xref="x domain", yref="y", text=label, showarrow=False, xanchor="right",
                           yanchor="bottom" if anchor == "top" else "top", font=dict(size=11, color=color))


def _hband(fig, y0, y1, color, opacity, label=None):
    fig.add_shape(type="rect", x0=0, x1=1, y0=y0, y1=y1, xref="x domain", yref="y", fillcolor=color,
                  opacity=opacity, line_width=0, layer="below")
    if label:
        fig.add_annotation(x=0, y=y0, xref="x domain", yref="y", text=label, showarrow=False, xanchor="left",
                           yanchor="bottom", font=dict(size=11, color=color))


def _burnin_band(fig: go.Figure, burnin: int) -> None:
    if burnin > 0:
        _vband(fig, 0, burnin, "#999999", 0.12, "burn-in")


def loss_figure(steps, loss, burnin: int, diverged: dict | None = None, total_steps=None) -> go.Figure:
    """L_m(w_t) − L_n(w*) per chain; below zero (shaded red) the chain found lower loss than w*."""
    fig = go.Figure()
    _burnin_band(fig, burnin)
    for c in range(loss.shape[0]):
        fig.add_trace(go.Scatter(x=steps, y=loss[c], mode="lines", name=f"chain {c}",
                                 line=dict(width=1, color=chain_color(c)), legendgroup=str(c)))
    finite = loss[np.isfinite(loss)]
    if finite.size and finite.min() < 0:
        _hband(fig, float(finite.min()) * 1.05, 0, "#d62728", 0.08, "below L_n(w*)")
    _hline(fig, 0, "#444", "dot")
    for c, step in (diverged or {}).items():
        fig.add_shape(type="line", x0=step, x1=step, y0=0, y1=1, xref="x", yref="y domain",
                      line=dict(color=chain_color(c), width=2, dash="dash"))
        fig.add_annotation(x=step, y=1, xref="x", yref="y domain", text=f"chain {c} diverged",
                           showarrow=False, font=dict(color="#d62728", size=11))
    return _layout(fig, "Loss trace per chain", "SGLD step", "L_m(w_t) − L_n(w*)", total_steps=total_steps)


def lambda_figure(steps, lam, pooled, burnin: int, true_lambda=None, target=None, total_steps=None) -> go.Figure:
    """Running λ̂ per chain (thin) and pooled (thick), with reference lines where known."""
    fig = go.Figure()
    _burnin_band(fig, burnin)
    for c in range(lam.shape[0]):
        fig.add_trace(go.Scatter(x=steps, y=lam[c], mode="lines", name=f"chain {c}", opacity=0.55,
                                 line=dict(width=1, color=chain_color(c)), legendgroup=str(c),
                                 showlegend=False))
    fig.add_trace(go.Scatter(x=steps, y=pooled, mode="lines", name="pooled λ̂",
                             line=dict(width=3, color=POOLED)))
    if true_lambda is not None:
        _hline(fig, true_lambda, "#2ca02c", "dash", f"true λ = {true_lambda:.4g}", width=2)
    if target is not None:
        _hline(fig, target, "#9467bd", "dot", f"finite-n target = {target:.4g}", width=2, anchor="bottom")
    finite = pooled[np.isfinite(pooled)] if len(pooled) else np.array([])
    if finite.size and finite.min() < 0:
        low = float(np.nanmin(lam)) if np.isfinite(lam).any() else -1.0
        _hband(fig, low, 0, "#d62728", 0.08, "negative λ̂")
    return _layout(fig, "Running λ̂ (per chain and pooled)", "SGLD step", "λ̂", total_steps=total_steps)


def diagnostics_figure(steps, diag, burnin: int, total_steps=None) -> go.Figure:
    """MALA acceptance, distance from w*, and drift vs noise per step, stacked."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.07,
                        subplot_titles=("MALA acceptance (target ≈ 0.9)", "‖w − w*‖",
                                        "step size: drift ‖(ε/2)∇U‖ (solid) vs noise ‖σ√ε ξ‖ (dotted)"))
    mala, dist, drift, noise = diag
    for c in range(mala.shape[0]):
        color, group = chain_color(c), str(c)
        fig.add_trace(go.Scatter(x=steps, y=mala[c], mode="lines", name=f"chain {c}", legendgroup=group,
                                 line=dict(color=color, width=1)), row=1, col=1)
        fig.add_trace(go.Scatter(x=steps, y=dist[c], mode="lines", legendgroup=group, showlegend=False,
                                 line=dict(color=color, width=1)), row=2, col=1)
        fig.add_trace(go.Scatter(x=steps, y=drift[c], mode="lines", legendgroup=group, showlegend=False,
                                 line=dict(color=color, width=1)), row=3, col=1)
        fig.add_trace(go.Scatter(x=steps, y=noise[c], mode="lines", legendgroup=group, showlegend=False,
                                 line=dict(color=color, width=1, dash="dot")), row=3, col=1)
    fig.add_shape(type="rect", x0=0, x1=1, y0=0.85, y1=0.95, xref="x domain", yref="y", fillcolor="#2ca02c",
                  opacity=0.1, line_width=0, layer="below")
    fig.update_yaxes(range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(type="log", row=3, col=1)
    if burnin > 0:
        for axis in ("", "2", "3"):
            _vband(fig, 0, burnin, "#999999", 0.12, xref=f"x{axis}", yref=f"y{axis} domain")
    fig.update_xaxes(title_text="SGLD step", row=3, col=1)
    return _layout(fig, "Diagnostics", "", "", height=640, total_steps=total_steps)
