"""Sampler throughput: llc_core vs devinterp 1.3.2, loop vs vmap, and chain scaling.

Steps are SGLD steps summed over chains, divided by the wall time of the whole estimate call
(setup, L_n(w*) and sampling included) for both libraries. Peer and ours alternate within one
run; medians are reported. The peer lives in bench/.devinterp-venv, made by
bench/setup_devinterp.sh on first use; it is never a runtime dependency.

    .venv/bin/python -m bench.throughput
"""

import json
import math
import pathlib
import statistics
import subprocess
import time

import torch
from torch import nn

ROOT = pathlib.Path(__file__).resolve().parent.parent
from llc_core import LLCTask, SGLDConfig, estimate_llc

ROUNDS = 3
PEER_PY = ROOT / "bench/.devinterp-venv/bin/python"


def tiny_task():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))
    x, y = torch.randn(1024, 4), torch.randn(1024, 1)
    return LLCTask(model=model, x=x, y=y, loss_fn=nn.functional.mse_loss, name="MLP 4-16-16-1")


def mlp_task(widths, n, classes):
    torch.manual_seed(0)
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    x, y = torch.randn(n, widths[0]), torch.randint(0, classes, (n,))
    name = "MLP " + "-".join(map(str, widths))
    return LLCTask(model=model, x=x, y=y, loss_fn=nn.functional.cross_entropy, name=name)


def ours(task, **kw) -> float:
    base = dict(epsilon=1e-4, gamma=100.0, chains=4, draws=1000, burnin=500, batch_size=64)
    cfg = SGLDConfig(**{**base, **kw})
    start = time.perf_counter()
    estimate_llc(task, cfg)
    return cfg.chains * cfg.total_steps / (time.perf_counter() - start)


def peer() -> float | None:
    if not PEER_PY.exists():
        setup = subprocess.run(["bash", str(ROOT / "bench/setup_devinterp.sh")], capture_output=True, text=True)
        if setup.returncode:
            print(f"(devinterp setup failed: {setup.stderr.strip()[-300:]})")
            return None
    out = subprocess.run([str(PEER_PY), str(ROOT / "bench/_devinterp_peer.py"), "4", "1000", "500"],
                         capture_output=True, text=True, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["steps"] / data["seconds"]


def versus_peer():
    task = tiny_task()
    peer_rates, loop_rates, vmap_rates = [], [], []
    for _ in range(ROUNDS):
        rate = peer()
        if rate is not None:
            peer_rates.append(rate)
        loop_rates.append(ours(task, vectorize="off"))
        vmap_rates.append(ours(task, vectorize="on"))
    print("\n### vs devinterp 1.3.2 (MLP 4-16-16-1, n=1024, batch 64, ε=1e-4, γ=100, nβ=n/log n, "
          "4 chains × (1000 draws + 500 burn-in))\n")
    print("| sampler | chain-steps/s | × devinterp |")
    print("|---|---|---|")
    base = statistics.median(peer_rates) if peer_rates else math.nan
    print(f"| devinterp 1.3.2 | {base:,.0f} | 1.00 |")
    for name, rates in (("llc_core, loop", loop_rates), ("llc_core, vmap", vmap_rates)):
        rate = statistics.median(rates)
        print(f"| {name} | {rate:,.0f} | **{rate / base:.2f}** |")


def loop_vs_vmap():
    print("\n### Loop vs vmap over chains (batch 64, 200 draws + 50 burn-in)\n")
    print("Per-chain throughput vs 1 chain: (chain-steps/s with C chains ÷ C) ÷ (1-chain steps/s).\n")
    print("| model | params | chains | loop chain-steps/s | vmap chain-steps/s | vmap/loop | "
          "per-chain throughput vs 1 chain (faster path) |")
    print("|---|---|---|---|---|---|---|")
    for task in (tiny_task(), mlp_task([40, 100, 100, 10], 4000, 10), mlp_task([784, 128, 128, 10], 4096, 10)):
        params = task.num_params
        single = ours(task, chains=1, draws=200, burnin=50, vectorize="off")
        for chains in (4, 8):
            loop = statistics.median(ours(task, chains=chains, draws=200, burnin=50, vectorize="off") for _ in range(2))
            vec = statistics.median(ours(task, chains=chains, draws=200, burnin=50, vectorize="on") for _ in range(2))
            scaling = f"{max(loop, vec) / chains / single:.2f}"
            print(f"| {task.name} | {params:,} | {chains} | {loop:,.0f} | {vec:,.0f} | {vec / loop:.2f} | {scaling} |")


def main():
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; medians over {ROUNDS} alternating rounds")
    versus_peer()
    loop_vs_vmap()


if __name__ == "__main__":
    main()
