"""The seed experiment from the CLI alone: λ̂ against the number of classes, MLP vs CNN.

For every MNIST-1D checkpoint in cached_models/ (K = 2..10, three seeds each, n = 4000 for
every K) it runs the checkpoint's default SGLD settings and prints λ̂ mean ± std over seeds,
then a least-squares line λ̂ = a + b·K per architecture with its slope b and R².

    .venv/bin/python bench/task_variability.py [--draws N]
"""

import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from llc_core import SGLDConfig, estimate_llc  # noqa: E402
from llc_core.checkpoints import CACHE_DIR, list_checkpoints, load_task  # noqa: E402

ARCH_NAMES = {"mlp": "MLP", "cnn1d": "CNN"}


def linear_fit(x, y):
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (intercept + slope * x)
    r2 = 1 - (resid**2).sum() / ((y - y.mean()) ** 2).sum()
    return slope, intercept, r2


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=None, help="override the checkpoint default")
    args = parser.parse_args()
    results = {}  # (arch, K) -> [λ̂ per seed]
    statuses = {}
    settings = {}  # arch -> the SGLD settings its checkpoints ran with
    for meta in sorted(list_checkpoints(CACHE_DIR), key=lambda m: (m["arch"]["kind"], m["classes"], m["seed"])):
        task = load_task(meta["path"])
        cfg = SGLDConfig(**{**task.defaults, **({"draws": args.draws} if args.draws else {})})
        res = estimate_llc(task, cfg)
        key = (ARCH_NAMES[meta["arch"]["kind"]], meta["classes"])
        settings[key[0]] = cfg
        results.setdefault(key, []).append(res.lambda_hat)
        statuses.setdefault(key, []).append(res.status)
        print(f"  {meta['name']}: λ̂ = {res.lambda_hat:.2f} ± {res.lambda_hat_std:.2f} ({res.status}), "
              f"test acc {meta['test_accuracy']:.3f}", file=sys.stderr, flush=True)
    print("MNIST-1D, n = 4000 for every K, nβ = n/log n; SGLD per architecture:")
    for arch, cfg in sorted(settings.items()):
        print(f"- {arch}: ε={cfg.epsilon:g}, γ={cfg.gamma:g}, {cfg.chains} chains × {cfg.draws} draws "
              f"(+{cfg.burnin} burn-in), batch {cfg.batch_size}")
    print()
    archs = sorted({a for a, _ in results})
    print("| K | " + " | ".join(f"{a} λ̂ (mean ± std over seeds)" for a in archs) + " |")
    print("|---|" + "---|" * len(archs))
    for k in sorted({k for _, k in results}):
        cells = []
        for a in archs:
            vals = np.array(results.get((a, k), []))
            flag = "" if all(s == "ok" for s in statuses.get((a, k), [])) else " *"
            cells.append(f"{vals.mean():.2f} ± {vals.std(ddof=1) if len(vals) > 1 else 0:.2f}{flag}")
        print(f"| {k} | " + " | ".join(cells) + " |")
    print("\n| architecture | slope dλ̂/dK | intercept | R² (all seeds) |")
    print("|---|---|---|---|")
    for a in archs:
        ks = np.array([k for (b, k), vals in results.items() if b == a for _ in vals], dtype=float)
        ys = np.array([v for (b, k), vals in results.items() if b == a for v in vals])
        slope, intercept, r2 = linear_fit(ks, ys)
        print(f"| {a} | {slope:.2f} | {intercept:.2f} | {r2:.3f} |")
    print("\n* = at least one seed's run was flagged (status other than ok)")


if __name__ == "__main__":
    main()
