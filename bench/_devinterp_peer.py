"""Runs inside bench/.devinterp-venv: the peer's λ̂ on the tiny MLP, timed. Prints one JSON line."""

import json
import math
import sys
import time
import warnings

import torch
from devinterp.slt.sampler import estimate_learning_coeff_with_summary
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

warnings.filterwarnings("ignore")
chains, draws, burnin = (int(a) for a in sys.argv[1:4])
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))
x, y = torch.randn(1024, 4), torch.randn(1024, 1)
loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)


def evaluate(model, batch):
    xb, yb = batch
    return nn.functional.mse_loss(model(xb), yb), {}


start = time.perf_counter()
out = estimate_learning_coeff_with_summary(
    model, loader, evaluate=evaluate, num_chains=chains, num_draws=draws, num_burnin_steps=burnin,
    optimizer_kwargs=dict(lr=1e-4, localization=100.0, nbeta=1024 / math.log(1024)),
    verbose=False, device="cpu", seed=0,
)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "steps": chains * (draws + burnin), "llc": float(out["llc/mean"])}))
