"""No-ground-truth checks (llc_core/checks.py) and the Estimate page's 'Check this estimate'."""

import time

import torch
from torch import nn

from llc_core import estimate_llc
from llc_core.checks import agreement, rescaled, run_checks, same_function, weighted_layers
from llc_core.toys import parse_toy
from tests.test_app import configure


def relu_mlp(norm=False):
    torch.manual_seed(0)
    mid = [nn.BatchNorm1d(8)] if norm else []
    return nn.Sequential(nn.Linear(3, 8), *mid, nn.ReLU(), nn.Linear(8, 2))


def test_rescaling_a_relu_layer_pair_keeps_the_function_and_moves_the_weights():
    model, x = relu_mlp(), torch.randn(64, 3)
    for alpha in (4.0, 0.25):
        other = rescaled(model, 0, alpha)
        assert torch.allclose(weighted_layers(other)[0].weight, alpha * weighted_layers(model)[0].weight)
        assert torch.allclose(weighted_layers(other)[0].bias, alpha * weighted_layers(model)[0].bias)
        assert torch.allclose(weighted_layers(other)[1].weight, weighted_layers(model)[1].weight / alpha)
        assert same_function(model, other, x) < 1e-5


def test_rescaling_across_batchnorm_is_caught_as_a_different_function():
    model = relu_mlp(norm=True)
    model[1].running_mean.fill_(0.3)  # eval-mode BatchNorm subtracts a constant: not homogeneous
    assert same_function(model, rescaled(model, 0, 4.0), torch.randn(64, 3)) > 1e-2


def test_agreement_fails_when_the_estimates_differ_and_passes_for_the_same_run():
    task = parse_toy("crossing:1", n=2000)
    cfg = task.defaults.replace(chains=4, draws=400, burnin=100)
    base = estimate_llc(task, cfg)
    hot = estimate_llc(task, cfg.replace(noise_scale=2.0))  # samples at 4× the temperature
    assert agreement("x", base, base, "same").verdict == "pass"
    bad = agreement("x", base, hot, "hot")
    assert bad.verdict == "fail" and bad.numbers["lambda_hat_other"] > 2 * bad.numbers["lambda_hat"]


def test_run_checks_on_a_small_dln_gives_a_verdict_per_check():
    task = parse_toy("dln:3,2,3:r1", n=5000)
    cfg = task.defaults.replace(chains=4, draws=300, burnin=200, thin=1)
    seen = []
    results = run_checks(task, cfg, on_progress=lambda done, total, label: seen.append((done, total)))
    assert [r.name for r in results] == ["rescaling α=4", "rescaling α=0.25", "step size ε×0.5",
                                         "step size ε×2", "twice as long"]
    assert seen[0] == (0, 6) and seen[-1] == (6, 6)
    for r in results:
        assert r.verdict in ("pass", "fail", "inconclusive") and r.reason
    for r in results[:2]:
        assert r.numbers["output_difference"] < 1e-4
        assert r.numbers["lambda_hat"] > 0 and r.numbers["lambda_hat_other"] > 0


def test_check_this_estimate_button_shows_a_verdict_per_check(app):
    configure(app, "toy:dln:4,3,4:r1", chains=2, draws=100, burnin=50)
    app.button(key="run_checks").click().run()
    deadline = time.time() + 300
    while time.time() < deadline:
        time.sleep(1.0)
        app.run()
        verdicts = [m.value for m in app.markdown if "[**pass**]" in m.value or "[**fail**]" in m.value
                    or "[**inconclusive**]" in m.value]
        if len(verdicts) == 5:
            break
    assert len(verdicts) == 5, [m.value for m in app.markdown]
    assert any(v.startswith("**twice as long**") for v in verdicts)
    assert not app.exception
