"""λ̂ against the localization γ, each model at its defaults otherwise (ε, nβ, chains, length).

Auto-calibrate searches ε and the sampler at the model's γ and never changes γ; this table shows how
much λ̂ moves when γ does, and which status each run gets. On a known-λ toy a γ-dependent λ̂ is a
wrong λ̂; on a network whose λ is unknown it says that λ̂ must be reported with its γ.

    OMP_NUM_THREADS=1 .venv/bin/python bench/gamma.py crossing:1 dln:4,2,3,3:r0 mnist1d_mlp_k10_s0 \
        --gammas 1,10,100,1000 [--seed S] [--workers N]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from bench.checks import load_model  # noqa: E402


def run_one(item: tuple, cancel=None) -> dict:
    """One (model, γ, seed) at the model's defaults: a unit of llc_core's executor (which passes
    its cancel token: a Stop ends the run early)."""
    import torch

    from llc_core.sampler import SGLDRun
    from llc_core.sweep import mean_mala

    name, gamma, seed = item
    torch.set_num_threads(1)  # one core per run: runs are the unit of parallelism
    task = load_model(name)
    start = time.perf_counter()
    result = SGLDRun(task, task.defaults.replace(gamma=gamma, seed=seed), cancel=cancel).run()
    return dict(name=name, gamma=gamma, default_gamma=task.defaults.gamma, true=task.true_lambda,
                lam=result.lambda_hat, se=result.lambda_hat_se, status=result.status,
                flags=[f.code for f in result.warnings], mala=mean_mala(result),
                seconds=time.perf_counter() - start)


def row(r: dict) -> str:
    err = f"{(r['lam'] - r['true']) / r['true']:+.1%}" if r["true"] else "–"
    mark = " (default)" if r["gamma"] == r["default_gamma"] else ""
    return (f"| {r['name']} | {r['gamma']:g}{mark} | {r['lam']:.4g} ± {r['se']:.2g} | "
            f"{r['true'] if r['true'] is not None else '–'} | {err} | {r['status']} | "
            f"{', '.join(r['flags']) or '–'} | {r['mala']:.3f} | {r['seconds']:.0f} |")


def main(argv=None) -> list[dict]:
    from llc_core.executor import UnitFailed, make_executor

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="toy specs or checkpoint names in cached_models/")
    ap.add_argument("--gammas", default="1,10,100,1000", help="comma-separated γ values (default 1,10,100,1000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="processes, one run each (default 2)")
    args = ap.parse_args(argv)
    gammas = [float(g) for g in args.gammas.split(",")]
    items = [(name, g, args.seed) for name in args.models for g in gammas]
    rows: list[dict] = []
    with make_executor(workers=args.workers) as executor:
        for index, outcome in executor.map_unordered(run_one, items):
            if isinstance(outcome, UnitFailed):
                print(f"{items[index]}: failed: {outcome.error}", file=sys.stderr)
            else:
                rows.append(outcome)
    rows.sort(key=lambda r: (args.models.index(r["name"]), r["gamma"]))
    print("| model | γ | λ̂ ± s.e. | λ | error | status | flags | MALA | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(row(r))
    return rows


if __name__ == "__main__":
    main()
