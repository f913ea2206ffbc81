"""Auto-calibrate validated on the known-λ toys.

For each toy: auto-calibrate (ε bracket on the half-decade ladder, full-length confirmation,
chain growth) within its budget; the recommended run's λ̂ against the toy's target (the exact
finite-n target where it can be computed, else the true λ) and the estimator's bar (10%).

    .venv/bin/python -m bench.calibration [--budget-seconds B] [--seed S] [SPEC ...]
"""

import argparse
import time

import torch

from llc_core.calibrate import DEFAULT_BUDGET_SECONDS, auto_calibrate
from llc_core.toys import parse_toy

TOYS = ["crossing:1", "crossing:2", "crossing:1,2", "crossing:1,1", "dln:4,3,4:r1", "dln:5,5,5:r0",
        "dln:10,5,10:r2"]
PUBLIC_MISSES = ["dln:3,4,5,3:r0", "dln:4,4,4,4,4:r2", "dln:10,20,20,10:r1"]
BAR = 0.10
HEADER = ("| toy | default ε | recommended ε, γ, sampler, draws | full-length runs | λ̂ | λ̂ range | target | error "
          "| confirmed | status | silent miss | seconds |\n|---|---|---|---|---|---|---|---|---|---|---|---|")


def row(spec: str, budget: float, seed: int) -> str:
    task = parse_toy(spec)
    start = time.perf_counter()
    rec = auto_calibrate(task, budget_seconds=budget, seed=seed)
    seconds = time.perf_counter() - start
    target = task.target_lambda if task.target_lambda is not None else task.true_lambda
    runs = "; ".join(f"ε {a.epsilon:.3g}×{a.config.draws}: {a.lambda_hat:.4g} {','.join(a.flags) or a.status}"
                     for a in rec.attempts) or "none"
    span = f"{rec.lambda_range[0]:.4g} … {rec.lambda_range[1]:.4g}" if rec.lambda_range else "–"
    if not rec.found:
        return (f"| {spec} | {task.defaults.epsilon:.3g} | none | {runs} | – | {span} | {target:.4g} | – | no | "
                f"{rec.status} | no | {seconds:.0f} |")
    err = rec.lambda_hat / target - 1
    silent = rec.status == "ok" and abs(err) > BAR
    return (f"| {spec} | {task.defaults.epsilon:.3g} | {rec.epsilon:.3g}, {rec.gamma:g}, {rec.sampler}, "
            f"{rec.config.draws} | {runs} | {rec.lambda_hat:.4g} | {span} | {target:.4g} | {err:+.1%} | "
            f"{'yes' if rec.confirmed else 'no'} | {rec.status} | {'YES' if silent else 'no'} | {seconds:.0f} |")


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--budget-seconds", type=float, default=DEFAULT_BUDGET_SECONDS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("specs", nargs="*")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print(HEADER, flush=True)
    for spec in args.specs or TOYS + PUBLIC_MISSES:
        print(row(spec, args.budget_seconds, args.seed), flush=True)


if __name__ == "__main__":
    main()
