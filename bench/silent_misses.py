"""Silent misses: runs more than 10% from the known λ whose status still says `ok`.

Runs each toy at its defaults and prints one row per case: λ, λ̂, error, the status with and
without the convergence flags of llc_core/convergence.py ("before" = the flags of
llc_core/diagnostics.py alone), the flags, and the measurements behind them (R̂, bulk/tail
ESS, MCSE, half-vs-half drift of λ̂, MALA, growth of ‖w − w*‖ over the second half).

    nice .venv/bin/python bench/silent_misses.py [--random 8] [--seed 0] [--cases SPEC ...]
"""

import argparse
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from llc_core import estimate_llc  # noqa: E402
from llc_core.diagnostics import status_of  # noqa: E402
from llc_core.toys import aoyagi_lambda, parse_toy  # noqa: E402

BAR = 0.10
NEW_CODES = {"high_rhat", "low_ess", "lambda_drift"}
# calibrated cases that must stay `ok`, and the public misses of issue 10
KNOWN = ["crossing:1", "crossing:2", "dln:5,5,5:r0", "dln:10,5,10:r2",
         "dln:3,4,5,3:r0", "dln:4,4,4,4,4:r2", "dln:10,20,20,10:r1"]


def random_dln(rng) -> str:
    """A DLN shape of 3–5 layers, widths 2–12, Aoyagi multiplicity 1 (no finite-n log term)."""
    while True:
        widths = [int(w) for w in rng.integers(2, 13, size=int(rng.integers(3, 6)))]
        rank = int(rng.integers(0, min(widths) + 1))
        spec = f"dln:{','.join(map(str, widths))}:r{rank}"
        if spec not in KNOWN and aoyagi_lambda(widths, rank) > 0:
            return spec


def distance_growth(res) -> float:
    """Mean ‖w − w*‖ over the last quarter of the trace ÷ over the quarter before it."""
    dist = np.nanmean(res.traces["distance"], axis=0)
    q = len(dist) // 4
    return float(dist[-q:].mean() / dist[-2 * q : -q].mean()) if q else float("nan")


def row(spec: str, save: str | None = None) -> dict:
    task = parse_toy(spec)
    start = time.perf_counter()
    res = estimate_llc(task)
    if save:  # the traces, to re-judge thresholds offline without re-running
        np.savez(pathlib.Path(save) / f"{spec.replace(':', '_').replace(',', '-')}.npz", **res.traces,
                 nbeta=res.nbeta, init_loss=res.init_loss, burnin=res.config.burnin,
                 true_lambda=task.true_lambda, lambda_hat=res.lambda_hat)
    conv = res.diagnostics["convergence"]
    codes = [f.code for f in res.warnings]
    old = [f for f in res.warnings if f.code not in NEW_CODES]
    drift = conv["lambda_second_half"] - conv["lambda_first_half"]
    return dict(
        case=spec, lam=task.true_lambda, lam_hat=res.lambda_hat, err=res.lambda_hat / task.true_lambda - 1,
        before=status_of(old), after=res.status, flags=",".join(codes) or "–", rhat=res.diagnostics["rhat"],
        ess_bulk=res.diagnostics["ess_bulk"], ess_tail=res.diagnostics["ess_tail"],
        mcse=res.lambda_hat_se, drift_z=drift / conv["drift_mcse"], drift_rel=drift / res.lambda_hat,
        mala=float(np.nanmean(res.diagnostics["mala_acceptance"])), dist_growth=distance_growth(res),
        seconds=time.perf_counter() - start,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--random", type=int, default=8, help="random unseen DLN shapes to add")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", default=None, help="folder for one .npz of traces per case")
    ap.add_argument("--cases", nargs="*", default=None, help="toy specs (default: the known list)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    cases = (args.cases if args.cases is not None else KNOWN) + [random_dln(rng) for _ in range(args.random)]
    print("| case | λ | λ̂ | error | status before | status after | flags | R̂ | ESS bulk | ESS tail "
          "| MCSE | drift (MCSE) | drift (rel) | MALA | ‖w−w*‖ growth | s |")
    print("|" + "---|" * 16)
    misses = {"before": 0, "after": 0}
    for spec in cases:
        r = row(spec, args.save)
        for k in misses:
            misses[k] += abs(r["err"]) > BAR and r[k] == "ok"
        print(f"| {r['case']} | {r['lam']:.4g} | {r['lam_hat']:.4g} | {r['err']:+.1%} | {r['before']} | "
              f"{r['after']} | {r['flags']} | {r['rhat']:.3f} | {r['ess_bulk']:.0f} | {r['ess_tail']:.0f} | "
              f"{r['mcse']:.3g} | {r['drift_z']:+.1f} | {r['drift_rel']:+.1%} | {r['mala']:.3f} | "
              f"{r['dist_growth']:.3f} | {r['seconds']:.0f} |", flush=True)
    print(f"\nsilent misses (>{BAR:.0%} off, status ok): before {misses['before']}, after {misses['after']}"
          f" of {len(cases)}")


if __name__ == "__main__":
    main()
