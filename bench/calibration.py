"""Auto-calibrate validated on the known-λ toys.

For each toy: the pilot sweep around its defaults, the recommendation, the full-length
confirmation run(s); then the confirmed λ̂ against the toy's target (the exact finite-n target
where it can be computed, else the true λ) and the accuracy bar of the estimator (10%).

    .venv/bin/python -m bench.calibration [SPEC ...]
"""

import sys
import time

import torch

from llc_core.calibrate import auto_calibrate
from llc_core.toys import parse_toy

TOYS = ["crossing:1", "crossing:2", "crossing:1,2", "crossing:1,1", "dln:4,3,4:r1", "dln:5,5,5:r0",
        "dln:10,5,10:r2"]
BAR = 0.10


def main(specs):
    torch.set_num_threads(1)
    print("| toy | default ε, γ | recommended ε, γ, nβ× | confirmations | λ̂ | target | error | within 10% | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for spec in specs:
        task = parse_toy(spec)
        base = task.defaults
        start = time.perf_counter()
        rec = auto_calibrate(task)
        seconds = time.perf_counter() - start
        target = task.target_lambda if task.target_lambda is not None else task.true_lambda
        if not rec.found or not rec.attempts:
            print(f"| {spec} | {base.epsilon:.3g}, {base.gamma:g} | none | – | – | {target:.4g} | – | no | {seconds:.0f} |")
            continue
        last = rec.attempts[-1]
        err = last.lambda_hat / target - 1
        tries = "; ".join(f"ε {a.epsilon:.3g}: {a.status}{' ' + ','.join(a.flags) if a.flags else ''}"
                          for a in rec.attempts)
        print(f"| {spec} | {base.epsilon:.3g}, {base.gamma:g} | {rec.epsilon:.3g}, {rec.gamma:g}, "
              f"{rec.nbeta_multiplier:g}{'' if rec.confirmed else ' (unconfirmed)'} | {tries} | {last.lambda_hat:.4g} | "
              f"{target:.4g} | {err:+.1%} | {'yes' if abs(err) <= BAR else 'NO'} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or TOYS)
