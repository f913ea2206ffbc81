"""The three gradient paths (llc_core.gradients) give every chain its own loss and gradient."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from llc_core import SGLDConfig, estimate_llc
from llc_core.config import ConfigError
from llc_core.gradients import BatchedGrad, Flat, LoopGrad, VmapGrad, choose_grad
from llc_core.models import build_model
from llc_core.toys import half_mse, parse_toy


def spread_weights(model, chains, scale=0.3, seed=0):
    """(C, d): w* plus a different offset per chain, so that a mix-up between chains shows."""
    flat = Flat(model)
    g = torch.Generator().manual_seed(seed)
    return flat, flat.flatten(model).repeat(chains, 1) + scale * torch.randn(chains, flat.dim, generator=g)


def all_paths(model, flat, W, loss_fn):
    return {"loop": LoopGrad(model, flat, W.clone(), loss_fn), "vmap": VmapGrad(model, flat, loss_fn),
            "batched": BatchedGrad(model, flat, loss_fn)}


def mnist1d_like_mlp():
    torch.manual_seed(1)
    return build_model({"kind": "mlp", "input_shape": [1, 12], "hidden": [7, 5], "outputs": 4})


CASES = {
    "MLP with biases, ReLU, Flatten; cross-entropy": (
        mnist1d_like_mlp, lambda: torch.randn(5, 9, 1, 12), lambda: torch.randint(0, 4, (5, 9)),
        nn.functional.cross_entropy),
    "DLN toy; half MSE": (
        lambda: parse_toy("dln:3,4,2:r1").model, lambda: torch.randn(5, 9, 3), lambda: torch.randn(5, 9, 2),
        half_mse),
    "normal crossing (its chain_forward)": (
        lambda: parse_toy("crossing:1,2").model, lambda: torch.randn(5, 9, 1), lambda: torch.randn(5, 9, 1),
        half_mse),
    "a loss with no per-chain form (vmapped)": (
        mnist1d_like_mlp, lambda: torch.randn(5, 9, 1, 12), lambda: torch.randn(5, 9, 4),
        lambda out, y: (out - y).abs().mean()),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_path_gives_each_chain_its_own_loss_and_gradient(case):
    make_model, make_x, make_y, loss_fn = CASES[case]
    model = make_model()
    flat, W = spread_weights(model, chains=5)
    xb, yb = make_x(), make_y()
    results = {name: grad(W, xb, yb, np.ones(5, bool)) for name, grad in all_paths(model, flat, W, loss_fn).items()}
    # Chain 3 by hand: its own weights in a plain model, its own batch, ordinary autograd.
    one = copy.deepcopy(model)
    torch.nn.utils.vector_to_parameters(W[3].clone(), one.parameters())
    one.zero_grad()
    loss = loss_fn(one(xb[3]), yb[3])
    loss.backward()
    loss = loss.detach()
    by_hand = torch.cat([p.grad.reshape(-1) for p in one.parameters()])
    for name, (losses, grads) in results.items():
        assert losses.shape == (5,) and grads.shape == W.shape, name
        assert float(losses[3]) == pytest.approx(float(loss), rel=1e-5), name
        assert torch.allclose(grads[3], by_hand, rtol=1e-4, atol=1e-6), name
        assert torch.allclose(grads, results["loop"][1], rtol=1e-4, atol=1e-6), name


def test_a_diverged_chain_leaves_the_others_gradients_finite():
    model = parse_toy("dln:3,4,2:r1").model
    flat, W = spread_weights(model, chains=4)
    W[1] = float("nan")
    losses, grads = BatchedGrad(model, flat, half_mse)(W, torch.randn(4, 9, 3), torch.randn(4, 9, 2), np.ones(4, bool))
    assert torch.isnan(losses[1]) and torch.isnan(grads[1]).all()
    assert torch.isfinite(losses[[0, 2, 3]]).all() and torch.isfinite(grads[[0, 2, 3]]).all()


def conv_task_model():
    torch.manual_seed(2)
    return build_model({"kind": "cnn1d", "input_shape": [1, 12], "channels": [3], "kernels": [3], "strides": [2],
                        "outputs": 4})


def test_auto_falls_back_for_layers_without_a_batched_form_and_batched_says_which():
    model = conv_task_model()
    flat, W = spread_weights(model, chains=8)
    x, y = torch.randn(20, 1, 12), torch.randint(0, 4, (20,))
    assert choose_grad(model, flat, W, x, y, nn.functional.cross_entropy, "auto").name == "vmap"
    assert choose_grad(model, flat, W[:2], x, y, nn.functional.cross_entropy, "auto").name == "loop"
    with pytest.raises(ConfigError, match=r"vectorize='batched'.*layer 0 \(Conv1d\)"):
        choose_grad(model, flat, W, x, y, nn.functional.cross_entropy, "batched")


def test_auto_takes_the_batched_path_on_the_cpu_and_the_config_names_the_choices():
    task = parse_toy("dln:3,2,3:r1", n=500)
    cfg = SGLDConfig(epsilon=1e-5, chains=2, draws=5, burnin=0, batch_size=50)
    assert estimate_llc(task, cfg).path == "batched"
    with pytest.raises(ConfigError, match="vectorize='fast' is invalid: use one of auto, batched, on, off"):
        cfg.replace(vectorize="fast").validate(task.n)
