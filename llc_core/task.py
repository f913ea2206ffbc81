"""What λ̂ is estimated for: a model at w*, its training data and its loss."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .config import SGLDConfig

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

FULL_LOSS_CHUNK = 4096  # examples per forward pass when computing L_n(w*)


@dataclass
class LLCTask:
    """Any torch module + mean-reduced loss + training tensors (x[i], y[i] is one example).

    `true_lambda` is the known learning coefficient (toys only); `target_lambda` the exact
    finite-n expectation nβ·E_β[K] where it can be computed, to separate sampler error from
    the estimator's own bias. `defaults` are the SGLD settings calibrated for this task (a dict of
    SGLDConfig fields is accepted and converted).
    """

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    loss_fn: LossFn
    name: str = "model"
    true_lambda: float | None = None
    target_lambda: float | None = None
    defaults: SGLDConfig = field(default_factory=SGLDConfig)
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.defaults, dict):
            self.defaults = SGLDConfig.from_dict(self.defaults)
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} examples but y has {len(self.y)}: they must match")
        if len(self.x) < 2:
            raise ValueError(f"the training set has {len(self.x)} examples: need at least 2")

    @property
    def n(self) -> int:
        return len(self.x)

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


@torch.no_grad()
def full_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> float:
    """L_n(w): the mean loss over the whole training set, in eval mode, in fixed chunks.

    Deterministic and exact (chunk means weighted by chunk size), unlike the average of a few
    random minibatches, which biased λ̂ in the peer library.
    """
    was_training = model.training
    model.eval()
    total = 0.0
    for start in range(0, len(x), FULL_LOSS_CHUNK):
        xb, yb = x[start : start + FULL_LOSS_CHUNK], y[start : start + FULL_LOSS_CHUNK]
        total += float(loss_fn(model(xb), yb)) * len(xb)
    model.train(was_training)
    return total / len(x)
