"""How much the step size itself inflates λ̂: the first-order discretisation bias of SGLD.

Along a direction of curvature h, the update w ← w − (ε/2)(nβ·h + γ)·w + σ·√ε·ξ has stationary
variance σ² / ((nβh + γ)(1 − ε(nβh + γ)/4)) instead of σ² / (nβh + γ), so that direction's share of
λ̂ = nβ·E[L_n(w) − L_n(w*)] is too high by σ²·ε·nβ·h/8 (γ cancels at first order). Summed over
directions, the bias on λ̂ is

    B = σ² · ε · nβ · tr(P·H) / 8

with H the Hessian of L_n where the chains are and P the sampler's preconditioner (I for SGLD).

Where the chains are matters: the chains drift along the flat directions of a singular model to
where the curvature is larger. On dln:2,4,3:r2 at its defaults (seed 4), tr(H) is 10.0 at w* but
15.6–21.9 at four of the chains' end points; B from w* predicts +0.19, B from the eight chains'
end points +0.375, and the run's λ̂ was +0.356 above λ = 3 (3.356, +11.9%). So B is estimated at
the chains' final positions, on an evenly strided subset of the training data: exactly for small
models (the Hessian's diagonal), else by Hutchinson's estimator (Rademacher probes, Hessian-vector
products by double backward).

Why a separate check: MALA acceptance, the other discretisation check, is blind in few dimensions
(its log-ratio scales with (εh)³ per direction, the bias with εh): that run's acceptance was 0.93.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from .diagnostics import Flag

# B above this fraction of |λ̂|: flagged. Half the project's 10% accuracy bar, as DRIFT_MIN_REL:
# B is a first-order estimate (+0.375 against the measured +0.356 on dln:2,4,3:r2), so a run
# whose step alone biases λ̂ by ≥ 5% is one other errors can push past the bar.
STEP_BIAS_MAX = 0.05
# Hessian-vector products over all chains (spread evenly over at most PROBE_CHAINS chains) and the
# training examples each is computed on: about a second for the 16,618-parameter MNIST-1D CNN on
# one CPU core, milliseconds for the toys. The estimate only has to tell 5% of λ̂ from less.
PROBES = 16
PROBE_CHAINS = 8
EXAMPLES = 512
# Up to this many parameters the trace is exact (the dense Hessian of the subset's loss per chain,
# batched Hessian-vector products): Hutchinson's 16 probes left ±13% on dln:2,4,3:r2 (24.9 ± 3.2).
EXACT_MAX_PARAMS = 256


@dataclass(frozen=True)
class StepBias:
    bias: float  # B, in units of λ̂
    trace: float  # tr(P·H) averaged over the probed chains' final positions
    trace_se: float  # standard error of that average (over the chains, or over the probes)
    chains: int
    probes: int  # Hutchinson probes in all; 0 = the exact trace (small models)

    def to_dict(self) -> dict:
        return asdict(self)


def _quadratic_forms(model, flat, w: torch.Tensor, probes: torch.Tensor, x, y, loss_fn) -> torch.Tensor:
    """uᵀ·H(w)·u for each row u of `probes`, H the Hessian of the loss on (x, y) at the flat weights w."""
    w = w.detach().clone().requires_grad_(True)
    loss = loss_fn(torch.func.functional_call(model, flat.views(w), (x,)), y)
    (g,) = torch.autograd.grad(loss, w, create_graph=True)
    if not g.requires_grad:  # a model linear in w: no curvature
        return torch.zeros(len(probes), device=w.device)
    out = []
    for u in probes:
        (hu,) = torch.autograd.grad(g, w, grad_outputs=u, retain_graph=True)
        out.append((u * hu).sum())
    return torch.stack(out).detach()


def _hessian_diagonal(model, flat, w: torch.Tensor, x, y, loss_fn) -> torch.Tensor:
    """diag H(w) exactly: all D Hessian-vector products with the unit vectors in one batched double
    backward. Plain autograd on purpose: `torch.func.hessian` gives the same numbers but its first
    call imports torch._dynamo, 2–3 s that every worker process paid on its first run."""
    w = w.detach().clone().requires_grad_(True)
    loss = loss_fn(torch.func.functional_call(model, flat.views(w), (x,)), y)
    (g,) = torch.autograd.grad(loss, w, create_graph=True)
    if not g.requires_grad:  # a model linear in w: no curvature
        return torch.zeros_like(w)
    eye = torch.eye(len(w), dtype=w.dtype, device=w.device)
    (rows,) = torch.autograd.grad(g, w, grad_outputs=eye, is_grads_batched=True)
    return rows.diagonal()


def _exact_traces(model, flat, W: torch.Tensor, rows: list, precond_sqrt, x, y, loss_fn) -> torch.Tensor:
    """tr(P·H(w)) exactly, one per chain in `rows` (P diagonal: Σ P_ii·H_ii)."""
    out = []
    for c in rows:
        diag = _hessian_diagonal(model, flat, W[c], x, y, loss_fn)
        out.append((diag * precond_sqrt[c] ** 2).sum() if precond_sqrt is not None else diag.sum())
    return torch.stack(out).detach()


def estimate(model, flat, W: torch.Tensor, alive, x, y, loss_fn, epsilon: float, nbeta: float,
             noise_scale: float, precond_sqrt: torch.Tensor | None = None, seed: int = 0) -> StepBias:
    """B at the live chains' positions W (C, D); `precond_sqrt` (C, D) is P^½ per chain, None for P = I.
    NaN (no flag) when the model's loss cannot be differentiated twice: a diagnostic never fails a run."""
    rows = [c for c in range(len(W)) if bool(alive[c]) and bool(torch.isfinite(W[c]).all())][:PROBE_CHAINS]
    if not rows:
        return StepBias(math.nan, math.nan, math.nan, 0, 0)
    stride = max(1, math.ceil(len(x) / EXAMPLES))
    xs, ys = x[::stride], y[::stride]
    was_training = model.training
    model.eval()
    values, probes = None, 0
    try:
        if W.shape[1] <= EXACT_MAX_PARAMS:
            try:
                values = _exact_traces(model, flat, W, rows, precond_sqrt, xs, ys, loss_fn)
            except (RuntimeError, NotImplementedError):  # no forward-mode AD for some op: probe instead
                pass
        if values is None:
            values = _hutchinson(model, flat, W, rows, precond_sqrt, xs, ys, loss_fn, seed)
            probes = len(values)
    except (RuntimeError, NotImplementedError):
        return StepBias(math.nan, math.nan, math.nan, len(rows), 0)
    finally:
        model.train(was_training)
    values = values.double()
    trace = float(values.mean())
    se = float(values.std() / math.sqrt(len(values))) if len(values) > 1 else math.nan
    return StepBias(noise_scale**2 * epsilon * nbeta * trace / 8, trace, se, len(rows), probes)


