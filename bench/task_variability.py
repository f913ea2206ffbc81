"""The seed experiment from the CLI alone: λ̂ against the number of classes, MLP vs CNN.

For every MNIST-1D checkpoint in cached_models/ (K = 2..10, three seeds each, n = 4000 for
every K) it runs the checkpoint's default SGLD settings and prints λ̂ mean ± std over seeds,
then a least-squares line λ̂ = a + b·K per architecture with its slope b and R². The same code
as `python -m llc_core variability`, sampling afresh (a temporary cache), spread over workers.

    .venv/bin/python -m bench.task_variability [--draws N] [--workers N | --ray ADDRESS]
"""

import argparse
import sys
import tempfile

from llc_core.cli.variability import checkpoint_metas
from llc_core.executor import make_executor
from llc_core.variability import report_text, run_experiment, settings_by_arch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=None, help="override the checkpoint default")
    parser.add_argument("--workers", type=int, default=None, help="local worker processes (default: one per core)")
    parser.add_argument("--ray", default=None, help="local, auto or a Ray cluster address")
    args = parser.parse_args()
    metas = checkpoint_metas(None)
    overrides = {"draws": args.draws} if args.draws else {}
    rows = []
    with tempfile.TemporaryDirectory() as fresh, make_executor(workers=args.workers, ray=args.ray) as executor:
        for row in run_experiment(metas, overrides, executor, folder=fresh):
            rows.append(row)
            print(f"  {row.name}: λ̂ = {row.lambda_hat:.2f} ± {row.lambda_std:.2f} ({row.status})",
                  file=sys.stderr, flush=True)
    print(report_text(rows, settings_by_arch(metas, overrides)))


if __name__ == "__main__":
    main()
