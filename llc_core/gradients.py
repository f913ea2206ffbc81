"""Per-chain loss gradients for all chains at once, on one (C, d) tensor of flat weights.

`LoopGrad` runs one model copy per chain whose parameters are views into that chain's row;
`VmapGrad` makes one vmapped functional call over all rows. `choose_grad` picks between them.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
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


def choose_grad(model, flat: Flat, W: torch.Tensor, x, y, loss_fn, vectorize: str):
    """VmapGrad when asked for (or, under "auto", when it pays), else LoopGrad; models vmap
    cannot trace fall back to the loop unless vectorize="on"."""
    chains = W.shape[0]
    least = VMAP_MIN_CHAINS_GPU if W.device.type == "cuda" else VMAP_MIN_CHAINS
    use_vmap = vectorize == "on" or (vectorize == "auto" and chains >= least)
    if use_vmap:
        try:
            grad = VmapGrad(model, flat, loss_fn)
            idx = torch.zeros((chains, 1), dtype=torch.long, device=W.device)
            grad(W, x[idx], y[idx], np.ones(chains, dtype=bool))
            return grad
        except Exception as exc:  # models vmap cannot trace fall back to the plain loop
            if vectorize == "on":
                raise ConfigError(f"vectorize='on' failed for this model: {exc}") from exc
    return LoopGrad(model, flat, W, loss_fn)
