"""Memory over many runs in one process, as a long-lived dashboard server sees them.

Runs 50 estimates one after another through the dashboard's own job layer (JobSlot +
EstimateJob, live traces and all) on an MNIST-1D checkpoint and a toy, and prints the resident
set size (RSS) after a warm-up run and every 10 runs.

    .venv/bin/python -m bench.soak [--runs 50]
"""

import argparse
import gc
import time

import psutil

import torch

from llc_core.checkpoints import CACHE_DIR, load_task
from llc_core.jobs import EstimateJob, JobSlot
from llc_core.toys import parse_toy


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)
    tasks = [load_task(CACHE_DIR / "mnist1d_mlp_k10_s0.safetensors"), parse_toy("crossing:1")]
    configs = [tasks[0].defaults.replace(chains=4, draws=200, burnin=50),
               tasks[1].defaults.replace(chains=8, draws=400, thin=1, burnin=100)]
    slot = JobSlot()

    def one(i):
        k = i % 2
        slot.start("estimate", EstimateJob(tasks[k], configs[k].replace(seed=i))).join()
        slot.get("estimate").view()  # what a page draws from

    one(0)  # warm-up, both tasks: imports, allocator pools, first-call caches (vmap for the toy)
    one(1)
    rows = [(0, rss_mb())]
    start = time.perf_counter()
    for i in range(1, args.runs + 1):
        one(i + 1)
        if i % 10 == 0:
            rows.append((i, rss_mb()))
    seconds = time.perf_counter() - start
    print(f"{args.runs} runs alternating the MNIST-1D MLP (4 chains × 250 steps) and crossing:1 "
          f"(8 chains × 500 steps), through JobSlot + EstimateJob, {seconds:.0f} s")
    print()
    print("| runs done | RSS (MB) | change since warm-up |")
    print("|---|---|---|")
    for done, rss in rows:
        print(f"| {done} | {rss:.1f} | {rss - rows[0][1]:+.1f} |")


if __name__ == "__main__":
    main()
