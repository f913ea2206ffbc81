"""Accuracy of λ̂ on models with a known learning coefficient, each toy with its own defaults.

Two questions, kept apart (DESIGN.md §3):
- sampler error: λ̂ vs the exact finite-n target nβ·E_β[K] (quadrature; 1–2 parameter toys);
- estimator accuracy: λ̂ vs the true λ, on crossings whose finite-n target is within 3% of λ
  at the toy's n, and on deep linear networks (Aoyagi's λ).
Bar: within 10%. Prints a markdown table; `--quick` runs a few cases only.

    .venv/bin/python -m bench.accuracy
"""

import sys
import time

from llc_core import estimate_llc
from llc_core.toys import parse_toy

BAR = 0.10
# (spec, n or None for the toy's default n)
SAMPLER_CASES = [("crossing:1", None), ("crossing:2", None), ("crossing:3", None), ("crossing:4", None),
                 ("crossing:5", None), ("crossing:1,2", None), ("crossing:1,3", None),
                 ("crossing:1,1", None), ("crossing:2,3", None)]
ESTIMATOR_CROSSINGS = [("crossing:1", None), ("crossing:2", None), ("crossing:3", None),
                       ("crossing:4", None), ("crossing:5", None), ("crossing:1,3", 10_000_000)]
DLN_CASES = ["dln:4,3,4:r1", "dln:5,5,5:r0", "dln:4,3,8:r0", "dln:10,5,10:r0", "dln:10,5,10:r2",
             "dln:3,4,5,3:r0", "dln:5,5,5,5:r1", "dln:4,4,4,4,4:r2", "dln:3,3,3,3,3,3:r1",
             "dln:10,20,20,10:r1"]


_done = {}


def run_case(spec, n):
    """Runs are deterministic (fixed seed): a case listed in two tables runs once."""
    if (spec, n) not in _done:
        task = parse_toy(spec, n=n)
        start = time.perf_counter()
        res = estimate_llc(task)
        _done[(spec, n)] = (task, res, time.perf_counter() - start)
    return _done[(spec, n)]


def row(task, res, seconds, reference, ref_name):
    err = (res.lambda_hat - reference) / reference
    ok = "✓" if abs(err) <= BAR else "✗"
    target = f"{task.target_lambda:.4f}" if task.target_lambda is not None else "–"
    print(f"| {task.name} | {task.n:,} | {res.nbeta:,.0f} | {task.true_lambda:.4f} | {target} | "
          f"{res.lambda_hat:.4f} ± {res.lambda_hat_se:.4f} | {err:+.1%} vs {ref_name} {ok} | "
          f"{res.status} | {seconds:.0f} s |", flush=True)
    return abs(err) <= BAR


def header(title):
    print(f"\n### {title}\n")
    print("| toy | n | nβ | λ | exact finite-n target | λ̂ ± s.e. | error | status | time |")
    print("|---|---|---|---|---|---|---|---|---|", flush=True)


def main():
    quick = "--quick" in sys.argv
    passed = total = 0
    header("Sampler error: λ̂ vs the exact finite-n target nβ·E_β[K]")
    for spec, n in SAMPLER_CASES[:3] if quick else SAMPLER_CASES:
        task, res, sec = run_case(spec, n)
        passed += row(task, res, sec, task.target_lambda, "target")
        total += 1
    header("Estimator accuracy: crossings whose finite-n target is within 3% of λ")
    for spec, n in ESTIMATOR_CROSSINGS[:2] if quick else ESTIMATOR_CROSSINGS:
        task, res, sec = run_case(spec, n)
        assert abs(task.target_lambda - task.true_lambda) <= 0.03 * task.true_lambda, spec
        passed += row(task, res, sec, task.true_lambda, "λ")
        total += 1
    header("Estimator accuracy: deep linear networks (Aoyagi's λ)")
    for spec in DLN_CASES[:2] if quick else DLN_CASES:
        task, res, sec = run_case(spec, None)
        passed += row(task, res, sec, task.true_lambda, "λ")
        total += 1
    print(f"\n{passed} of {total} cases within {BAR:.0%}")


if __name__ == "__main__":
    main()
