"""Sweep scaling: the same 12-cell ε × γ sweep on the MNIST-1D MLP with 1 worker, 2 workers and a
local Ray runtime, timed end to end as a user runs it (`python -m llc_core sweep ... --json`,
interpreter start and imports included); λ̂ per cell compared bit for bit with the 1-worker run.

    .venv/bin/python -m bench.sweep_scaling [--draws N] [--no-ray]
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

from llc_core.checkpoints import CACHE_DIR

ROOT = pathlib.Path(__file__).resolve().parent.parent  # the sweeps run from here, on this checkout
CHECKPOINT = CACHE_DIR / "mnist1d_mlp_k10_s0.safetensors"
GRID = ["--epsilon", "3e-5,1e-4,2e-4,3e-4", "--gamma", "10,100,300"]  # 12 cells around the calibrated ε=2e-4, γ=100


def run_sweep(where: list[str], draws: int) -> tuple[float, dict]:
    args = [sys.executable, "-m", "llc_core", "sweep", "--checkpoint", str(CHECKPOINT), *GRID, "--chains", "2",
            "--draws", str(draws), "--burnin", "50", "--seed", "0", "--json", *where]
    start = time.perf_counter()
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    return seconds, {(r["epsilon"], r["gamma"], r["nbeta_multiplier"]): r["lambda_hat"] for r in rows}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=200, help="draws per chain in every cell")
    parser.add_argument("--no-ray", action="store_true", help="skip the local Ray row")
    args = parser.parse_args()
    print(f"load before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores", file=sys.stderr)
    setups = [("1 worker", ["--workers", "1"]), ("2 workers", ["--workers", "2"])]
    if not args.no_ray:
        setups.append(("Ray (local, 2 CPUs)", ["--ray", "local"]))
    results = [(name, *run_sweep(where, args.draws)) for name, where in setups]
    base_seconds, base_cells = results[0][1], results[0][2]
    print(f"12-cell sweep, {CHECKPOINT.name}, 2 chains × {args.draws} draws (+50 burn-in) per cell")
    print("| executor | seconds | speed-up vs 1 worker | cells | identical λ̂ per cell |")
    print("|---|---|---|---|---|")
    for name, seconds, cells in results:
        same = "yes" if cells == base_cells and len(cells) == 12 else "no"
        print(f"| {name} | {seconds:.1f} | {base_seconds / seconds:.2f}× | {len(cells)} | {same} |")
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", file=sys.stderr)


if __name__ == "__main__":
    main()
