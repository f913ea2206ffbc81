"""The seed experiment from the CLI alone: λ̂ against the number of classes, MLP vs CNN.

For every MNIST-1D checkpoint in cached_models/ (K = 2..10, three seeds each, n = 4000 for
every K) it runs the checkpoint's default SGLD settings and prints λ̂ mean ± std over seeds,
then a least-squares line λ̂ = a + b·K per architecture with its slope b and R².

    .venv/bin/python -m bench.task_variability [--draws N]
"""

import argparse
import sys

from llc_core import estimate_llc
from llc_core.checkpoints import CACHE_DIR, list_checkpoints, load_task
from llc_core.recipes import arch_name
from llc_core.variability import Row, per_k_rows, summarize


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=None, help="override the checkpoint default")
    args = parser.parse_args()
    rows = []
    settings = {}  # arch -> the SGLD settings its checkpoints ran with
    for meta in sorted(list_checkpoints(CACHE_DIR), key=lambda m: (m["arch"]["kind"], m["classes"], m["seed"])):
        task = load_task(meta["path"])
        cfg = task.defaults.replace(**({"draws": args.draws} if args.draws else {}))
        res = estimate_llc(task, cfg)
        arch = arch_name(meta["arch"]["kind"])
        settings[arch] = cfg
        rows.append(Row(meta["name"], arch, meta["classes"], meta["seed"], res.lambda_hat, res.lambda_hat_std,
                        res.status, cached=False))
        print(f"  {meta['name']}: λ̂ = {res.lambda_hat:.2f} ± {res.lambda_hat_std:.2f} ({res.status}), "
              f"test acc {meta['test_accuracy']:.3f}", file=sys.stderr, flush=True)
    print("MNIST-1D, n = 4000 for every K, nβ = n/log n; SGLD per architecture:")
    for arch, cfg in sorted(settings.items()):
        print(f"- {arch}: ε={cfg.epsilon:g}, γ={cfg.gamma:g}, {cfg.chains} chains × {cfg.draws} draws "
              f"(+{cfg.burnin} burn-in), batch {cfg.batch_size}")
    print()
    summary = summarize(rows)
    archs = sorted(summary)
    print("| K | " + " | ".join(f"{a} λ̂ (mean ± std over seeds)" for a in archs) + " |")
    print("|---|" + "---|" * len(archs))
    for row in per_k_rows(summary, flag_mark=" *"):
        print(f"| {row['K']} | " + " | ".join(row.get(a, "–") for a in archs) + " |")
    print("\n| architecture | slope dλ̂/dK | intercept | R² (all seeds) |")
    print("|---|---|---|---|")
    for a in archs:
        s = summary[a]
        print(f"| {a} | {s['slope']:.2f} | {s['intercept']:.2f} | {s['r2']:.3f} |")
    print("\n* = at least one seed's run was flagged (status other than ok)")


if __name__ == "__main__":
    main()