def _hutchinson(model, flat, W, rows, precond_sqrt, x, y, loss_fn, seed: int) -> torch.Tensor:
    """Single-probe estimates uᵀ·P^½·H·P^½·u (u Rademacher), PROBES of them spread over the chains."""
    gen = torch.Generator(device=W.device).manual_seed(seed)
    per_chain = max(1, math.ceil(PROBES / len(rows)))
    values = []
    for c in rows:
        v = torch.randint(0, 2, (per_chain, W.shape[1]), generator=gen, device=W.device).to(W.dtype) * 2 - 1
        values.append(_quadratic_forms(model, flat, W[c], v if precond_sqrt is None else v * precond_sqrt[c],
                                       x, y, loss_fn))
    return torch.cat(values)


def flags(step: StepBias, lambda_hat: float) -> list[Flag]:
    """`step_bias` when the step alone raises λ̂ by more than STEP_BIAS_MAX of it."""
    if not (math.isfinite(step.bias) and math.isfinite(lambda_hat)) or step.bias <= STEP_BIAS_MAX * abs(lambda_hat):
        return []
    return [Flag(
        "step_bias",
        f"The step size alone raises λ̂ by about {step.bias:.3g} ({step.bias / abs(lambda_hat):.0%} of it): "
        f"ε is large for the curvature where the chains are (tr H ≈ {step.trace:.3g}; first-order SGLD "
        f"discretisation bias σ²·ε·nβ·tr H/8, over {STEP_BIAS_MAX:.0%} of λ̂).",
        f"Lower ε (try ×{0.5 * STEP_BIAS_MAX * abs(lambda_hat) / step.bias:.2g}, which halves the bias below "
        f"the threshold), or let auto-calibrate find the ε where λ̂ stops changing.",
    )]
