"""The step-size bias check (llc_core/step_bias.py): tr(H) against reference values, and the
first-order bias σ²·ε·nβ·tr(H)/8 against the bias a real run shows on a quadratic."""

import math

import pytest
import torch
from torch import nn

from llc_core import step_bias
from llc_core.gradients import Flat
from llc_core.sampler import SGLDRun
from llc_core.toys import half_mse, parse_toy


def linear_regression(dim: int, n: int = 2048):
    """Half-MSE linear regression: its Hessian is mean(x xᵀ) at every w, so tr(H) = mean ‖x‖²."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, dim, generator=gen) * torch.linspace(0.5, 2.0, dim)
    model = nn.Linear(dim, 1, bias=False)
    return model, x, x @ torch.randn(dim, 1, generator=gen)


@pytest.mark.parametrize("dim", [5, step_bias.EXACT_MAX_PARAMS + 44])  # exact trace, then Hutchinson
def test_trace_matches_the_exact_hessian_trace_of_a_linear_regression(dim):
    model, x, y = linear_regression(dim)
    stride = math.ceil(len(x) / step_bias.EXAMPLES)
    exact = float(x[::stride].pow(2).sum(1).mean())  # the estimator's subset
    W = torch.randn(3, dim)
    got = step_bias.estimate(model, Flat(model), W, torch.ones(3, dtype=bool), x, y, half_mse,
                             epsilon=1e-3, nbeta=50.0, noise_scale=2.0)
    tolerance = 1e-4 if dim <= step_bias.EXACT_MAX_PARAMS else 4 * got.trace_se
    assert abs(got.trace - exact) <= tolerance * (exact if dim <= step_bias.EXACT_MAX_PARAMS else 1), (got, exact)
    assert got.bias == pytest.approx(2.0**2 * 1e-3 * 50.0 * got.trace / 8)
    assert (got.probes == 0) == (dim <= step_bias.EXACT_MAX_PARAMS) and got.chains == 3


def test_preconditioning_scales_the_trace_and_dead_chains_are_left_out():
    model, x, y = linear_regression(5)
    W = torch.randn(3, 5)
    W[1] = math.nan  # a diverged chain
    alive = torch.tensor([True, False, True])
    plain = step_bias.estimate(model, Flat(model), W, alive, x, y, half_mse, 1e-3, 50.0, 1.0)
    halved = step_bias.estimate(model, Flat(model), W, alive, x, y, half_mse, 1e-3, 50.0, 1.0,
                                precond_sqrt=torch.full((3, 5), math.sqrt(0.5)))
    assert plain.chains == 2 and math.isfinite(plain.trace)
    assert halved.trace == pytest.approx(plain.trace / 2, rel=1e-6)


def test_a_large_step_on_a_quadratic_biases_lambda_by_the_predicted_amount_and_is_flagged():
    """crossing:1 is L = ½w² (h = 1). At 20× its default ε, ε·nβ·h = 0.8: first order predicts
    λ̂ − target = 0.8/8 = 0.1 (the exact discrete chain gives 1/(1 − 0.8/4) − 1 = +25% of ½ = 0.125)."""
    task = parse_toy("crossing:1")
    base = task.defaults.replace(chains=16, draws=500, burnin=200, thin=1, seed=1)
    fine = SGLDRun(task, base).run()
    # At the large step the chain decorrelates in a few steps: 16 × 4,000 draws give an MCSE ≈ 0.005.
    coarse = SGLDRun(task, base.replace(epsilon=20 * base.epsilon, draws=4000)).run()
    bias = coarse.diagnostics["step_bias"]["bias"]
    assert bias == pytest.approx(20 * fine.diagnostics["step_bias"]["bias"], rel=1e-6)
    subset = task.x[:: math.ceil(task.n / step_bias.EXAMPLES)]
    assert bias == pytest.approx(0.8 / 8 * float(subset.pow(2).mean()), rel=1e-3)  # tr H = mean x²
    shown = coarse.lambda_hat - task.target_lambda
    assert 0.8 * bias <= shown <= 1.5 * bias, (shown, bias, coarse.lambda_hat_se)
    assert "step_bias" in {f.code for f in coarse.warnings} and coarse.status == "warning"
    assert "step_bias" not in {f.code for f in fine.warnings}
    flag = next(f for f in coarse.warnings if f.code == "step_bias")
    assert "Lower ε" in flag.fix and f"{bias:.3g}" in flag.message
    assert coarse.to_json_dict()["step_bias"] == bias


class OnceDifferentiableSquare(torch.autograd.Function):
    """x² whose backward cannot itself be differentiated (like many custom CUDA kernels)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad


class Kernelled(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))

    def forward(self, x):
        return OnceDifferentiableSquare.apply(x * self.w).sum(1, keepdim=True)


def test_a_model_without_second_derivatives_gets_no_step_bias_and_its_run_still_finishes():
    from llc_core import LLCTask, SGLDConfig, estimate_llc

    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(0))
    task = LLCTask(Kernelled(), x, Kernelled()(x).detach(), half_mse, name="kernelled")
    res = estimate_llc(task, SGLDConfig(epsilon=1e-4, gamma=100.0, chains=2, draws=50, burnin=0, batch_size=50))
    assert res.completed and math.isnan(res.diagnostics["step_bias"]["bias"])
    assert "step_bias" not in {f.code for f in res.warnings}


def test_a_stopped_run_is_not_held_up_by_the_check_and_a_finished_one_has_it():
    """Stop must not wait for the Hessian (up to a second on the MNIST-1D CNN): a run cut short by
    its cancel flag reports no step bias; the same run left to finish does."""
    import threading

    task = parse_toy("crossing:1", n=2000)
    config = task.defaults.replace(chains=2, draws=200, burnin=20)
    finished = SGLDRun(task, config).run()
    assert finished.completed and finished.diagnostics["step_bias"] is not None
    stop = threading.Event()
    run = SGLDRun(task, config, cancel=stop)
    stopped = run.run(lambda progress: stop.set() if progress.step >= 60 else None)
    assert not stopped.completed and stopped.steps_done < config.total_steps
    assert stopped.diagnostics["step_bias"] is None
    assert stopped.diagnostics["wstar"] is not None  # checked after the first record, before the stop
