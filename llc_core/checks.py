"""Checks of a λ̂ that need no ground truth, for real models whose λ is unknown.

- Rescaling invariance (ReLU networks; Furman & Lau 2024): multiply layer k's weights and bias by
  α and layer k+1's weights by 1/α. ReLU (and max-pooling, flattening) is positively homogeneous,
  so the function, hence the loss landscape up to reparametrisation, and λ, are unchanged. λ̂ at
  α ∈ {4, 1/4} must agree with λ̂ at the original weights.
- Neighbouring step sizes: λ̂ at ε/2 and at 2ε must agree with λ̂ at ε (a factor 2 each way: wide
  enough to show discretisation bias, narrow enough that a well-chosen ε stays well chosen).
- Length: λ̂ from a run with twice the draws (and an independent seed) must agree.

"Agree" means |Δλ̂| ≤ AGREE_Z combined MCSEs, or within AGREE_REL of λ̂ when the MCSEs are so
small that a harmless bias would fail.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .config import SGLDConfig
from .sampler import CancelToken, LLCResult, estimate_llc
from .task import LLCTask

# 3 standard errors: a true agreement fails ~0.3% of the time when the MCSEs are right.
AGREE_Z = 3.0
# The accuracy bar used throughout (bench/accuracy.py): 10% of λ̂.
AGREE_REL = 0.10
RESCALE_ALPHAS = (4.0, 0.25)
# Outputs of the rescaled model may differ from the original by float rounding only.
SAME_FUNCTION_RTOL = 1e-4
# Examples the same-function test is run on (enough to hit every ReLU pattern that matters).
SAME_FUNCTION_EXAMPLES = 512
WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class CheckResult:
    name: str
    verdict: str  # "pass" | "fail" | "inconclusive"
    reason: str  # one line
    numbers: dict = field(default_factory=dict)


def weighted_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, WEIGHTED)]


def rescaled(model: nn.Module, k: int, alpha: float) -> nn.Module:
    """A copy with layer k (weights and bias) ×α and layer k+1's weights ×1/α."""
    layers = weighted_layers(model)
    if k + 1 >= len(layers):
        raise ValueError(f"layer {k}: the model has {len(layers)} weighted layers, need k+1 < that")
    out = copy.deepcopy(model)
    first, second = weighted_layers(out)[k], weighted_layers(out)[k + 1]
    with torch.no_grad():
        first.weight.mul_(alpha)
        if first.bias is not None:
            first.bias.mul_(alpha)
        second.weight.div_(alpha)
    return out


def same_function(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    """Largest output difference of two models on x, relative to the output scale."""
    with torch.no_grad():
        ya, yb = a.eval()(x), b.eval()(x)
    return float((ya - yb).abs().max() / (ya.abs().max() + 1e-12))


def agreement(name: str, base: LLCResult, other: LLCResult, what: str) -> CheckResult:
    """Verdict for two λ̂ that should be equal."""
    a, b = base.lambda_hat, other.lambda_hat
    se = math.hypot(base.lambda_hat_se, other.lambda_hat_se)
    numbers = {"lambda_hat": a, "lambda_hat_other": b, "difference": b - a, "combined_mcse": se,
               "status": base.status, "status_other": other.status}
    if not (math.isfinite(a) and math.isfinite(b)):
        return CheckResult(name, "inconclusive", f"a run gave no λ̂ ({base.status}, {other.status})", numbers)
    tol = max(AGREE_Z * se if math.isfinite(se) else 0.0, AGREE_REL * abs(a))
    numbers["tolerance"] = tol
    word = "agree" if abs(b - a) <= tol else "disagree"
    reason = (f"λ̂ {a:.4g} vs {b:.4g} {what}: {word} (|Δ| {abs(b - a):.3g}, tolerance {tol:.3g} = "
              f"max({AGREE_Z:g}·MCSE, {AGREE_REL:.0%}·λ̂))")
    return CheckResult(name, "pass" if word == "agree" else "fail", reason, numbers)


def _plan(task: LLCTask, config: SGLDConfig) -> list[tuple[str, str, LLCTask, SGLDConfig]]:
    """(check name, what differs, task, config) of every run after the base run."""
    plan = []
    if len(weighted_layers(task.model)) >= 2:
        for alpha in RESCALE_ALPHAS:
            model = rescaled(task.model, 0, alpha)
            plan.append((f"rescaling α={alpha:g}", f"at layer 1 ×{alpha:g}, layer 2 ×{1 / alpha:g}",
                         dataclasses.replace(task, model=model), config))
    for factor in (0.5, 2.0):
        plan.append((f"step size ε×{factor:g}", f"at ε = {config.epsilon * factor:.3g}", task,
                     config.replace(epsilon=config.epsilon * factor)))
    # an independent seed, so the long run is not the short run plus more
    plan.append(("twice as long", f"with {2 * config.draws} draws", task,
                 config.replace(draws=2 * config.draws, seed=config.seed + 1)))
    return plan


def _function_check(name: str, task: LLCTask, other: LLCTask) -> CheckResult | None:
    """An inconclusive result when the rescaled model is not the same function (e.g. BatchNorm)."""
    if other.model is task.model:
        return None
    diff = same_function(task.model, other.model, task.x[:SAME_FUNCTION_EXAMPLES])
    if diff > SAME_FUNCTION_RTOL:
        return CheckResult(name, "inconclusive", f"the rescaled model is not the same function "
                           f"(outputs differ by {diff:.2g} relative): not a ReLU-homogeneous pair",
                           {"output_difference": diff})
    return None


def run_checks(task: LLCTask, config: SGLDConfig, cancel: CancelToken | None = None,
               on_progress: Callable[[int, int, str], None] | None = None) -> list[CheckResult]:
    """All checks for this model and settings; on_progress(runs done, runs total, label)."""
    plan = _plan(task, config)
    total = len(plan) + 1
    report = on_progress or (lambda done, total, label: None)
    report(0, total, "base run")
    base = estimate_llc(task, config, cancel=cancel)
    results = []
    for i, (name, what, other_task, other_config) in enumerate(plan, start=1):
        if cancel is not None and cancel.is_set():
            break
        report(i, total, name)
        bad = _function_check(name, task, other_task)
        if bad is not None:
            results.append(bad)
            continue
        other = estimate_llc(other_task, other_config, cancel=cancel)
        check = agreement(name, base, other, what)
        if name.startswith("rescaling"):
            check.numbers["output_difference"] = same_function(task.model, other_task.model,
                                                               task.x[:SAME_FUNCTION_EXAMPLES])
        results.append(check)
    report(total, total, "done")
    return results
