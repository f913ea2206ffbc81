"""The task-variability experiment: λ̂ against the number of classes, per architecture.

Every (checkpoint, settings) estimate is cached on disk, keyed by the weights' sha256 and the
SGLD settings, so a page revisited (or a benchmark re-run) does not sample again.
"""

from __future__ import annotations

import hashlib
import json
import math
import pathlib
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

from .config import SGLDConfig
from .paths import runs_cache_dir
from .recipes import arch_name, sgld_defaults
from .sampler import estimate_llc



# Fewer draws than this per run: the page warns that the runs are short (the MNIST-1D checkpoints'
# calibrated runs use 1,000; at 50 draws most runs come back flagged).
SHORT_DRAWS = 200


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
    flags: list = field(default_factory=list)  # the run's flag codes (cache entries from before: none kept)
    config: dict = field(default_factory=dict)  # the SGLD settings it ran with (SGLDConfig.to_dict())

    @property
    def flagged(self) -> bool:
        return self.status != "ok" or bool(self.flags)


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
                       _float(saved["lambda_std"]), saved["status"], True, list(saved.get("flags", [])),
                       config.to_dict())
        except (ValueError, KeyError):
            pass  # a damaged cache entry is simply recomputed
    result = estimate_llc(load_task(meta["path"]), config, cancel=cancel)
    if not result.completed:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    flags = [f.code for f in result.warnings]
    tmp.write_text(json.dumps({"lambda_hat": _num(result.lambda_hat), "lambda_std": _num(result.lambda_hat_std),
                               "status": result.status, "flags": flags, "config": config.to_dict()}))
    tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    return Row(meta["name"], arch, meta["classes"], meta["seed"], result.lambda_hat, result.lambda_hat_std,
               result.status, False, flags, config.to_dict())


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


@dataclass(frozen=True)
class SlopeFit:
    """Ordinary least squares y = intercept + slope·x with the slope's standard error and a
    two-sided confidence interval from Student's t with n − 2 degrees of freedom."""
    slope: float
    intercept: float
    r2: float
    se: float
    ci_low: float
    ci_high: float
    n: int
    sse: float  # residual sum of squares
    sxx: float  # Σ (x − x̄)²


def slope_fit(x, y, level: float = 0.95) -> SlopeFit:
    """The OLS line through (x, y) with the slope's standard error and `level` confidence interval
    (NaN where n < 3 or x does not vary: no residual degree of freedom)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    slope, intercept, r2 = linear_fit(x, y)
    nan = float("nan")
    if len(x) < 3 or not math.isfinite(slope):
        return SlopeFit(slope, intercept, r2, nan, nan, nan, len(x), nan, nan)
    sxx = float(((x - x.mean()) ** 2).sum())
    sse = float(((y - (intercept + slope * x)) ** 2).sum())
    se = math.sqrt(sse / (len(x) - 2) / sxx)
    half = sps.t.ppf(0.5 + level / 2, len(x) - 2) * se
    return SlopeFit(slope, intercept, r2, se, slope - half, slope + half, len(x), sse, sxx)


@dataclass(frozen=True)
class SlopeDifference:
    """H0: both lines have the same slope. The classic test of two regression slopes (Zar,
    Biostatistical Analysis §18.1): residual variance pooled over both fits, t with n₁ + n₂ − 4
    degrees of freedom — the same t as the interaction term of one regression y ~ x·group."""
    difference: float  # slope a − slope b
    se: float
    t: float
    df: int
    p_value: float  # two-sided
    ci_low: float
    ci_high: float


def slope_difference(a: SlopeFit, b: SlopeFit, level: float = 0.95) -> SlopeDifference:
    df = a.n + b.n - 4
    nan = float("nan")
    if df < 1 or not (math.isfinite(a.sse) and math.isfinite(b.sse)):
        return SlopeDifference(a.slope - b.slope, nan, nan, max(df, 0), nan, nan, nan)
    pooled = (a.sse + b.sse) / df
    se = math.sqrt(pooled * (1 / a.sxx + 1 / b.sxx))
    diff = a.slope - b.slope
    t = diff / se if se > 0 else float("inf") * np.sign(diff)
    half = sps.t.ppf(0.5 + level / 2, df) * se
    return SlopeDifference(diff, se, float(t), df, float(2 * sps.t.sf(abs(t), df)), diff - half, diff + half)


def slope_fits(rows: list[Row]) -> dict:
    """Architecture -> SlopeFit of λ̂ against K over every finite run (each seed a point)."""
    out = {}
    for arch in sorted({r.arch for r in rows}):
        mine = [r for r in rows if r.arch == arch and np.isfinite(r.lambda_hat)]
        out[arch] = slope_fit([r.classes for r in mine], [r.lambda_hat for r in mine])
    return out


def summarize(rows: list[Row]) -> dict:
    """Per architecture: Ks, mean and std of λ̂ over seeds, whether any run was flagged, and the
    line fitted through every (finite) seed's λ̂."""
    out = {}
    for arch in sorted({r.arch for r in rows}):
        mine = [r for r in rows if r.arch == arch and np.isfinite(r.lambda_hat)]
        ks = sorted({r.classes for r in mine})
        vals = [[r.lambda_hat for r in mine if r.classes == k] for k in ks]
        flagged = [any(r.flagged for r in mine if r.classes == k) for k in ks]
        codes = [sorted({c for r in mine if r.classes == k for c in (r.flags or ([r.status] if r.flagged else []))})
                 for k in ks]
        slope, intercept, r2 = linear_fit([r.classes for r in mine], [r.lambda_hat for r in mine])
        out[arch] = {
            "classes": ks, "mean": [float(np.mean(v)) for v in vals],
            "std": [float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for v in vals],
            "seeds": [len(v) for v in vals], "flagged": flagged, "flag_codes": codes,
            "runs": [{"classes": r.classes, "seed": r.seed, "lambda_hat": r.lambda_hat, "flagged": r.flagged,
                      "flags": list(r.flags) or ([r.status] if r.flagged else [])} for r in mine],
            "slope": slope, "intercept": intercept, "r2": r2,
        }
    return out


