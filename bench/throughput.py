"""Sampler throughput: llc_core vs devinterp 1.3.2, the three gradient paths, and chain scaling.

Steps are SGLD steps summed over chains, divided by the wall time of the whole estimate call
(setup, L_n(w*) and sampling included) for both libraries. Peer and ours alternate within one
run; medians are reported. The peer lives in bench/.devinterp-venv, made by
bench/setup_devinterp.sh on first use; it is never a runtime dependency.

    .venv/bin/python -m bench.throughput [--skip-peer]
"""

import argparse
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
from llc_core.toys import parse_toy

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
    peer_rates, loop_rates, vmap_rates, batched_rates = [], [], [], []
    for _ in range(ROUNDS):
        rate = peer()
        if rate is not None:
            peer_rates.append(rate)
        loop_rates.append(ours(task, vectorize="off"))
        vmap_rates.append(ours(task, vectorize="on"))
        batched_rates.append(ours(task, vectorize="batched"))
    print("\n### vs devinterp 1.3.2 (MLP 4-16-16-1, n=1024, batch 64, ε=1e-4, γ=100, nβ=n/log n, "
          "4 chains × (1000 draws + 500 burn-in))\n")
    print("| sampler | chain-steps/s | × devinterp |")
    print("|---|---|---|")
    base = statistics.median(peer_rates) if peer_rates else math.nan
    print(f"| devinterp 1.3.2 | {base:,.0f} | 1.00 |")
    for name, rates in (("llc_core, loop", loop_rates), ("llc_core, vmap", vmap_rates),
                        ("llc_core, batched", batched_rates)):
        rate = statistics.median(rates)
        print(f"| {name} | {rate:,.0f} | **{rate / base:.2f}** |")


def loop_vs_vmap():
    print("\n### Loop, vmap and batched over chains (batch 64, 200 draws + 50 burn-in)\n")
    print("Per-chain throughput vs 1 chain: (chain-steps/s with C chains ÷ C) ÷ (1-chain steps/s).\n")
    print("| model | params | chains | loop chain-steps/s | vmap chain-steps/s | batched chain-steps/s | "
          "batched/best of the others | per-chain throughput vs 1 chain (fastest path) |")
    print("|---|---|---|---|---|---|---|---|")
    for task in (tiny_task(), mlp_task([40, 100, 100, 10], 4000, 10), mlp_task([784, 128, 128, 10], 4096, 10)):
        params = task.num_params
        single = ours(task, chains=1, draws=200, burnin=50, vectorize="off")
        for chains in (4, 8):
            rate = {v: statistics.median(ours(task, chains=chains, draws=200, burnin=50, vectorize=v) for _ in range(2))
                    for v in ("off", "on", "batched")}
            loop, vec, batched = rate["off"], rate["on"], rate["batched"]
            scaling = f"{max(rate.values()) / chains / single:.2f}"
            print(f"| {task.name} | {params:,} | {chains} | {loop:,.0f} | {vec:,.0f} | {batched:,.0f} | "
                  f"{batched / max(loop, vec):.2f} | {scaling} |")


def gradient_paths():
    """Each path at the toys' own defaults (chains, batch 1000, ε): what the truth suite and
    auto-calibrate run. Per-step time of 300 draws + 100 burn-in, median of ROUNDS alternating."""
    print("\n### Gradient paths on the known-λ toys at their default settings (ms per step, all chains)\n")
    print("| toy | params | chains | loop | vmap | batched | batched speed-up vs the old auto choice |")
    print("|---|---|---|---|---|---|---|")
    for spec in ("crossing:1", "crossing:1,2", "dln:2,3,5,2,3:r1", "dln:20,30,10:r3", "dln:10,20,20,10:r1"):
        task = parse_toy(spec)
        base = task.defaults.replace(draws=300, burnin=100, thin=1)
        ms = {v: [] for v in ("off", "on", "batched")}
        for _ in range(ROUNDS):
            for v in ms:
                ms[v].append(1000 * base.chains / ours(task, **{**vars(base), "vectorize": v}))
        loop, vmap, batched = (statistics.median(ms[v]) for v in ("off", "on", "batched"))
        old_auto = vmap if base.chains >= 8 else loop  # gradients.VMAP_MIN_CHAINS
        print(f"| {spec} | {task.num_params:,} | {base.chains} | {loop:.2f} | {vmap:.2f} | {batched:.2f} | "
              f"{old_auto / batched:.2f}× |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-peer", action="store_true", help="leave out the devinterp comparison")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; medians over {ROUNDS} alternating rounds")
    if not args.skip_peer:
        versus_peer()
    gradient_paths()
    loop_vs_vmap()


if __name__ == "__main__":
    main()
