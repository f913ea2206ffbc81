"""Every failure signature of DESIGN.md §2, provoked deliberately."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from llc_core import LLCTask, SGLDConfig, estimate_llc
from llc_core import diagnostics as dg
from llc_core.toys import dln_task, half_mse, parse_toy


def codes(result):
    return [f.code for f in result.warnings]


def run(task, **kw):
    return estimate_llc(task, task.defaults.replace(**kw))


@pytest.fixture(scope="module")
def crossing1():
    return parse_toy("crossing:1", n=2000)


def test_every_flag_has_message_and_fix(crossing1):
    res = run(crossing1, noise_scale=2.0, chains=2, draws=50, burnin=0, thin=1)
    assert res.warnings
    for flag in res.warnings:
        assert flag.code and len(flag.message) > 20 and len(flag.fix) > 10


def test_huge_epsilon_diverges_every_chain(crossing1):
    res = run(crossing1, epsilon=1.0, chains=4, draws=200)
    assert res.status == "diverged" and "diverged" in codes(res)
    assert res.chains_used == 0 and math.isnan(res.lambda_hat)
    assert res.steps_done < res.config.total_steps  # chains stop once they blow up


def test_one_chain_blowing_up_leaves_the_others_pooled():
    """A poison example (x = 1e30) makes the loss overflow for any chain whose minibatch
    contains it once w has left w* = 0; chains that never draw it finish normally."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 1, generator=g)
    x[17] = 1e30
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    task = LLCTask(model, x, torch.zeros(1000, 1), half_mse)
    res = estimate_llc(task, SGLDConfig(epsilon=1e-4, gamma=1.0, chains=8, draws=250, burnin=50,
                                        batch_size=1, seed=0))
    dead = sum(math.isnan(v) for v in res.lambda_hat_per_chain)
    assert 0 < dead < 8
    assert res.chains_used == 8 - dead and res.status == "diverged"
    alive = [v for v in res.lambda_hat_per_chain if not math.isnan(v)]
    assert res.lambda_hat == pytest.approx(np.mean(alive))
    assert f"{dead} of 8 chains" in res.warnings[0].message
    assert res.completed  # the surviving chains ran to the end


def test_untrained_w_star_goes_negative():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 1, generator=g)
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)  # the best weight is 1: w* = 0 is far from a minimum
    res = estimate_llc(LLCTask(model, x, x.clone(), half_mse),
                       SGLDConfig(epsilon=1e-4, gamma=1.0, chains=4, draws=300, batch_size=100))
    assert res.status == "negative" and res.lambda_hat < 0 and "negative" in codes(res)


def test_w_star_just_off_the_minimum_puts_most_draws_below_init():
    """Quadratic loss ½(w−1)², w* = 0.9, γ pulling back hard: the samples sit between w* and
    the minimum, mostly below L(w*), while their mean loss is still slightly above it."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 1, generator=g)
    x = x / x.pow(2).mean().sqrt()
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.9)
    res = estimate_llc(LLCTask(model, x, x.clone(), half_mse),
                       SGLDConfig(epsilon=2e-4, gamma=201.0, nbeta=35.5, chains=4, draws=2000,
                                  burnin=200, thin=5, batch_size=1000))
    assert res.lambda_hat > 0
    assert "loss_below_init" in codes(res) and res.status == "warning"
    assert min(res.diagnostics["fraction_below_init"]) > 0.5


def test_few_draws_leave_chains_disagreeing(crossing1):
    res = run(crossing1, chains=8, draws=20, burnin=0, thin=1)
    assert "high_chain_variance" in codes(res)


def test_tiny_step_is_not_stationary(crossing1):
    res = run(crossing1, epsilon=1e-7, chains=4, draws=500, burnin=0, thin=1)
    assert "not_stationary" in codes(res)


def test_large_step_has_low_mala_acceptance():
    task = dln_task([5, 5, 5], 0, n=5000)
    res = run(task, epsilon=5e-3, chains=2, draws=300, burnin=100, thin=1)
    assert "low_mala" in codes(res) and max(res.diagnostics["mala_acceptance"]) < dg.LOW_MALA


def test_vanishing_step_has_high_mala_acceptance():
    task = dln_task([10, 10, 10], 0, n=5000)
    res = run(task, epsilon=1e-9, chains=2, draws=200, burnin=0, thin=1)
    assert "high_mala" in codes(res)


def test_noise_scale_other_than_one_is_flagged(crossing1):
    res = run(crossing1, noise_scale=0.5, chains=2, draws=100, burnin=0, thin=1)
    assert "noise_scale" in codes(res) and res.status == "warning"


def test_calibrated_toy_run_is_clean(crossing1):
    res = run(crossing1)
    assert res.status == "ok", codes(res)


# -- the judging logic on crafted states ------------------------------------------------------

def state(block_means, chains=2, lam=None, **kw):
    blocks = np.asarray(block_means, dtype=float)
    base = dict(
        init_loss=0.0, nbeta=100.0, noise_scale=1.0, draws_total=500,
        draws_done=np.full(chains, 500), alive=np.ones(chains, dtype=bool), diverged_at=[],
        lambda_chain=np.full(chains, 1.0) if lam is None else np.asarray(lam, dtype=float),
        block_sums=np.tile(blocks * 10, (chains, 1)), block_counts=np.full((chains, len(blocks)), 10),
        below_init=np.zeros(chains, dtype=int), mala=np.full(chains, 0.9), num_params=1000,
    )
    base.update(kw)
    return dg.RunState(**base)


def flat_blocks(level=1.0, n=50, jitter=0.01):
    return level + jitter * np.sin(np.arange(n) * 1.7)


def test_initial_spike_is_detected_only_when_it_stands_out():
    spiky = flat_blocks()
    spiky[:5] = 3.0
    assert "init_spike" in [f.code for f in dg.assess(state(spiky), final=True)]
    mild = flat_blocks()
    mild[:5] = 1.5  # 1.5× the later level: within SPIKE_RATIO
    assert "init_spike" not in [f.code for f in dg.assess(state(mild), final=True)]


def test_climb_threshold():
    rising = np.concatenate([np.ones(25), np.linspace(1.0, 1.3, 25)])
    assert "not_stationary" in [f.code for f in dg.assess(state(rising), final=True)]
    gentle = np.concatenate([np.ones(25), np.linspace(1.0, 1.05, 25)])
    assert "not_stationary" not in [f.code for f in dg.assess(state(gentle), final=True)]
    # live assessments never judge trends
    assert "not_stationary" not in [f.code for f in dg.assess(state(rising), final=False)]


def test_chain_variance_threshold():
    assert "high_chain_variance" in [f.code for f in dg.assess(state(flat_blocks(), lam=[1.0, 2.0]), True)]
    assert "high_chain_variance" not in [f.code for f in dg.assess(state(flat_blocks(), lam=[1.0, 1.2]), True)]


def test_no_verdict_on_sign_before_enough_draws():
    early = state(flat_blocks(), lam=[-1.0, -1.0], draws_done=np.array([10, 10]))
    assert dg.assess(early, final=False) == []
    late = state(flat_blocks(), lam=[-1.0, -1.0])
    assert dg.status_of(dg.assess(late, final=False)) == "negative"


def test_status_precedence():
    f = lambda code: dg.Flag(code, "m", "f")  # noqa: E731
    assert dg.status_of([]) == "ok"
    assert dg.status_of([f("high_mala")]) == "warning"
    assert dg.status_of([f("high_mala"), f("negative")]) == "negative"
    assert dg.status_of([f("negative"), f("diverged")]) == "diverged"
