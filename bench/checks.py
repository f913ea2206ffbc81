"""The no-ground-truth checks (llc_core/checks.py) on checkpoints or toys, at their defaults.

    nice .venv/bin/python bench/checks.py mnist1d_mlp_k10_s0 mnist1d_cnn_k10_s0 [--sampler NAME]
"""

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from llc_core.checkpoints import CACHE_DIR, load_task  # noqa: E402
from llc_core.checks import run_checks  # noqa: E402
from llc_core.toys import parse_toy  # noqa: E402


def load_model(name: str):
    """A toy spec (it has a colon) or a checkpoint name in cached_models/ (bench/gamma.py uses it too)."""
    return parse_toy(name) if ":" in name else load_task(CACHE_DIR / f"{name}.safetensors")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+", help="checkpoint names in cached_models/ or toy specs")
    ap.add_argument("--sampler", default=None, help="override the defaults' sampler")
    args = ap.parse_args()
    print("| model | check | λ̂ | λ̂ (check) | Δ | 3·MCSE | tolerance | statuses | verdict |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        task = load_model(name)
        config = task.defaults if args.sampler is None else task.defaults.replace(sampler=args.sampler)
        start = time.perf_counter()
        for r in run_checks(task, config):
            n = r.numbers
            print(f"| {name} | {r.name} | {n.get('lambda_hat', float('nan')):.4g} | "
                  f"{n.get('lambda_hat_other', float('nan')):.4g} | {n.get('difference', float('nan')):+.3g} | "
                  f"{3 * n.get('combined_mcse', float('nan')):.3g} | {n.get('tolerance', float('nan')):.3g} | "
                  f"{n.get('status')}/{n.get('status_other')} | {r.verdict} |", flush=True)
        print(f"\n{name}: {time.perf_counter() - start:.0f} s\n", flush=True)


if __name__ == "__main__":
    main()
