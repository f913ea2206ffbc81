"""Each SG-MCMC update rule checked by hand on a 2-parameter model, MALA acceptance for each, and
the sampler settings' validation."""

import math

import numpy as np
import pytest
import torch

from llc_core import SGLDConfig, SGLDRun
from llc_core.config import SAMPLERS, ConfigError
from llc_core.sampler import chain_seeds
from tests.test_sampler import line_task


def line_grad(task, batch, w):
    x, y = task.x[batch, 0].double(), task.y[batch, 0].double()
    resid = w[0] * x + w[1] - y  # L_m = ½·mean(resid²)
    return torch.stack([(resid * x).mean(), resid.mean()])


def two_steps_by_hand(task, cfg, precondition):
    """w after two steps with the run's own minibatches and noise (one generator per chain:
    randperm at an epoch start, then the step's normals)."""
    gen = torch.Generator().manual_seed(chain_seeds(cfg.seed, 1)[0])
    perm = torch.randperm(task.n, generator=gen)
    w_star = torch.tensor([0.7, -0.2], dtype=torch.float64)
    w, state = w_star.clone(), {}
    for k in range(2):
        noise = torch.empty(2).normal_(generator=gen).double()
        g = line_grad(task, perm[4 * k : 4 * k + 4], w)
        P = precondition(g, state)
        drift = cfg.nbeta * g + cfg.gamma * (w - w_star)
        w = w - cfg.epsilon / 2 * P * drift + cfg.noise_scale * math.sqrt(cfg.epsilon) * P.sqrt() * noise
    return w


def identity(g, state):
    return torch.ones_like(g)


def rmsprop(alpha, delta):
    def precondition(g, state):
        state["V"] = alpha * state.get("V", torch.zeros_like(g)) + (1 - alpha) * g**2
        return 1 / (state["V"].sqrt() + delta)
    return precondition


@pytest.mark.parametrize("vectorize", ["off", "on", "batched"])
@pytest.mark.parametrize("sampler", ["sgld", "rmsprop_sgld"])
def test_two_steps_match_the_update_rule_by_hand(sampler, vectorize):
    task = line_task()
    cfg = SGLDConfig(sampler=sampler, epsilon=1e-2, gamma=3.0, nbeta=5.0, noise_scale=0.8, chains=1,
                     draws=2, burnin=0, batch_size=4, seed=123, vectorize=vectorize,
                     rmsprop_alpha=0.9, rmsprop_eps=0.05, device="cpu")  # the CPU path: per-chain generators
    run = SGLDRun(task, cfg)
    list(run)
    precondition = identity if sampler == "sgld" else rmsprop(0.9, 0.05)
    expected = two_steps_by_hand(task, cfg, precondition)
    assert torch.allclose(run.chain_weights[0].double(), expected, atol=1e-6)
    assert run.result.sampler == sampler and run.result.to_json_dict()["sampler"] == sampler


def test_rmsprop_differs_from_sgld():
    """The preconditioner is not a no-op: same seed, same batches, other weights."""
    task = line_task()
    cfg = SGLDConfig(epsilon=1e-2, gamma=3.0, nbeta=5.0, chains=1, draws=2, burnin=0, batch_size=4, device="cpu")
    a, b = SGLDRun(task, cfg), SGLDRun(task, cfg.replace(sampler="rmsprop_sgld"))
    list(a), list(b)
    assert not torch.allclose(a.chain_weights, b.chain_weights, atol=1e-4)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_mala_acceptance_near_one_for_a_tiny_step_on_a_quadratic(sampler):
    """Full batch on a loss quadratic in w: the Langevin proposal is nearly exact as ε → 0."""
    task = line_task(n=16)
    cfg = SGLDConfig(sampler=sampler, epsilon=1e-6, gamma=1.0, nbeta=20.0, chains=2, draws=200,
                     burnin=0, batch_size=16, diag_every=1)
    res = SGLDRun(task, cfg).run()
    assert min(res.diagnostics["mala_acceptance"]) > 0.99
    assert all(v > 0 for v in res.diagnostics["drift_norm"] + res.diagnostics["noise_norm"])


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_mala_acceptance_drops_for_a_huge_step(sampler):
    """The acceptance is a real measurement: a step far past the curvature scale is rejected."""
    task = line_task(n=16)
    eps = 0.5 if sampler == "sgld" else 5.0  # rmsprop's P ≈ 1/(√V+δ) rescales the step
    cfg = SGLDConfig(sampler=sampler, epsilon=eps, gamma=1.0, nbeta=20.0, chains=2, draws=3,
                     burnin=0, batch_size=16, diag_every=1)
    res = SGLDRun(task, cfg).run()
    mala = np.array(res.diagnostics["mala_acceptance"], dtype=float)
    assert np.nanmax(mala) < 0.5


@pytest.mark.parametrize("field, value", [
    ("sampler", "hmc"), ("sampler", "SGLD"), ("rmsprop_alpha", 1.0), ("rmsprop_alpha", -0.1),
    ("rmsprop_eps", 0.0), ("rmsprop_eps", math.nan),
])
def test_sampler_settings_are_validated(field, value):
    with pytest.raises(ConfigError, match=field):
        SGLDConfig(**{field: value}).validate()
    with pytest.raises(ConfigError, match=field):
        SGLDRun(line_task(), SGLDConfig(batch_size=4, **{field: value}))
