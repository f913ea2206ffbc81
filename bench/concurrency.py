"""Several sessions estimating at once: identical results to running alone, and the cost.

Each "session" is an EstimateJob in its own JobSlot, as the dashboard runs them. For 1, 2 and 4
concurrent sessions (same task, different seeds per session) it checks every session's λ̂ per
chain against the same run done alone, and prints wall time and throughput.

    .venv/bin/python -m bench.concurrency
"""

import time

import torch

from llc_core import estimate_llc
from llc_core.checkpoints import CACHE_DIR, load_task
from llc_core.jobs import EstimateJob, JobSlot


def main():
    torch.set_num_threads(1)
    task = load_task(CACHE_DIR / "mnist1d_mlp_k10_s0.safetensors")
    base = task.defaults.replace(chains=4, draws=300, burnin=50)
    weights = [p.detach().clone() for p in task.model.parameters()]
    alone, alone_seconds = {}, {}
    for seed in range(4):
        start = time.perf_counter()
        alone[seed] = estimate_llc(task, base.replace(seed=seed)).lambda_hat_per_chain
        alone_seconds[seed] = time.perf_counter() - start
    print(f"MNIST-1D MLP k10 ({task.num_params:,} params), {base.chains} chains × {base.total_steps} steps per "
          f"session, one torch thread per run, 2 cores")
    print()
    print("| sessions at once | identical to alone | wall (s) | mean session (s) | chain-steps/s (all) |")
    print("|---|---|---|---|---|")
    print(f"| 1 (alone) | – | {alone_seconds[0]:.1f} | {alone_seconds[0]:.1f} | "
          f"{base.chains * base.total_steps / alone_seconds[0]:,.0f} |")
    for n in (2, 4):
        slots = [JobSlot() for _ in range(n)]
        start = time.perf_counter()
        jobs = [slot.start("estimate", EstimateJob(task, base.replace(seed=s))) for s, slot in enumerate(slots)]
        for job in jobs:
            job.join()
        wall = time.perf_counter() - start
        same = all(job.result.lambda_hat_per_chain == alone[s] for s, job in enumerate(jobs))
        mean = sum(job.finished - job.started for job in jobs) / n
        print(f"| {n} | {'yes' if same else 'NO'} | {wall:.1f} | {mean:.1f} | "
              f"{n * base.chains * base.total_steps / wall:,.0f} |")
    unchanged = all(torch.equal(a, b) for a, b in zip(weights, task.model.parameters()))
    print(f"\nShared model weights unchanged after all runs: {'yes' if unchanged else 'NO'}")


if __name__ == "__main__":
    main()
