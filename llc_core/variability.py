"""The task-variability experiment: λ̂ against the number of classes, per architecture.

Every (checkpoint, settings) estimate is cached on disk, keyed by the weights' sha256 and the
SGLD settings, so a page revisited (or a benchmark re-run) does not sample again.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from dataclasses import dataclass
import numpy as np

from .config import SGLDConfig
from .paths import runs_cache_dir
from .recipes import arch_name, sgld_defaults
from .sampler import estimate_llc



def cache_dir() -> pathlib.Path:
    """$LLC_CACHE_DIR/runs, else the per-user cache (see llc_core.paths)."""
    return runs_cache_dir()


@dataclass
class Row:
    name: str
    arch: str  # MLP | CNN
    classes: int
    seed: int
    lambda_hat: float
    lambda_std: float
    status: str
    cached: bool


def run_key(meta: dict, config: SGLDConfig) -> str:
    settings = json.dumps({"weights": meta.get("sha256") or meta["name"], "config": config.to_dict()},
                          sort_keys=True)
    return hashlib.sha256(settings.encode()).hexdigest()[:32]


def estimate_cached(meta: dict, load_task, overrides: dict, cancel=None, folder=None) -> Row | None:
    """λ̂ for one checkpoint, from the disk cache if this exact run was done before.

    Returns None if cancelled mid-run (a partial estimate is not cached or reported)."""
    config = sgld_defaults(meta).replace(**overrides)
    path = pathlib.Path(folder or cache_dir()) / f"{run_key(meta, config)}.json"
    arch = arch_name(meta["arch"]["kind"])
    if path.exists():
        try:
            saved = json.loads(path.read_text())
            return Row(meta["name"], arch, meta["classes"], meta["seed"], _float(saved["lambda_hat"]),
                       _float(saved["lambda_std"]), saved["status"], True)
        except (ValueError, KeyError):
            pass  # a damaged cache entry is simply recomputed
    result = estimate_llc(load_task(meta["path"]), config, cancel=cancel)
    if not result.completed:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"lambda_hat": _num(result.lambda_hat), "lambda_std": _num(result.lambda_hat_std),
                               "status": result.status, "config": config.to_dict()}))
    tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    return Row(meta["name"], arch, meta["classes"], meta["seed"], result.lambda_hat, result.lambda_hat_std,
               result.status, False)


def _float(x) -> float:
    return float("nan") if x is None else float(x)


def _num(x: float):
    return None if x is None or not np.isfinite(x) else float(x)


def linear_fit(x, y) -> tuple[float, float, float]:
    """Least-squares slope, intercept and R² of y = intercept + slope·x."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.ptp(x) == 0:
        return float("nan"), float("nan"), float("nan")
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (intercept + slope * x)
    ss = ((y - y.mean()) ** 2).sum()
    return float(slope), float(intercept), float(1 - (resid**2).sum() / ss) if ss > 0 else float("nan")


def summarize(rows: list[Row]) -> dict:
    """Per architecture: Ks, mean and std of λ̂ over seeds, whether any run was flagged, and the
    line fitted through every (finite) seed's λ̂."""
    out = {}
    for arch in sorted({r.arch for r in rows}):
        mine = [r for r in rows if r.arch == arch and np.isfinite(r.lambda_hat)]
        ks = sorted({r.classes for r in mine})
        vals = [[r.lambda_hat for r in mine if r.classes == k] for k in ks]
        flagged = [any(r.status != "ok" for r in mine if r.classes == k) for k in ks]
        slope, intercept, r2 = linear_fit([r.classes for r in mine], [r.lambda_hat for r in mine])
        out[arch] = {
            "classes": ks, "mean": [float(np.mean(v)) for v in vals],
            "std": [float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for v in vals],
            "seeds": [len(v) for v in vals], "flagged": flagged,
            "slope": slope, "intercept": intercept, "r2": r2,
        }
    return out


def per_k_rows(summary: dict, flag_mark: str) -> list[dict]:
    """One row per K: {"K": k, arch: "mean ± std" (+ flag_mark if any seed's run was flagged)}."""
    rows = []
    for k in sorted({k for s in summary.values() for k in s["classes"]}):
        row = {"K": k}
        for arch, s in summary.items():
            if k in s["classes"]:
                i = s["classes"].index(k)
                row[arch] = f"{s['mean'][i]:.2f} ± {s['std'][i]:.2f}" + (flag_mark if s["flagged"][i] else "")
        rows.append(row)
    return rows