def per_k_rows(summary: dict, flag_mark: str) -> list[dict]:
    """One row per K: {"K": k, arch: "mean ± std" (+ flag_mark if any seed's run was flagged)}; one seed
    has no spread to show: "mean (1 seed)", not "± 0.00"."""
    rows = []
    for k in sorted({k for s in summary.values() for k in s["classes"]}):
        row = {"K": k}
        for arch, s in summary.items():
            if k in s["classes"]:
                i = s["classes"].index(k)
                spread = f" ± {s['std'][i]:.2f}" if s["seeds"][i] > 1 else " (1 seed)"
                row[arch] = f"{s['mean'][i]:.2f}{spread}" + (flag_mark if s["flagged"][i] else "")
        rows.append(row)
    return rows


def checkpoint_unit(unit: tuple, cancel) -> Row | None:
    """One checkpoint's estimate as an executor unit: (metadata, SGLD overrides, cache folder)."""
    from .executor import cached_task

    meta, overrides, folder = unit
    return estimate_cached(meta, lambda path: cached_task({"checkpoint": path}), overrides, cancel, folder)


def run_experiment(metas: list[dict], overrides: dict, executor, cancel=None, folder=None):
    """Rows as their units finish (cached ones at once). A unit that failed gives a row with status
    "error" and NaN λ̂, which the summary leaves out of the fits."""
    from .executor import UnitFailed

    units = [(meta, overrides, str(folder) if folder else None) for meta in metas]
    for index, outcome in executor.map_unordered(checkpoint_unit, units, cancel):
        if isinstance(outcome, UnitFailed):
            meta = metas[index]
            yield Row(meta["name"], arch_name(meta["arch"]["kind"]), meta["classes"], meta["seed"],
                      float("nan"), float("nan"), "error", False)
        elif outcome is not None:
            yield outcome


def settings_by_arch(metas: list[dict], overrides: dict) -> dict:
    """Architecture -> the SGLD settings its checkpoints run with."""
    return {arch_name(m["arch"]["kind"]): sgld_defaults(m).replace(**overrides) for m in metas}


def report_text(rows: list[Row], settings: dict) -> str:
    """The experiment's markdown report: settings, λ̂ per K per architecture, and the fitted lines."""
    lines = ["MNIST-1D, n = 4000 for every K, nβ = n/log n; SGLD per architecture:"]
    lines += [f"- {arch}: ε={c.epsilon:g}, γ={c.gamma:g}, {c.chains} chains × {c.draws} draws "
              f"(+{c.burnin} burn-in), batch {c.batch_size}" for arch, c in sorted(settings.items())]
    summary = summarize(rows)
    archs = sorted(summary)
    lines += ["", "| K | " + " | ".join(f"{a} λ̂ (mean ± std over seeds)" for a in archs) + " |",
              "|---|" + "---|" * len(archs)]
    lines += [f"| {row['K']} | " + " | ".join(row.get(a, "–") for a in archs) + " |"
              for row in per_k_rows(summary, flag_mark=" *")]
    lines += ["", "| architecture | slope dλ̂/dK | intercept | R² (all seeds) |", "|---|---|---|---|"]
    lines += [f"| {a} | {summary[a]['slope']:.2f} | {summary[a]['intercept']:.2f} | {summary[a]['r2']:.3f} |"
              for a in archs]
    lines.append("\n* = at least one seed's run was flagged (status other than ok)")
    return "\n".join(lines)
