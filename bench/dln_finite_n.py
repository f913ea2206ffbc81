"""Is a DLN's miss the sampler's or the estimator's? λ̂ against the training-set size n and the chain length.

nβ·E_β[K] reaches λ only as nβ grows, slowly where exponents nearly tie (docs/method.md: the crossing
[2,3] is 22% below λ at nβ = 1e4). A DLN's finite-n target cannot be computed by quadrature as a
crossing's is, so this bench measures the trend instead: each spec at the toy's defaults (ε = 0.15/nβ)
for several n, and at the default n with longer chains. λ̂ that holds with length but moves toward λ
as n grows is the estimator's finite-n bias; λ̂ that moves with length is the sampler's exploration.

    OMP_NUM_THREADS=1 .venv/bin/python bench/dln_finite_n.py [--ns 10000 100000 1000000] [--lengths 2 4]
        [--seed S] SPEC ...
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from llc_core.sampler import SGLDRun  # noqa: E402
from llc_core.sweep import mean_mala  # noqa: E402
from llc_core.toys import parse_toy  # noqa: E402

DEFAULT_N = 100_000  # toys.dln_task's n
HEADER = ("| case | n | nβ | length | ε | λ | λ̂ ± MCSE | error | status | flags | MALA | seconds |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")


def row(spec: str, n: int, length: int, seed: int) -> str:
    task = parse_toy(spec, n=n)
    d = task.defaults
    config = d.replace(seed=seed, draws=d.draws * length, burnin=d.burnin * length)
    start = time.perf_counter()
    result = SGLDRun(task, config).run()
    flags = ", ".join(f.code for f in result.warnings) or "–"
    err = result.lambda_hat / task.true_lambda - 1
    return (f"| {spec} | {n:,} | {result.nbeta:.4g} | {length}× | {config.epsilon:.3g} | {task.true_lambda:g} | "
            f"{result.lambda_hat:.4g} ± {result.lambda_hat_se:.2g} | {err:+.1%} | {result.status} | {flags} | "
            f"{mean_mala(result):.3f} | {time.perf_counter() - start:.0f} |")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("specs", nargs="+", help="dln:H0,...,HL:rR")
    p.add_argument("--ns", type=int, nargs="+", default=[10_000, DEFAULT_N, 1_000_000])
    p.add_argument("--lengths", type=int, nargs="*", default=[2, 4], help="chain lengths (× the default) at n = 100k")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(HEADER, flush=True)
    for spec in args.specs:
        for n in args.ns:
            print(row(spec, n, 1, args.seed), flush=True)
        for length in args.lengths:
            print(row(spec, DEFAULT_N, length, args.seed), flush=True)


if __name__ == "__main__":
    main()
