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


def _burnin_band(fig: go.Figure, burnin: int) -> None:
    if burnin > 0:
        fig.add_vrect(x0=0, x1=burnin, fillcolor="#999999", opacity=0.12, line_width=0,
                      annotation_text="burn-in", annotation_position="top left",
                      annotation_font_size=11)


def loss_figure(steps, loss, burnin: int, diverged: dict | None = None, total_steps=None) -> go.Figure:
    """L_m(w_t) − L_n(w*) per chain; below zero (shaded red) the chain found lower loss than w*."""
    fig = go.Figure()
    _burnin_band(fig, burnin)
    for c in range(loss.shape[0]):
        fig.add_trace(go.Scatter(x=steps, y=loss[c], mode="lines", name=f"chain {c}",
                                 line=dict(width=1, color=chain_color(c)), legendgroup=str(c)))
    finite = loss[np.isfinite(loss)]
    if finite.size and finite.min() < 0:
        fig.add_hrect(y0=float(finite.min()) * 1.05, y1=0, fillcolor="#d62728", opacity=0.08, line_width=0,
                      annotation_text="below L_n(w*)", annotation_position="bottom right")
    fig.add_hline(y=0, line=dict(color="#444", width=1, dash="dot"))
    for c, step in (diverged or {}).items():
        fig.add_vline(x=step, line=dict(color=chain_color(c), width=2, dash="dash"),
                      annotation_text=f"chain {c} diverged", annotation_font_color="#d62728")
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
        fig.add_hline(y=true_lambda, line=dict(color="#2ca02c", width=2, dash="dash"),
                      annotation_text=f"true λ = {true_lambda:.4g}", annotation_position="top right")
    if target is not None:
        fig.add_hline(y=target, line=dict(color="#9467bd", width=2, dash="dot"),
                      annotation_text=f"finite-n target = {target:.4g}", annotation_position="bottom right")
    finite = pooled[np.isfinite(pooled)] if len(pooled) else np.array([])
    if finite.size and finite.min() < 0:
        fig.add_hrect(y0=float(np.nanmin(lam)) if np.isfinite(lam).any() else -1, y1=0,
                      fillcolor="#d62728", opacity=0.08, line_width=0,
                      annotation_text="negative λ̂", annotation_position="bottom left")
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
    fig.add_hrect(y0=0.85, y1=0.95, fillcolor="#2ca02c", opacity=0.1, line_width=0, row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(type="log", row=3, col=1)
    if burnin > 0:
        for row in (1, 2, 3):
            fig.add_vrect(x0=0, x1=burnin, fillcolor="#999999", opacity=0.12, line_width=0, row=row, col=1)
    fig.update_xaxes(title_text="SGLD step", row=3, col=1)
    return _layout(fig, "Diagnostics", "", "", height=640, total_steps=total_steps)
