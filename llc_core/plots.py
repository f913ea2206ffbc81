"""Plotly figures for λ̂ runs: loss traces, running λ̂, diagnostics. No streamlit here.

One colour per chain, the same in every figure; legends sit above the plot, not on the data.
Figures carry no template or background: the dashboard's light or dark theme colours them, and
every line drawn here uses a colour that reads on both (no near-black, no light grey). `style`
scales text, lines and height for a room (presentation mode).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

PALETTE = qualitative.D3 + qualitative.Dark24
# Ink that reads on a white and on a near-black background alike (contrast ≥ 3:1 on both).
POOLED = "#8c8c8c"  # the pooled λ̂: mid grey, thick, distinct from every chain colour
ZERO_LINE = "#8c8c8c"
MUTED_TEXT = "#8c8c8c"
FONT = 12  # default tick, legend and annotation size (px)
PRESENTATION_FONT = 17  # presentation mode: readable from the back of a room


def chain_color(c: int) -> str:
    return PALETTE[c % len(PALETTE)]


# Plotly turns every y-axis title by 90°: a one-glyph title such as "λ̂" then reads as a sideways
# "<" with its hat beside it (seen on the sweep and running-λ̂ plots at 1280×720). Titles this short
# are written upright at the top of the axis instead, as a unit label.
UPRIGHT_Y_TITLE = 3


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 340, total_steps=None) -> go.Figure:
    upright = 0 < len(y) <= UPRIGHT_Y_TITLE
    fig.update_layout(
        title=dict(text=title, x=0, font=dict(size=15)), height=height,
        margin=dict(l=60, r=20, t=70, b=45), font=dict(size=FONT),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, font=dict(size=FONT)),
        xaxis_title=x, yaxis_title=None if upright else y, hovermode="x unified",
    )
    if upright:  # left of the legend (which starts at the plot area's left edge), above the top tick
        fig.add_annotation(text=y, xref="paper", yref="paper", x=0, y=1, xanchor="right", yanchor="bottom",
                           xshift=-6, showarrow=False, font=dict(size=FONT + 2), name="y title")
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
                           yanchor="top", font=dict(size=FONT, color=MUTED_TEXT))


def _hline(fig, y, color, dash, label=None, width=1, anchor="top", side="right"):
    """A horizontal reference line; its label above ("top") or below it, at the plot's right or left
    end (two close lines put their labels at opposite ends so they never overprint)."""
    fig.add_shape(type="line", x0=0, x1=1, y0=y, y1=y, xref="x domain", yref="y",
                  line=dict(color=color, width=width, dash=dash))
    if label:
        fig.add_annotation(x=1 if side == "right" else 0, y=y, xref="x domain", yref="y", text=label,
                           showarrow=False, xanchor=side, yanchor="bottom" if anchor == "top" else "top",
                           font=dict(size=FONT, color=color), bgcolor="rgba(128,128,128,0.12)")


def _hband(fig, y0, y1, color, opacity, label=None):
    fig.add_shape(type="rect", x0=0, x1=1, y0=y0, y1=y1, xref="x domain", yref="y", fillcolor=color,
                  opacity=opacity, line_width=0, layer="below")
    if label:
        fig.add_annotation(x=0, y=y0, xref="x domain", yref="y", text=label, showarrow=False, xanchor="left",
                           yanchor="bottom", font=dict(size=FONT, color=color))


def _burnin_band(fig: go.Figure, burnin: int) -> None:
    if burnin > 0:
        _vband(fig, 0, burnin, "#999999", 0.12, "burn-in")


def loss_figure(steps, loss, burnin: int, diverged: dict | None = None, total_steps=None) -> go.Figure:
    """L_m(w_t) − L_n(w*) per chain; shaded red below zero when most draws sit there (w* is not a
    minimum). A diverged chain ends in a ✕ with one label per blow-up step; once every chain has
    diverged the x-axis zooms to the blow-up instead of spanning the steps that never ran."""
    fig = go.Figure()
    _burnin_band(fig, burnin)
    for c in range(loss.shape[0]):
        fig.add_trace(go.Scatter(x=steps, y=loss[c], mode="lines", name=f"chain {c}",
                                 line=dict(width=1, color=chain_color(c)), legendgroup=str(c)))
    if _mostly_below_zero(steps, loss, burnin):
        _hband(fig, float(np.nanmin(loss)) * 1.05, 0, "#d62728", 0.08, "below L_n(w*)")
    _hline(fig, 0, ZERO_LINE, "dot")
    _divergence_marks(fig, steps, loss, diverged or {})
    if diverged and len(diverged) >= loss.shape[0] > 0:
        last = max(max(diverged.values()), int(steps[-1]) if len(steps) else 0)
        total_steps = max(10, int(last * 1.25) + 1)
    return _layout(fig, "Loss trace per chain", "SGLD step", "L_m(w_t) − L_n(w*)", total_steps=total_steps)


def _mostly_below_zero(steps, loss, burnin: int) -> bool:
    """More than half the finite post-burn-in points below L_n(w*): the same rule as the
    loss_below_init flag. A healthy run's minibatch noise dips below zero now and then; that is
    not worth a red band (and its label would sit on the zero line)."""
    draws = loss[:, np.asarray(steps) > burnin] if loss.size else loss
    finite = draws[np.isfinite(draws)]
    return bool(finite.size) and float((finite < 0).mean()) > 0.5


def _divergence_marks(fig: go.Figure, steps, loss, diverged: dict) -> None:
    """A ✕ on each diverged chain's last finite point; one dashed line and one label per distinct
    blow-up step ("chains 0, 2 diverged at step 3"), labels stacked so they never overprint."""
    steps = np.asarray(steps)
    for c, step in diverged.items():
        row = loss[c] if c < loss.shape[0] else np.zeros(0)
        finite = np.flatnonzero(np.isfinite(row))
        if finite.size:
            fig.add_trace(go.Scatter(x=[steps[finite[-1]]], y=[row[finite[-1]]], mode="markers",
                                     marker=dict(symbol="x", size=12, color=chain_color(c), line=dict(width=2)),
                                     name=f"chain {c} diverged", legendgroup=str(c), showlegend=False))
    by_step: dict[int, list[int]] = {}
    for c, step in sorted(diverged.items()):
        by_step.setdefault(int(step), []).append(int(c))
    for i, (step, chains) in enumerate(sorted(by_step.items())):
        fig.add_shape(type="line", x0=step, x1=step, y0=0, y1=1, xref="x", yref="y domain",
                      line=dict(color=chain_color(chains[0]), width=2, dash="dash"))
        who = f"chain {chains[0]}" if len(chains) == 1 else f"chains {', '.join(map(str, chains))}"
        fig.add_annotation(x=step, y=1 - 0.09 * i, xref="x", yref="y domain", text=f"{who} diverged at step {step}",
                           showarrow=False, xanchor="left", yanchor="top",
                           font=dict(color="#d62728", size=11))


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
        # below its line, at the other end from true λ's label: close values no longer overprint
        low = true_lambda is None or target <= true_lambda
        _hline(fig, target, "#9467bd", "dot", f"finite-n target = {target:.4g}", width=2,
               anchor="bottom" if low else "top", side="left" if true_lambda is not None else "right")
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


MODEL_COLORS = ("#1f77b4", "#ff7f0e")


def compare_figure(runs: list[dict], total_steps=None) -> go.Figure:
    """Running λ̂ of several models overlaid: pooled (thick) and per chain (thin, faint).

    Each run: {label, steps, lam (C, k), pooled (k,), burnin}."""
    fig = go.Figure()
    if runs:
        _burnin_band(fig, max(r["burnin"] for r in runs))
    for i, run in enumerate(runs):
        color = MODEL_COLORS[i % len(MODEL_COLORS)]
        for c in range(run["lam"].shape[0]):
            fig.add_trace(go.Scatter(x=run["steps"], y=run["lam"][c], mode="lines", opacity=0.3,
                                     line=dict(width=1, color=color), legendgroup=run["label"],
                                     showlegend=False, name=f"{run['label']} chain {c}"))
        fig.add_trace(go.Scatter(x=run["steps"], y=run["pooled"], mode="lines", name=run["label"],
                                 line=dict(width=3, color=color), legendgroup=run["label"]))
    return _layout(fig, "Running λ̂, overlaid (thick: pooled over chains; thin: each chain)", "SGLD step", "λ̂",
                   height=380, total_steps=total_steps)


VERDICT_MARK = {"ok": "", "unstable": "⚠ ", "negative": "negative", "diverged": "diverged", "pending": "…"}


def colour_scale(values) -> tuple[np.ndarray, str, dict]:
    """How the heatmap colours λ̂ so that one outlier cannot swamp the rest: log10 when every value
    is positive (ticks labelled in λ̂), else clipped to the 10th–90th percentile. Returns
    (colour values, colour-bar title, extra colour-bar settings)."""
    values = np.asarray(values, float)
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() > 0:
        logs = np.log10(values)
        lo, hi = np.floor(np.nanmin(logs)), np.ceil(np.nanmax(logs))
        ticks = [t for t in np.arange(lo, hi + 1) for t in (t, t + np.log10(3)) if lo <= t <= hi]
        return logs, "λ̂<br>log scale", dict(tickvals=ticks, ticktext=[f"{10 ** t:.2g}" for t in ticks])
    if finite.size < 3:
        return values, "λ̂", {}
    lo, hi = np.percentile(finite, [10, 90])
    return np.clip(values, lo, hi), f"λ̂ clipped<br>to {lo:.3g} … {hi:.3g}", {}


def sweep_heatmap(epsilons, gammas, cells: dict, chosen=None, picked=None) -> go.Figure:
    """λ̂ over ε × γ. `cells` maps (ε, γ) -> (λ̂, verdict). Negative and diverged cells are left
    uncoloured and say so in red; unstable ones carry ⚠; the recommended cell is outlined green,
    the one picked (clicked) in the theme's accent. Colour on a log (or clipped) scale: see
    `colour_scale`; the text in each cell is the value itself."""
    eps_labels = [f"{e:.1e}" for e in epsilons]
    gam_labels = [f"{g:g}" for g in gammas]
    raw, text = [], []
    for g in gammas:
        z_row, t_row = [], []
        for e in epsilons:
            lam, verdict = cells.get((e, g), (np.nan, "pending"))
            mark = VERDICT_MARK.get(verdict, "?")
            colored = verdict in ("ok", "unstable") and np.isfinite(lam)
            z_row.append(lam if colored else np.nan)
            t_row.append(f"{mark}{lam:.3g}" if colored else mark)
        raw.append(z_row)
        text.append(t_row)
    z, bar_title, bar = colour_scale(raw)
    fig = go.Figure(go.Heatmap(z=z, x=eps_labels, y=gam_labels, text=text, texttemplate="%{text}",
                               textfont=dict(size=FONT + 1), colorscale="Viridis",
                               colorbar=dict(title=dict(text=bar_title, side="top"), **bar),  # upright
                               hoverinfo="skip", xgap=3, ygap=3))
    # Heatmap cells cannot be selected by a click (plotly has no point selection on heatmaps): an
    # invisible marker on each cell takes the click and the hover instead.
    fig.add_trace(go.Scatter(
        x=[e for _ in gam_labels for e in eps_labels], y=[g for g in gam_labels for _ in eps_labels],
        text=[t for row in text for t in row], mode="markers", showlegend=False, name="cells",
        marker=dict(size=44, symbol="square", opacity=0),
        hovertemplate="ε %{x}<br>γ %{y}<br>λ̂ %{text}<br>click: its traces, load it<extra></extra>"))
    for (e, g), (lam, verdict) in cells.items():  # red frame: the cell failed outright
        if verdict in ("negative", "diverged") and e in epsilons and g in gammas:
            _cell_box(fig, epsilons.index(e), gammas.index(g), "#d62728", 2)
    if chosen is not None and chosen[0] in epsilons and chosen[1] in gammas:
        _cell_box(fig, epsilons.index(chosen[0]), gammas.index(chosen[1]), "#00c853", 4)
    if picked is not None and picked[0] in epsilons and picked[1] in gammas:
        _cell_box(fig, epsilons.index(picked[0]), gammas.index(picked[1]), "#ff4b4b", 3, dash="dot")
    fig.update_xaxes(type="category", title="step size ε", tickfont=dict(size=FONT))
    fig.update_yaxes(type="category", title="localization γ", tickfont=dict(size=FONT))
    fig.update_layout(title=dict(text="λ̂ per cell (click one: its traces, load it)<br><span style='font-size:"
                                      f"{FONT}px'>coloured: stable · ⚠: unstable (ε too large, drifting or w* off its minimum) · red: negative or "
                                      "diverged · green frame: recommended</span>", x=0, font=dict(size=14)),
                      height=160 + 70 * len(gammas), margin=dict(l=70, r=20, t=80, b=50), font=dict(size=FONT))
    return fig


VERDICT_SYMBOL = {"ok": "circle", "unstable": "circle-open", "negative": "x", "diverged": "x-thin-open"}


def sweep_lines(cells: list) -> go.Figure:
    """λ̂ against ε, one line per γ (log ε axis); each point's marker says its verdict: filled = ok,
    hollow = unstable (a disqualifying flag, sweep.DISQUALIFYING), × = negative or diverged; hover names
    every flag code (a stable point can carry others, e.g. low_ess on short chains)."""
    fig = go.Figure()
    for i, gamma in enumerate(sorted({c.gamma for c in cells})):
        row = sorted((c for c in cells if c.gamma == gamma and np.isfinite(c.lambda_hat)), key=lambda c: c.epsilon)
        if not row:
            continue
        fig.add_trace(go.Scatter(
            x=[c.epsilon for c in row], y=[c.lambda_hat for c in row], mode="lines+markers+text",
            name=f"γ = {gamma:g}", textposition=_inward(len(row)), textfont=dict(size=FONT, color=chain_color(i)),
            text=[(c.disqualifying_flag or (c.flags[0] if c.flags else c.verdict)) if c.verdict != "ok" else ""
                  for c in row],
            line=dict(color=chain_color(i), width=2),
            marker=dict(size=11, symbol=[VERDICT_SYMBOL.get(c.verdict, "circle") for c in row],
                        line=dict(width=2, color=chain_color(i))),
            customdata=[[c.verdict, ", ".join(c.flags) or "none"] for c in row],
            hovertemplate="ε %{x:.2g} · λ̂ %{y:.4g}<br>%{customdata[0]} · flags: %{customdata[1]}<extra></extra>"))
    fig = _layout(fig, "λ̂ against ε per γ (filled: stable · hollow: unstable ⚠ · ×: negative/diverged)",
                  "step size ε", "λ̂", height=380)
    fig.update_xaxes(type="log", dtick=1, tickformat=".0e")  # one tick per decade: 1e-05, 1e-04, …
    fig.update_layout(hovermode="closest")
    return fig


def _inward(points: int) -> list[str]:
    """Label positions that stay inside the plot: a flag code centred on the first or last point of a
    line was cut in half by the axis edge (\"gh_chain_variance\")."""
    if points == 1:
        return ["top center"]
    return ["top right"] + ["top center"] * (points - 2) + ["top left"]


def cell_trace_figure(trace: dict, title: str) -> go.Figure:
    """One sweep cell's running λ̂ per chain (thin) and pooled (thick): `trace` = {steps, lambda (C, k),
    burnin} as kept on the Cell."""
    from .trace import pooled_trace

    steps, lam = np.asarray(trace["steps"]), np.asarray(trace["lambda"], float)
    fig = lambda_figure(steps, lam, pooled_trace(lam), int(trace.get("burnin", 0)))
    fig.update_layout(title=dict(text=title))
    return fig


def _cell_box(fig, i: int, j: int, color: str, width: int, dash: str = "solid") -> None:
    fig.add_shape(type="rect", x0=i - 0.5, x1=i + 0.5, y0=j - 0.5, y1=j + 0.5, xref="x", yref="y",
                  line=dict(color=color, width=width, dash=dash), fillcolor="rgba(0,0,0,0)")


def variability_figure(summary: dict) -> go.Figure:
    """λ̂ against the number of classes per architecture: each seed's run (small; hollow when flagged,
    its flag codes in the hover), the mean ± std over seeds (hollow when any seed was flagged) and the
    fitted line."""
    fig = go.Figure()
    for i, (arch, s) in enumerate(sorted(summary.items())):
        color = MODEL_COLORS[i % len(MODEL_COLORS)]
        ks = np.asarray(s["classes"], float)
        runs = s.get("runs", [])
        if runs:
            offset = (i - 0.5) * 0.12  # the two architectures' seeds side by side, not on top of each other
            fig.add_trace(go.Scatter(
                x=[r["classes"] + offset for r in runs], y=[r["lambda_hat"] for r in runs], mode="markers",
                name=f"{arch} runs (hollow: flagged ⚠)", legendgroup=arch,
                marker=dict(size=7, color=color, opacity=0.7, line=dict(width=1.5, color=color),
                            symbol=["circle-open" if r["flagged"] else "circle" for r in runs]),
                customdata=[[r["seed"], ("⚠ " + ", ".join(r["flags"])) if r["flagged"] else "ok"] for r in runs],
                hovertemplate=f"{arch} · K %{{x:.0f}} · seed %{{customdata[0]}}<br>λ̂ %{{y:.4g}} · "
                              "%{customdata[1]}<extra></extra>"))
        codes = s.get("flag_codes", [[] for _ in ks])
        fig.add_trace(go.Scatter(
            x=ks, y=s["mean"], error_y=dict(type="data", array=s["std"], visible=True), mode="markers",
            marker=dict(size=12, color=color, line=dict(width=2.5, color=color),
                        symbol=["diamond-open" if f else "diamond" for f in s["flagged"]]),
            name=f"{arch} mean ± std (hollow: a seed flagged)", legendgroup=arch,
            customdata=[("⚠ " + ", ".join(c)) if f else "all seeds ok" for c, f in zip(codes, s["flagged"])],
            hovertemplate=f"{arch} · K %{{x}}<br>mean λ̂ %{{y:.4g}}<br>%{{customdata}}<extra></extra>"))
        if np.isfinite(s["slope"]):
            line = s["intercept"] + s["slope"] * ks
            fig.add_trace(go.Scatter(x=ks, y=line, mode="lines", line=dict(color=color, dash="dash", width=2),
                                     legendgroup=arch,
                                     name=f"{arch} fit: slope {s['slope']:.2f}, R² {s['r2']:.2f}"))
    fig = _layout(fig, "λ̂ against the number of classes", "classes K", "λ̂", height=520)
    # three legend rows per architecture: below the plot, where they cannot cover the title
    fig.update_layout(hovermode="closest", margin=dict(t=50, b=150),
                      legend=dict(orientation="h", yanchor="top", y=-0.16, x=0))
    fig.update_xaxes(dtick=1)
    return fig


MAX_EPOCH_TICKS = 12  # up to this many epochs, one x tick per epoch; beyond, Plotly's own (whole-number) ticks


def training_figure(history: list[tuple[int, float]], epochs: int | None = None) -> go.Figure:
    fig = go.Figure()
    if history:
        epoch, loss = zip(*history)
        fig.add_trace(go.Scatter(x=epoch, y=loss, mode="lines+markers", name="train loss",
                                 line=dict(color=MODEL_COLORS[0]), marker=dict(size=4)))
    fig = _layout(fig, "Training loss (mean over the epoch's minibatches)", "epoch", "cross-entropy",
                  height=340, total_steps=epochs)
    fig.update_yaxes(type="log")
    if (epochs or len(history)) <= MAX_EPOCH_TICKS:  # whole epochs only: "0.5", "1.5" name no epoch
        fig.update_xaxes(dtick=1)
    return fig


def style(fig: go.Figure, presentation: bool = False) -> go.Figure:
    """Text, lines and height for where the figure is shown: ≥ FONT px text always; in presentation
    mode ≥ PRESENTATION_FONT px ticks, legends and annotations, lines 1.6× thicker and the plot 1.3×
    taller (for a projector at the back of a room). Changes `fig` in place and returns it."""
    size = PRESENTATION_FONT if presentation else FONT
    fig.update_layout(font=dict(size=size), legend=dict(font=dict(size=size)))
    fig.update_xaxes(tickfont=dict(size=size), title_font=dict(size=size + 1))
    fig.update_yaxes(tickfont=dict(size=size), title_font=dict(size=size + 1))
    for note in fig.layout.annotations:
        note.font.size = max(size, note.font.size or 0)
    if presentation:
        fig.update_layout(height=int((fig.layout.height or 400) * 1.3),
                          title_font=dict(size=size + 3))
        for trace in fig.data:
            width = getattr(getattr(trace, "line", None), "width", None)
            if width is not None or getattr(trace, "mode", None) and "lines" in trace.mode:
                trace.line.width = 1.6 * (width or 2)
            marker = getattr(trace, "marker", None)
            if marker is not None and isinstance(marker.size, (int, float)):
                marker.size = marker.size * 1.4
        fig.update_traces(textfont_size=size, selector=dict(type="heatmap"))
    return fig
