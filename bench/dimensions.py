"""λ̂ beside the Hessian and the intrinsic dimension for the MNIST-1D MLP and CNN at K = 2, 5, 10
(seed 0, cached_models/): the README's "Dimensions" table.

Settings (modest, for a shared 2-core CPU; each checkpoint's own calibrated ε, γ, burn-in and batch):
λ̂ from 4 chains × 500 draws; the top 20 Hessian eigenvalues by Lanczos (float32 HVPs on all
4000 training examples), the trace from 30 Rademacher probes, the rank with relative tolerance
1e-6 (from the top 20 only: "≥ 20" when all pass); d_int90 from 300 Adam steps (lr 0.05,
batch 256) per subspace, grid 1, 2, 4, … then 6 bisection steps, training accuracy.
Results are cached (llc_core.dimensions), so a re-run prints at once; `--fresh` measures again.

    nice -n 10 .venv/bin/python -m bench.dimensions [--ks 2,5,10] [--draws 500] [--device cpu] [--fresh]
"""

import argparse
import sys
import time

from llc_core.checkpoints import CACHE_DIR, list_checkpoints
from llc_core.dimension_sweep import measure_checkpoints
from llc_core.dimensions import DimensionSettings
from llc_core.intrinsic_dim import SubspaceSettings


def table(rows: list[dict]) -> str:
    lines = ["| model | K | λ̂ ± MCSE | 2λ̂ | Hessian trace ± s.e. | top eigenvalue | numerical rank | tr/λ_max "
             "| d_int90 | D |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rank = f"≥ {r['numerical_rank']}" if r["rank_is_lower_bound"] else str(r["numerical_rank"])
        d_int = r["d_int90"] if r["d_int90"] is not None else f"not reached at d ≤ {r['num_params']:,}"
        lines.append(f"| {r['arch']} | {r['K']} | {r['lambda_hat']:.1f} ± {r['lambda_hat_mcse']:.1f} | "
                     f"{2 * r['lambda_hat']:.0f} | {r['hessian_trace']:.3g} ± {r['hessian_trace_se']:.2g} | "
                     f"{r['top_eigenvalue']:.3g} | {rank} | {r['hessian_trace'] / r['top_eigenvalue']:.1f} | "
                     f"{d_int} | {r['num_params']:,} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ks", default="2,5,10")
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fresh", action="store_true", help="ignore the cache (measure again)")
    args = parser.parse_args()
    ks = {int(k) for k in args.ks.split(",")}
    metas = sorted((m for m in list_checkpoints(CACHE_DIR)
                    if m["dataset"] == "mnist1d" and m["seed"] == 0 and m["classes"] in ks),
                   key=lambda m: (m["arch"]["kind"] != "mlp", m["classes"]))
    settings = DimensionSettings(eigenvalues=20, probes=30, rank_rtol=1e-6, chains=4, draws=args.draws,
                                 subspace=SubspaceSettings(steps=300), seed=0, device=args.device)
    rows, start = [], time.time()
    for row in measure_checkpoints(metas, settings, use_cache=not args.fresh, on_progress=lambda i, m, t: print(
            f"\r{metas[i]['name']} {m}: {t}".ljust(90)[:110], end="", file=sys.stderr, flush=True)):
        rows.append(row)
        print(f"\n{row['name']} done ({time.time() - start:.0f} s so far)", file=sys.stderr, flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
