"""Failure signatures on demand, for teaching: each demo is a task plus settings that provoke one
flag (or, for the control, none). The broken ones stop early (a few seconds on a CPU); the calibrated
control runs the full calibrated length, 8 chains × 11,000 steps (about ten seconds)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .config import SGLDConfig
from .task import LLCTask
from .toys import half_mse, parse_toy


@dataclass(frozen=True)
class Demo:
    key: str
    title: str
    story: str  # what is wrong, in the workshop's words
    task: str  # a toy SPEC, or "regression:W" (1-D linear regression y = x with w* = W)
    settings: dict = field(default_factory=dict)  # over the task's defaults
    expect: str = "ok"  # the flag (or status "ok") the demo shows


DEMOS = [
    Demo("diverge", "ε too large → diverged",
         "ε = 1 on the normal crossing K(w) = w²: every step overshoots further, the loss explodes "
         "and the chains are dropped.", "crossing:1",
         dict(epsilon=1.0, chains=4, draws=200, burnin=0, thin=1), "diverged"),
    Demo("untrained", "Untrained w* → negative",
         "A linear regression whose w* was never trained (w* = 0, best weight 1): SGLD keeps training "
         "it, the sampled loss falls below L_n(w*) and λ̂ goes negative.", "regression:0",
         dict(epsilon=1e-4, gamma=1.0, chains=4, draws=300, burnin=200, thin=1, batch_size=100), "negative"),
    Demo("tiny_gamma", "Tiny γ → negative",
         "w* = 0.9 is close to the minimum at 1, but with γ = 0.01 nothing holds the chains there: they "
         "slide to the minimum and λ̂ turns negative. γ = 200 would keep them near w*.", "regression:0.9",
         dict(epsilon=2e-4, gamma=0.01, chains=4, draws=1000, burnin=200, thin=1, batch_size=1000), "negative"),
    Demo("few_draws", "Too few draws → not stationary",
         "A deep linear network with no burn-in and 200 draws: the loss is still climbing away from "
         "w* when sampling stops, so λ̂ is far below the truth.", "dln:5,5,5:r0",
         dict(chains=4, draws=200, burnin=0, thin=1), "not_stationary"),
    Demo("big_step", "Large step, small model → step_bias",
         "ε 20× the calibrated one on K(w) = w² (λ = ½): each step overshoots a little, the chains spread "
         "wider than the posterior and λ̂ comes out about 0.1 too high. MALA acceptance stays high in one "
         "dimension and sees nothing; the step-bias check computes the bias (σ²·ε·nβ·tr H/8) and flags it.",
         "crossing:1", dict(epsilon=7.4e-4, chains=16, draws=2000, burnin=200, thin=1), "step_bias"),
    Demo("good", "Calibrated → meets the target",
         "The same crossing with its calibrated settings: λ̂ lands on the exact finite-n target. It runs "
         "the full calibrated length (8 chains × 11,000 steps), so it takes about ten seconds.",
         "crossing:1", dict(chains=8), "ok"),
]


def regression_task(w_star: float, n: int = 1000, seed: int = 0) -> LLCTask:
    """½(y − w·x)² with y = x: the minimum is w = 1, the task sits at w*."""
    x = torch.randn(n, 1, generator=torch.Generator().manual_seed(seed))
    x = x / x.pow(2).mean().sqrt()
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(w_star)
    return LLCTask(model, x, x.clone(), half_mse, name=f"regression (w* = {w_star:g}, minimum at 1)",
                   defaults=SGLDConfig(epsilon=1e-4, gamma=1.0, chains=4, draws=300, burnin=200, batch_size=100))


def demo_task(demo: Demo) -> LLCTask:
    if demo.task.startswith("regression:"):
        return regression_task(float(demo.task.split(":", 1)[1]))
    return parse_toy(demo.task)


def demo_config(demo: Demo, task: LLCTask) -> SGLDConfig:
    return task.defaults.replace(**demo.settings)
