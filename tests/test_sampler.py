"""The SGLD update, λ̂ bookkeeping, seeds, cancellation and bounded memory."""

import math
import threading

from arviz_stats.base import array_stats
import numpy as np
import pytest
import torch
from torch import nn

from llc_core import LLCTask, SGLDConfig, SGLDRun, estimate_llc
from llc_core.task import full_loss
from llc_core.sampler import chain_seeds
from llc_core.toys import half_mse, parse_toy
from llc_core.trace import ThinnedTrace


def line_task(n=8, seed=0):
    """y ≈ a·x + b (2 parameters, a = 0.7, b = −0.2 at w*) on data it does not fit exactly;
    L is quadratic in (a, b). A Sequential, so that every gradient path (loop, vmap, batched) runs it."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # leave the global RNG as it was for the tests that follow
        model = nn.Sequential(nn.Linear(1, 1))
    with torch.no_grad():
        model[0].weight.fill_(0.7)
        model[0].bias.fill_(-0.2)
    x = torch.randn(n, 1, generator=g)
    y = 2 * x + 0.5 + 0.3 * torch.randn(n, 1, generator=g)
    return LLCTask(model=model, x=x, y=y, loss_fn=half_mse, name="line")


@pytest.mark.parametrize("vectorize", ["off", "on", "batched"])
def test_one_step_matches_the_update_rule_by_hand(vectorize):
    task = line_task()
    eps, gamma, nbeta, sigma = 1e-2, 3.0, 5.0, 0.8
    cfg = SGLDConfig(epsilon=eps, gamma=gamma, nbeta=nbeta, noise_scale=sigma, chains=1, draws=1,
                     burnin=0, batch_size=4, seed=123, vectorize=vectorize)
    run = SGLDRun(task, cfg)
    list(run)

    gen = torch.Generator().manual_seed(chain_seeds(123, 1)[0])
    batch = torch.randperm(task.n, generator=gen)[:4]
    noise = torch.empty(2).normal_(generator=gen)
    a, b = 0.7, -0.2
    x, y = task.x[batch, 0].double(), task.y[batch, 0].double()
    resid = a * x + b - y  # L_m = ½·mean(resid²)
    grad = torch.stack([(resid * x).mean(), resid.mean()])
    w0 = torch.tensor([a, b], dtype=torch.float64)
    expected = w0 + eps / 2 * (-nbeta * grad - gamma * (w0 - w0)) + sigma * math.sqrt(eps) * noise.double()
    assert torch.allclose(run.chain_weights[0].double(), expected, atol=1e-6)
    assert run.result.lambda_hat == pytest.approx(nbeta * (0.5 * float((resid**2).mean()) - run.result.init_loss), rel=1e-5)


def test_localization_pulls_back_to_w_star():
    """With a zero loss gradient and no noise, one step shrinks w − w* by (1 − εγ/2)."""
    task = line_task()
    cfg = SGLDConfig(epsilon=0.1, gamma=4.0, nbeta=1e-9, noise_scale=0.0, chains=1, draws=3,
                     burnin=0, batch_size=8, vectorize="off")
    run = SGLDRun(task, cfg)
    list(run)
    # nβ ≈ 0 and σ = 0: w stays at w* exactly, since the pull is towards w* itself.
    assert torch.allclose(run.chain_weights[0], torch.tensor([0.7, -0.2]), atol=1e-6)


def test_lambda_bookkeeping_from_the_full_trace():
    task = parse_toy("crossing:1", n=2000)
    cfg = SGLDConfig(epsilon=1e-4, gamma=1.0, chains=3, draws=50, burnin=30, thin=3, batch_size=100,
                     max_trace_points=1000, seed=5)
    res = estimate_llc(task, cfg)
    steps, loss = res.traces["steps"], res.traces["loss"]
    assert len(steps) == cfg.total_steps == 30 + 150  # nothing thinned away
    draw_steps = (steps > cfg.burnin) & ((steps - cfg.burnin) % cfg.thin == 0)
    assert draw_steps.sum() == 50
    per_chain = res.nbeta * (loss[:, draw_steps].mean(axis=1) - res.init_loss)
    assert np.allclose(res.lambda_hat_per_chain, per_chain, rtol=1e-9)
    assert res.lambda_hat == pytest.approx(per_chain.mean())
    assert res.lambda_hat_std == pytest.approx(per_chain.std(ddof=1))
    # the standard error is the ESS-based MCSE of the post-burn-in loss trace, not std/√chains
    post = loss[:, steps > cfg.burnin]
    assert res.lambda_hat_se == pytest.approx(res.nbeta * float(array_stats.mcse(post, method="mean")))
    assert res.init_loss == full_loss(task.model, task.x, task.y, task.loss_fn)
    assert res.nbeta == pytest.approx(2000 / math.log(2000))
    assert res.completed and res.steps_done == cfg.total_steps


def test_same_seed_same_numbers_and_chains_are_independent():
    task = parse_toy("crossing:1", n=2000)
    cfg = SGLDConfig(epsilon=1e-4, gamma=1.0, chains=4, draws=60, burnin=10, batch_size=50, seed=11)
    a, b = estimate_llc(task, cfg), estimate_llc(task, cfg)
    assert a.lambda_hat_per_chain == b.lambda_hat_per_chain
    assert np.array_equal(a.traces["loss"], b.traces["loss"])
    assert len(set(a.lambda_hat_per_chain)) == 4  # no two chains share a stream
    c = estimate_llc(task, cfg.replace(seed=12))
    assert c.lambda_hat_per_chain != a.lambda_hat_per_chain


def test_chain_seeds_do_not_overlap_and_do_not_depend_on_chain_count():
    seeds = chain_seeds(0, 64)
    assert len(set(seeds)) == 64
    assert chain_seeds(0, 3) == seeds[:3]
    assert not set(chain_seeds(1, 64)) & set(seeds)
    task = parse_toy("crossing:1", n=2000)
    cfg = SGLDConfig(epsilon=1e-4, gamma=1.0, draws=40, burnin=0, batch_size=50, vectorize="off")
    two = estimate_llc(task, cfg.replace(chains=2))
    four = estimate_llc(task, cfg.replace(chains=4))
    assert two.lambda_hat_per_chain == four.lambda_hat_per_chain[:2]


@pytest.mark.parametrize("spec", ["dln:3,2,3:r1", "crossing:1,2"])
def test_vmap_batched_and_loop_paths_agree(spec):
    task = parse_toy(spec, n=5000)
    cfg = SGLDConfig(epsilon=2e-5, gamma=1.0, chains=3, draws=100, burnin=20, batch_size=200, seed=3)
    loop = estimate_llc(task, cfg.replace(vectorize="off"))
    vec = estimate_llc(task, cfg.replace(vectorize="on"))
    batched = estimate_llc(task, cfg.replace(vectorize="batched"))
    assert (loop.path, vec.path, batched.path) == ("loop", "vmap", "batched")
    assert np.allclose(loop.lambda_hat_per_chain, vec.lambda_hat_per_chain, rtol=1e-3)
    assert np.allclose(loop.lambda_hat_per_chain, batched.lambda_hat_per_chain, rtol=1e-3)


def test_cancel_stops_within_a_step_and_keeps_partial_results():
    task = parse_toy("crossing:1", n=2000)
    cfg = SGLDConfig(epsilon=1e-4, gamma=1.0, chains=2, draws=10_000, burnin=10, batch_size=50,
                     report_every=20)
    stop = threading.Event()

    def on_progress(p):
        if p.step >= 60:
            stop.set()

    res = estimate_llc(task, cfg, cancel=stop, on_progress=on_progress)
    assert not res.completed
    assert res.steps_done == 60
    assert res.diagnostics["draws_per_chain"] == [50, 50]
    assert math.isfinite(res.lambda_hat)


def test_progress_records_stream_every_k_steps():
    task = parse_toy("crossing:1", n=2000)
    cfg = SGLDConfig(epsilon=1e-4, gamma=1.0, chains=2, draws=95, burnin=5, batch_size=50, report_every=25)
    records = list(SGLDRun(task, cfg))
    assert [r.step for r in records] == [1, 25, 50, 75, 100]  # the first at once, for live pages
    assert [r.window_losses.shape for r in records] == [(2, 1), (2, 24), (2, 25), (2, 25), (2, 25)]
    assert records[0].phase == "burnin" and records[1].phase == "sampling" and records[-1].total_steps == 100
    assert np.isfinite(records[-1].lambda_chain).all()


def test_long_run_keeps_the_trace_at_its_cap():
    task = parse_toy("crossing:1", n=2000)
    cfg = SGLDConfig(epsilon=1e-4, gamma=1.0, chains=2, draws=5000, burnin=0, batch_size=50,
                     max_trace_points=100)
    res = estimate_llc(task, cfg)
    steps = res.traces["steps"]
    assert 50 <= len(steps) <= 100 and res.traces["loss"].shape == (2, len(steps))
    gaps = np.diff(steps)
    assert (gaps == gaps[0]).all() and steps[-1] > 4800  # evenly spaced, covering the whole run


def test_thinned_trace_halves_and_stays_uniform():
    tr = ThinnedTrace(rows=1, max_points=10)
    for step in range(1, 1001):
        tr.add(step, [step * 2.0])
    assert tr.size <= 10
    assert np.array_equal(tr.values[0], tr.steps * 2.0)
    assert len(set(np.diff(tr.steps))) == 1


def test_any_module_and_loss_works():
    """A small classifier with cross-entropy: not one of our own models."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 5, generator=g)
    y = (x[:, 0] > 0).long()
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    before = [p.detach().clone() for p in model.parameters()]
    task = LLCTask(model=model, x=x, y=y, loss_fn=nn.functional.cross_entropy)
    res = estimate_llc(task, SGLDConfig(epsilon=1e-4, gamma=100.0, chains=2, draws=200, batch_size=64))
    assert math.isfinite(res.lambda_hat) and res.lambda_hat > 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # w* untouched


