"""λ̂ by sampler against the known λ on toys, at each toy's default settings.

    python -m bench.samplers [--device cuda] [--toys crossing:1 dln:5,5,5:r0] [--chains 8]
"""

from __future__ import annotations

import argparse
import time

from llc_core import estimate_llc
from llc_core.config import SAMPLERS
from llc_core.toys import parse_toy


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--toys", nargs="+", default=["crossing:1", "dln:5,5,5:r0"])
    ap.add_argument("--chains", type=int, default=None, help="default: the toy's own")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print("| toy | true λ | sampler | ε | λ̂ ± s.e. | error | MALA | status | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for spec in args.toys:
        task = parse_toy(spec)
        for sampler in SAMPLERS:
            cfg = task.defaults.replace(sampler=sampler, device=args.device, seed=args.seed,
                                        **({"chains": args.chains} if args.chains else {}))
            start = time.perf_counter()
            res = estimate_llc(task, cfg)
            mala = sum(res.diagnostics["mala_acceptance"]) / len(res.diagnostics["mala_acceptance"])
            err = (res.lambda_hat - task.true_lambda) / task.true_lambda
            print(f"| {spec} | {task.true_lambda:.4g} | {sampler} | {cfg.epsilon:.2g} | {res.lambda_hat:.4g} ± "
                  f"{res.lambda_hat_se:.2g} | {err:+.1%} | {mala:.3f} | {res.status} | "
                  f"{time.perf_counter() - start:.1f} |", flush=True)


if __name__ == "__main__":
    main()
