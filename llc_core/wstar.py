"""Is w* near a minimum? λ̂ is only the learning coefficient at a local minimum: on a slope the
chains walk downhill and λ̂ comes out low, often negative. Three pieces of evidence, each cheap:

- the slope: the full-batch gradient g = ∇L_n(w*) and the curvature h along it (one Hessian-vector
  product). Along g the sampled potential nβ·L_n(w) + γ/2·‖w − w*‖² has a minimum a distance
  nβ·‖g‖/(nβ·h + γ) downhill, where nβ·L_n is lower by nβ²‖g‖²/(2·(nβ·h + γ)): the bias in λ̂ the
  slope alone causes on the local quadratic model (a lower bound on it: other directions add);
- the loss at w* against the training loss the checkpoint recorded (a different w* or data);
- the checkpoint's own training record: Train marks a model that stopped far from convergence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .diagnostics import Flag

# The slope's bias on λ̂ above which w* is not near a minimum. At the recipes' settings (γ = 100,
# nβ = n/log n): the 54 shipped MNIST-1D checkpoints give 0.0000–0.032, a CNN trained 5 of its 60
# epochs (train accuracy 60%, L_n = 1.11) 1.27, an MLP at 5 of 200 epochs 2.36 and at 30 (80%) 0.62;
# a CNN at 15 epochs (89%) 0.33 is not flagged by this alone; the known-λ toys 0 (their gradient at
# w* is exactly zero). 0.5 sits 15× above the shipped checkpoints.
MAX_SLOPE_BIAS = 0.5
# L_n(w*) this far above the recorded training loss (relative, plus an absolute floor for losses
# near 0) means the weights or the rebuilt data are not those the checkpoint was trained with
# (recorded and recomputed losses agree to 1e-6 on every shipped checkpoint).
LOSS_MISMATCH_REL = 0.1
LOSS_MISMATCH_ABS = 1e-3
CHUNK = 4096  # examples per pass: the full training set, in bounded memory
# Examples the curvature along g is measured on (an evenly strided subset; the gradient uses all).
CURVATURE_EXAMPLES = 1024


@dataclass
class WStarCheck:
    loss: float  # L_n(w*)
    grad_norm: float  # ‖∇L_n(w*)‖
    curvature: float  # gᵀHg/‖g‖² (NaN when g = 0)
    slope_bias: float  # nβ²‖g‖²/(2·(nβ·h + γ)); inf when the potential curves down along g
    nbeta: float
    gamma: float
    recorded_loss: float | None = None  # the checkpoint's train_loss
    training_notes: list = field(default_factory=list)  # why Train marked it unconverged

    def to_dict(self) -> dict:
        return asdict(self)


def _full_gradient(model: nn.Module, params: dict, x, y, loss_fn) -> tuple[float, torch.Tensor]:
    """(L_n, ∇L_n as one flat vector) at the weights `params`, full batch in chunks."""
    n, loss, flat = len(x), 0.0, None
    for start in range(0, n, CHUNK):
        xb, yb = x[start : start + CHUNK], y[start : start + CHUNK]
        part = loss_fn(torch.func.functional_call(model, params, (xb,)), yb) * (len(xb) / n)
        grads = torch.autograd.grad(part, list(params.values()), allow_unused=True)
        chunk = torch.cat([(torch.zeros_like(p) if g is None else g).flatten()
                           for p, g in zip(params.values(), grads)])
        loss, flat = loss + float(part.detach()), chunk if flat is None else flat + chunk
    return loss, flat


def _curvature(model: nn.Module, params: dict, x, y, loss_fn, direction: torch.Tensor) -> float:
    """vᵀHv for a unit vector v by one exact Hessian-vector product (double backward), on an evenly
    strided subset of CURVATURE_EXAMPLES examples: the full set took seconds for a CNN."""
    stride = max(1, math.ceil(len(x) / CURVATURE_EXAMPLES))
    xs, ys = x[::stride], y[::stride]
    loss = loss_fn(torch.func.functional_call(model, params, (xs,)), ys)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True, allow_unused=True)
    flat = torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params.values(), grads)])
    along = flat @ direction
    if not along.requires_grad:  # a model linear in w has no curvature
        return 0.0
    hv = torch.autograd.grad(along, list(params.values()), allow_unused=True)
    return float(torch.cat([(torch.zeros_like(p) if h is None else h).flatten()
                            for p, h in zip(params.values(), hv)]) @ direction)


def _gradient_and_curvature(model: nn.Module, x, y, loss_fn) -> tuple[float, torch.Tensor, float]:
    """(L_n, ∇L_n as one flat vector, gᵀHg/‖g‖²), in eval mode."""
    params = {k: p.detach().requires_grad_(True) for k, p in model.named_parameters() if p.requires_grad}
    loss, g = _full_gradient(model, params, x, y, loss_fn)
    norm = float(g.norm())
    if norm == 0.0:
        return loss, g, math.nan
    return loss, g, _curvature(model, params, x, y, loss_fn, g / norm)


def check(model: nn.Module, x, y, loss_fn, nbeta: float, gamma: float, info: dict | None = None) -> WStarCheck:
    """The evidence on whether w* (the model's weights) is near a minimum of L_n. The model is left
    as it was (its weights, .grad and train/eval mode)."""
    was_training = model.training
    model.eval()
    try:
        loss, g, h = _gradient_and_curvature(model, x, y, loss_fn)
    finally:
        model.train(was_training)
    g2 = float((g * g).sum())
    stiffness = nbeta * (0.0 if math.isnan(h) else h) + gamma
    bias = 0.0 if g2 == 0 else (nbeta**2 * g2 / (2 * stiffness) if stiffness > 0 else math.inf)
    info = info or {}
    recorded = info.get("train_loss")
    return WStarCheck(loss=loss, grad_norm=math.sqrt(g2), curvature=h, slope_bias=bias, nbeta=nbeta, gamma=gamma,
                      recorded_loss=float(recorded) if isinstance(recorded, (int, float)) else None,
                      training_notes=list(info.get("convergence_notes") or []) if info.get("converged") is False
                      else [])


def check_task(task, nbeta: float | None = None, gamma: float | None = None) -> WStarCheck:
    """`check` for an LLCTask at these nβ and γ (default: the task's defaults, nβ = n/log n)."""
    from .config import default_nbeta

    nbeta = nbeta if nbeta is not None else (task.defaults.nbeta or default_nbeta(task.n))
    gamma = gamma if gamma is not None else task.defaults.gamma
    return check(task.model, task.x, task.y, task.loss_fn, nbeta, gamma, task.info)


def problems(c: WStarCheck) -> list[str]:
    """Why w* is not near a minimum, one sentence each; empty when nothing says so."""
    found = []
    if c.slope_bias > MAX_SLOPE_BIAS:
        found.append(f"the full-batch gradient at w* is {c.grad_norm:.3g} (L_n = {c.loss:.3g}): on the local "
                     f"quadratic model the slope alone lowers λ̂ by ≥ {c.slope_bias:.3g} at nβ = {c.nbeta:.4g}, "
                     f"γ = {c.gamma:g} (threshold {MAX_SLOPE_BIAS:g})")
    if c.recorded_loss is not None and c.loss > c.recorded_loss * (1 + LOSS_MISMATCH_REL) + LOSS_MISMATCH_ABS:
        found.append(f"L_n(w*) = {c.loss:.4g} is far above the training loss the checkpoint recorded, "
                     f"{c.recorded_loss:.4g}: these are not the weights or data it was trained with")
    found += [f"training stopped far from convergence ({note})" for note in c.training_notes]
    return found


def flags(c: WStarCheck) -> list[Flag]:
    """The `wstar_not_minimum` flag when any evidence says w* is not near a minimum."""
    found = problems(c)
    if not found:
        return []
    return [Flag(
        "wstar_not_minimum",
        "w* is not near a minimum: " + "; ".join(found) + ". SGLD then keeps training the model and λ̂ "
        "comes out too low (often negative).",
        "Train the model to convergence (the Train page's recipe, all its epochs) or pick a converged "
        "checkpoint; a larger γ only hides the slope.",
    )]
