"""Per-chain loss gradients for all chains at once, on one (C, d) tensor of flat weights.

`LoopGrad` runs one model copy per chain whose parameters are views into that chain's row;
`VmapGrad` makes one vmapped functional call over all rows; `BatchedGrad` runs models built of
plain layers (Linear, elementwise activations, Flatten, or a model's own `chain_forward`) as
batched matrix products with the chain as the leading dimension. `choose_grad` picks.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from .config import ConfigError

# bench/throughput.py on CPU: from 8 chains vmap beats the loop (×1.1–1.6, 369 to 118k
# parameters); at 4 chains the loop is as fast or faster.
VMAP_MIN_CHAINS = 8
# On a GPU vmap wins from the first chain: H100, 4 chains, vmap 1.5× the loop on both the
# 4-16-16-1 and the 784-128-128-10 MLP (issue 14's table); and only vmap can be graph-captured.
VMAP_MIN_CHAINS_GPU = 1


class Flat:
    """Names, shapes and sizes of a module's parameters, to move between flat and named views."""

    def __init__(self, model: torch.nn.Module):
        named = list(model.named_parameters())
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.numels = [p.numel() for _, p in named]
        self.dim = sum(self.numels)

    def flatten(self, model: torch.nn.Module) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def views(self, flat: torch.Tensor) -> dict:
        parts = torch.split(flat, self.numels, dim=-1)
        lead = flat.shape[:-1]
        return {n: t.view(*lead, *s) for n, t, s in zip(self.names, parts, self.shapes)}


class LoopGrad:
    """One model copy per chain; its parameters and their .grad are views into row c of W
    and of a shared gradient buffer, so backward() writes the flat gradient in place."""

    name = "loop"

    def __init__(self, model, flat: Flat, W: torch.Tensor, loss_fn):
        self.loss_fn = loss_fn
        self.grads = torch.zeros_like(W)  # reused every step; callers consume it before the next
        self.models = []
        for row, grad_row in zip(W, self.grads):
            m = copy.deepcopy(model).eval()
            views, grad_views = flat.views(row).values(), flat.views(grad_row).values()
            for p, view, grad_view in zip(m.parameters(), views, grad_views):
                p.data = view
                p.grad = grad_view  # backward accumulates into it in place
            self.models.append(m)

    def __call__(self, W, xb, yb, alive):
        self.grads.zero_()
        losses = []
        for c, model in enumerate(self.models):
            if not alive[c]:
                losses.append(torch.tensor(math.nan, device=W.device))
                continue
            with torch.enable_grad():
                loss = self.loss_fn(model(xb[c]), yb[c])
                loss.backward()
            losses.append(loss.detach())
        return torch.stack(losses), self.grads


class VmapGrad:
    """All chains in one call: vmap over functional_call of a single model copy."""

    name = "vmap"

    def __init__(self, model, flat: Flat, loss_fn):
        model = copy.deepcopy(model).eval()
        buffers = dict(model.named_buffers())

        def loss_at(w, xb, yb):
            out = functional_call(model, {**flat.views(w), **buffers}, (xb,))
            return loss_fn(out, yb)

        self._fn = vmap(grad_and_value(loss_at))

    def __call__(self, W, xb, yb, alive):
        with torch.enable_grad():
            grads, losses = self._fn(W, xb, yb)
        return losses.detach(), grads.detach()


class Unbatchable(ValueError):
    """The model has a layer BatchedGrad cannot run with a chain dimension."""


# Layers that act elementwise, so a leading chain dimension passes through them unchanged.
ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.LeakyReLU, nn.SiLU, nn.Identity)


def chain_forward_of(model: nn.Module):
    """forward(params, x) for all chains at once: params are the flat views of a (C, d) tensor
    ((C, *shape) each) and x is (C, B, ...). A model may define its own `chain_forward`;
    an nn.Sequential of Linear, elementwise and Flatten layers gets one here."""
    if hasattr(model, "chain_forward"):
        return model.chain_forward
    if not isinstance(model, nn.Sequential):
        raise Unbatchable(f"{type(model).__name__} is not an nn.Sequential and has no chain_forward")
    steps = [_chain_layer(name, layer) for name, layer in model.named_children()]

    def forward(params, x):
        for step in steps:
            x = step(params, x)
        return x
    return forward


