"""GPU throughput (issue 14): devinterp 1.3.2 vs llc_core's loop and vmap paths, the SGLD step
against the bare batched gradient, and the MNIST-1D CNN default estimate.

    python -m bench.gpu [--quick] [--no-peer]

Chain-steps/s are SGLD steps summed over chains per second. Ours: `LLCResult.steps_per_second`
(sampling only; setup, L_n(w*) and graph capture excluded, as the issue's table measured).
devinterp: chains × (draws + burn-in) / wall time of estimate_learning_coeff_with_summary.
Needs a CUDA GPU; devinterp 1.3.2 only for the peer column.
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import time

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from llc_core import LLCTask, SGLDConfig, estimate_llc

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGETS = {"MLP 4-16-16-1": 200_000, "MLP 784-128-128-10": 60_000}
PEER_TARGET = 20.0  # ours at 64 chains ÷ devinterp at 4 chains
RATIO_TARGET = 1.3  # SGLD step ÷ bare batched forward+backward, 64 chains, 118k MLP
CNN_TARGET_S = 2.0


def mlp(widths):
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def tasks():
    torch.manual_seed(0)
    tiny = LLCTask(model=mlp([4, 16, 16, 1]), x=torch.randn(1024, 4), y=torch.randn(1024, 1),
                   loss_fn=nn.functional.mse_loss, name="MLP 4-16-16-1")
    big = LLCTask(model=mlp([784, 128, 128, 10]), x=torch.randn(8192, 784), y=torch.randint(0, 10, (8192,)),
                  loss_fn=nn.functional.cross_entropy, name="MLP 784-128-128-10")
    return [(tiny, 64), (big, 512)]


def ours(task, batch, chains, vectorize, draws, graph=True, diag_every=20) -> float:
    os.environ["LLC_CUDA_GRAPH"] = "1" if graph else "0"
    cfg = SGLDConfig(epsilon=1e-6, gamma=100.0, chains=chains, draws=draws, burnin=draws // 5,
                     batch_size=batch, device="cuda", vectorize=vectorize, diag_every=diag_every)
    res = estimate_llc(task, cfg)
    return res.steps_per_second, res.path


def peer(task, batch, chains, draws) -> float | None:
    try:
        from devinterp.slt.sampler import estimate_learning_coeff_with_summary
    except ImportError:
        return None
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(task.x, task.y), batch_size=batch, shuffle=True)

    def evaluate(model, data):
        xb, yb = data
        return task.loss_fn(model(xb), yb), {}

    burnin = draws // 5
    start = time.perf_counter()
    estimate_learning_coeff_with_summary(
        task.model, loader, evaluate=evaluate, num_chains=chains, num_draws=draws, num_burnin_steps=burnin,
        optimizer_kwargs=dict(lr=1e-6, localization=100.0, nbeta=task.n / math.log(task.n)),
        verbose=False, device="cuda", seed=0)
    return chains * (draws + burnin) / (time.perf_counter() - start)


def bare_seconds(task, batch, chains, graph: bool) -> float:
    """The bare batched forward+backward: one vmapped grad_and_value over (C, d) weights on fixed
    batches, replayed from a CUDA graph (or eager); median seconds per call by CUDA events."""
    model = task.model.cuda()
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]
    W = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).repeat(chains, 1)
    idx = torch.randint(0, task.n, (chains, batch), device="cuda")
    xb, yb = task.x.cuda()[idx], task.y.cuda()[idx]

    def loss_at(w, x, y):
        params = {n: t.view(s) for n, t, s in zip(names, torch.split(w, sizes), shapes)}
        return task.loss_fn(functional_call(model, params, (x,)), y)

    fn = vmap(grad_and_value(loss_at))
    call = lambda: fn(W, xb, yb)  # noqa: E731
    for _ in range(3):
        call()
    if graph:
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            call()
        call = g.replay
    times = []
    for _ in range(5):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(100):
            call()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 100 / 1000)
    return sorted(times)[2]


def cnn_seconds() -> tuple[float, str, float]:
    from llc_core.checkpoints import load_task

    task = load_task(ROOT / "cached_models/mnist1d_cnn_k10_s0.safetensors")
    os.environ["LLC_CUDA_GRAPH"] = "1"
    estimate_llc(task, task.defaults.replace(device="cuda", draws=50, burnin=0))  # warm-up
    res = estimate_llc(task, task.defaults.replace(device="cuda"))
    return res.wall_seconds, res.path, res.lambda_hat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="shorter runs")
    ap.add_argument("--no-peer", action="store_true")
    args = ap.parse_args()
    draws = 400 if args.quick else 1500
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}\n")
    print("| task | devinterp 1.3.2, 4 | loop, 4 | vmap, 4 | vmap, 16 | vmap, 64 | target @64 | ×peer (≥20) |")
    print("|---|---|---|---|---|---|---|---|")
    ratios = []
    for task, batch in tasks():
        p = None if args.no_peer else peer(task, batch, 4, max(100, draws // 5))
        loop, _ = ours(task, batch, 4, "off", draws // 3)
        vm = {c: ours(task, batch, c, "on", draws)[0] for c in (4, 16, 64)}
        vs_peer = f"{vm[64] / p:.1f}×" if p else "n/a"
        print(f"| {task.name}, batch {batch} | {p and f'{p:,.0f}' or 'n/a'} | {loop:,.0f} | {vm[4]:,.0f} | "
              f"{vm[16]:,.0f} | **{vm[64]:,.0f}** | {TARGETS[task.name]:,} | {vs_peer} |")
        eager64, _ = ours(task, batch, 64, "on", draws, graph=False)
        nodiag64, _ = ours(task, batch, 64, "on", draws, diag_every=0)
        bare = min(bare_seconds(task, batch, 64, True), bare_seconds(task, batch, 64, False))
        ratios.append((task.name, 64 / vm[64], 64 / nodiag64, 64 / eager64, bare))
    print("\n| task, 64 chains | SGLD step (graph, diag every 20) | no diagnostics | eager step | bare fwd+bwd | step ÷ bare (≤1.3) | no-diag ÷ bare |")
    print("|---|---|---|---|---|---|---|")
    for name, step, nodiag, eager, bare in ratios:
        print(f"| {name} | {step * 1e6:,.0f} µs | {nodiag * 1e6:,.0f} µs | {eager * 1e6:,.0f} µs | {bare * 1e6:,.0f} µs "
              f"| **{step / bare:.2f}** | {nodiag / bare:.2f} |")
    seconds, path, lam = cnn_seconds()
    print(f"\nMNIST-1D CNN (K=10, seed 0) default estimate on the GPU: {seconds:.2f} s of sampling "
          f"({path}; λ̂ = {lam:.4g}); target ≤ {CNN_TARGET_S} s")


if __name__ == "__main__":
    main()