def test_view_is_a_picklable_snapshot_of_the_run_traces():
    """view() between iterations: numpy only, the same traces the result keeps, loss relative to
    L_n(w*), diagnostics by DIAG_ROWS, and the step each diverged chain blew up at."""
    import pickle

    from llc_core.trace import DIAG_ROWS

    task = parse_toy("crossing:1", n=2000)
    cfg = SGLDConfig(epsilon=1e-4, gamma=1.0, chains=3, draws=80, burnin=20, batch_size=50,
                     report_every=20, diag_every=10, seed=4)
    run = SGLDRun(task, cfg)
    assert run.view().steps.size == 0  # before the first step: empty, not an error
    views = [pickle.loads(pickle.dumps(run.view())) for _ in run]
    last, res = views[-1], run.result
    assert [v.step for v in views] == [1, 20, 40, 60, 80, 100]
    assert (last.chains, last.burnin, last.total_steps, last.sampler, last.path) == (3, 20, 100, "sgld", "batched")
    assert last.device == res.device == "cpu"
    assert np.array_equal(last.steps, res.traces["steps"])
    assert np.array_equal(last.loss, res.traces["loss"] - res.init_loss)
    assert np.array_equal(last.lam, res.traces["lambda"], equal_nan=True)
    assert np.allclose(last.lam[:, -1], res.lambda_hat_per_chain)
    assert last.pooled[-1] == pytest.approx(res.lambda_hat)
    assert set(last.diag) == set(DIAG_ROWS) and list(last.diag_steps) == list(range(10, 101, 10))
    assert np.array_equal(last.diag["mala"], res.traces["mala"], equal_nan=True)
    assert last.progress.step == 100 and last.diverged_steps == {}

    blown = SGLDRun(task, cfg.replace(epsilon=0.5, draws=40))
    for _ in blown:
        pass
    view = blown.view()
    assert set(view.diverged_steps) == {0, 1, 2}
    for chain, step in view.diverged_steps.items():
        assert np.isnan(view.loss[chain, view.steps >= step]).all()