def _chain_layer(name: str, layer: nn.Module):
    if isinstance(layer, nn.Linear):
        weight, bias = f"{name}.weight", f"{name}.bias" if layer.bias is not None else None

        def linear(params, h):
            if h.dim() != 3:
                raise Unbatchable(f"layer {name} gets a {h.dim() - 1}-d batch; batched Linear takes (B, features)")
            out = torch.bmm(h, params[weight].transpose(1, 2))
            return out if bias is None else out + params[bias].unsqueeze(1)
        return linear
    if isinstance(layer, nn.Flatten) and layer.start_dim == 1 and layer.end_dim == -1:
        return lambda params, h: h.flatten(2)  # dim 0 is the chain, dim 1 the example
    if type(layer) in ELEMENTWISE:
        return lambda params, h: layer(h)
    raise Unbatchable(f"layer {name} ({type(layer).__name__}) has no batched form")


def chain_loss_of(loss_fn):
    """(C, B, ...) outputs and targets -> (C,) losses, each the loss_fn of one chain's batch."""
    if loss_fn is nn.functional.cross_entropy:
        def cross_entropy(out, y):
            C, B = y.shape[:2]
            return nn.functional.cross_entropy(out.flatten(0, 1), y.flatten(0, 1), reduction="none").view(C, B).mean(1)
        return cross_entropy
    return getattr(loss_fn, "per_chain", None) or vmap(loss_fn)


class BatchedGrad:
    """All chains in one plain forward: every weight carries the chain as its leading
    dimension (bmm), and one autograd.grad of the summed per-chain losses gives every row its
    own chain's gradient, since no two chains share a weight. The same maths as VmapGrad
    without vmap's per-op dispatch: on the 4-layer DLN toys 2-3× faster per step on CPU."""

    name = "batched"

    def __init__(self, model, flat: Flat, loss_fn):
        self.forward = chain_forward_of(copy.deepcopy(model).eval())
        self.loss = chain_loss_of(loss_fn)
        self.flat = flat

    def __call__(self, W, xb, yb, alive):
        with torch.enable_grad():
            leaf = W.detach().requires_grad_(True)
            losses = self.loss(self.forward(self.flat.views(leaf), xb), yb)
            (grads,) = torch.autograd.grad(losses.sum(), leaf)
        return losses.detach(), grads


def choose_grad(model, flat: Flat, W: torch.Tensor, x, y, loss_fn, vectorize: str):
    """BatchedGrad when asked for, or under "auto" on the CPU when the model has a batched form;
    else VmapGrad when asked for ("on") or when it pays, else LoopGrad. Models vmap cannot trace
    fall back to the loop unless vectorize="on". On a GPU "auto" keeps vmap: the CUDA-graph
    stepper (llc_core.device_step) is built and measured on it."""
    chains = W.shape[0]
    if vectorize == "batched" or (vectorize == "auto" and W.device.type == "cpu"):
        try:
            return _checked(BatchedGrad(model, flat, loss_fn), W, x, y)
        except Exception as exc:  # layers without a batched form: vmap or the loop below
            if vectorize == "batched":
                raise ConfigError(f"vectorize='batched' failed for this model: {exc}") from exc
    least = VMAP_MIN_CHAINS_GPU if W.device.type == "cuda" else VMAP_MIN_CHAINS
    use_vmap = vectorize == "on" or (vectorize == "auto" and chains >= least)
    if use_vmap:
        try:
            return _checked(VmapGrad(model, flat, loss_fn), W, x, y)
        except Exception as exc:  # models vmap cannot trace fall back to the plain loop
            if vectorize == "on":
                raise ConfigError(f"vectorize='on' failed for this model: {exc}") from exc
    return LoopGrad(model, flat, W, loss_fn)


def _checked(grad, W, x, y):
    """The gradient object, once it has run on a one-example batch per chain."""
    chains = W.shape[0]
    idx = torch.zeros((chains, 1), dtype=torch.long, device=W.device)
    grad(W, x[idx], y[idx], np.ones(chains, dtype=bool))
    return grad
