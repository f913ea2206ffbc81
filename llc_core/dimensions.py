"""λ̂ beside the other measures of effective dimension, on one model: the Hessian at w* (top
spectrum, trace, numerical rank; llc_core.hessian) and the intrinsic dimension d_int90
(llc_core.intrinsic_dim). One call measures all three, cached on disk by the weights' hash and
the settings, like the task-variability runs.

The ordering to expect at a minimum: rank(H) ≤ 2λ ≤ D. The splitting lemma writes the loss near
w* as a non-degenerate quadratic in rank(H) coordinates plus a function of the rest, so 2λ counts
the Hessian's directions fully and adds what the higher-order terms contribute; a direction where
the loss grows like w⁴ has zero curvature (the Hessian misses it) but adds ¼ to λ.
`rank_vs_llc_demo` shows this on deep linear networks at their teacher.
"""

from __future__ import annotations

import hashlib
import json
import math
import pathlib
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import torch

from .hessian import DEFAULT_RANK_RTOL, hessian_summary, check_settings
from .intrinsic_dim import SubspaceSettings, intrinsic_dimension
from .paths import runs_cache_dir
from .task import LLCTask

CAVEATS = {
    "lambda_hat": "SGLD estimate at a finite nβ: depends on ε, γ and run length (check the flags); "
                  "MCSE covers sampling noise, not the estimator's bias.",
    "hessian_trace": "sum of all eigenvalues: negative ones cancel positive ones; Hutchinson's s.e. is "
                     "sampling error only.",
    "top_eigenvalues": "curvature only (second order): directions where the loss grows like w⁴ show 0.",
    "numerical_rank": "depends on the stated relative tolerance; from the top-k spectrum it is a lower "
                      "bound (≥ k) and never sees negative eigenvalues.",
    "d_int90": "smallest d whose random subspace training reaches 90% of the checkpoint's training "
               "performance: depends on the optimiser, the steps and the random projection.",
    "num_params": "the raw parameter count D: an upper bound on 2λ for a model at a minimum.",
}


@dataclass
class DimensionSettings:
    eigenvalues: int = 20  # top-k eigenvalues (Lanczos) for large models
    probes: int = 30  # Hutchinson probes for the trace
    rank_rtol: float = DEFAULT_RANK_RTOL
    chains: int | None = None  # λ̂: the task's calibrated SGLD settings, these two overridden if set
    draws: int | None = None
    subspace: SubspaceSettings = field(default_factory=SubspaceSettings)
    seed: int = 0
    device: str = "cpu"

    def validate(self, task: LLCTask) -> "DimensionSettings":
        check_settings(self.eigenvalues, self.probes, self.rank_rtol)
        self.subspace.validate(task.num_params)
        self.sgld_config(task)
        return self

    def sgld_config(self, task: LLCTask):
        overrides = {k: v for k, v in (("chains", self.chains), ("draws", self.draws)) if v is not None}
        batch = min(task.defaults.batch_size, task.n)  # a toy built with a smaller n than its defaults assume
        return task.defaults.replace(**overrides, batch_size=batch, seed=self.seed, device=self.device).validate(task.n)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["subspace"] = asdict(replace(self.subspace, seed=self.seed))
        return out


def weights_hash(task: LLCTask) -> str:
    """sha256 of the model's parameters and buffers (names, shapes, bytes) and the data's size."""
    digest = hashlib.sha256(f"{task.name}|n={task.n}".encode())
    for name, tensor in sorted(task.model.state_dict().items()):
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def cache_folder() -> pathlib.Path:
    """$LLC_CACHE_DIR/runs/dimensions (else the per-user cache; llc_core.paths)."""
    return runs_cache_dir() / "dimensions"


def cache_key(task: LLCTask, settings: DimensionSettings) -> str:
    text = json.dumps({"weights": weights_hash(task), "settings": settings.to_dict()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _never() -> bool:
    return False


def measure_lambda(task: LLCTask, settings: DimensionSettings, should_stop, report) -> dict:
    """λ̂ with its MCSE from the task's calibrated SGLD settings (chains/draws as set)."""
    from .sampler import SGLDRun

    class Cancel:  # SGLDRun's cancel token is anything with is_set()
        def is_set(self):
            return should_stop()

    config = settings.sgld_config(task)
    run = SGLDRun(task, config, cancel=Cancel())
    for progress in run:
        report("lambda_hat", progress.step / config.total_steps, f"SGLD step {progress.step:,} of "
               f"{config.total_steps:,}, λ̂ = {progress.lambda_hat:.4g}")
    r = run.result
    return {"lambda_hat": r.lambda_hat, "lambda_hat_mcse": r.lambda_hat_se, "lambda_hat_status": r.status,
            "lambda_hat_completed": r.completed, "nbeta": r.nbeta, "sgld_config": config.to_dict()}


def measure_hessian(task: LLCTask, settings: DimensionSettings, should_stop, report) -> dict:
    from .devices import resolve_device

    def progress(stage, done, total):
        text = {"dense": f"dense Hessian: column {done} of {total}", "lanczos": "Lanczos: top eigenvalues…",
                "trace": f"Hutchinson probe {done} of {total}"}[stage]
        report("hessian", done / total if total else 0.0, text)

    h = hessian_summary(task, settings.eigenvalues, settings.probes, settings.rank_rtol,
                        resolve_device(settings.device), settings.seed, should_stop=should_stop, on_progress=progress)
    return {"hessian_trace": h.trace, "hessian_trace_se": h.trace_se, "top_eigenvalues": h.top_eigenvalues,
            "numerical_rank": h.numerical_rank, "rank_is_lower_bound": h.rank_is_lower_bound,
            "rank_tolerance": h.rank_tolerance, "hessian_method": h.method, "hessian_dtype": h.dtype,
            "hessian_probes": h.probes, "hessian_completed": h.completed}


def measure_intrinsic(task: LLCTask, settings: DimensionSettings, should_stop, report) -> dict:
    from .devices import resolve_device

    sub = replace(settings.subspace, seed=settings.seed)
    result = intrinsic_dimension(task, sub, resolve_device(settings.device), should_stop=should_stop,
                                 on_progress=lambda d, perf: report("d_int90", 0.0, f"subspace d = {d}: "
                                                                    f"performance {perf:.3f}"))
    return {"d_int90": result.d_int, "d_int90_curve": [list(p) for p in result.sorted_curve()],
            "d_int_threshold": result.threshold, "d_int_metric": result.metric,
            "full_performance": result.full_performance, "d_int_projection": result.projection,
            "d_int_completed": result.completed}


MEASURES = (("lambda_hat", measure_lambda), ("hessian", measure_hessian), ("d_int90", measure_intrinsic))


def measure_dimensions(task: LLCTask, settings: DimensionSettings | None = None,
                       should_stop: Callable[[], bool] | None = None,
                       on_progress: Callable[[str, float, str], None] | None = None,
                       on_part: Callable[[dict], None] | None = None, use_cache: bool = True) -> dict:
    """λ̂ ± MCSE, the Hessian's trace ± s.e., top eigenvalues and numerical rank, d_int90 and its
    curve, and the parameter count of one model (the JSON keys of `llc dimensions`).

    Cached by weights hash + settings: a finished measurement is read back at once
    (`"cached": true`). `should_stop()` True ends the current measure at its next step; the
    result then holds what finished (`"completed": false`) and is not cached. `on_progress(measure,
    fraction, text)`; `on_part(partial result)` after each of the three measures."""
    settings = (settings or DimensionSettings()).validate(task)
    stop, report = should_stop or _never, on_progress or (lambda *a: None)
    path = cache_folder() / f"{cache_key(task, settings)}.json"
    if use_cache and (saved := _read_cache(path)) is not None:
        return {**saved, "cached": True}
    out = {"name": task.name, "weights_sha256": weights_hash(task), "num_params": task.num_params, "n": task.n,
           "true_lambda": task.true_lambda, "settings": settings.to_dict(), "caveats": CAVEATS}
    for name, measure in MEASURES:
        if stop():
            break
        out.update(measure(task, settings, stop, report))
        if on_part:
            on_part(dict(out))
    out["completed"] = all(out.get(k) is True for k in ("lambda_hat_completed", "hessian_completed",
                                                        "d_int_completed"))
    if out["completed"] and use_cache:
        _write_cache(path, out)
    return {**out, "cached": False}


def _read_cache(path: pathlib.Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # absent or damaged: measured again


def _write_cache(path: pathlib.Path, out: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{id(out)}.tmp")
    tmp.write_text(json.dumps(out, default=_json_default, allow_nan=True))
    tmp.replace(path)  # atomic: a concurrent reader never sees half a file


def _json_default(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return str(value)


def json_safe(value):
    """NaN/inf → None, recursively (the CLI prints strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


# -- the Learn page's case: the Hessian rank against λ on deep linear networks -------------------

DEMO_SPECS = ("dln:5,5,5:r0", "dln:4,4,4,4:r0", "dln:4,3,4:r1", "dln:10,5,10:r2", "dln:6,6,6:r3")


def rank_vs_llc_demo(specs=DEMO_SPECS, n: int = 500) -> list[dict]:
    """Per DLN at its teacher: D, the exact Hessian rank (dense, float64), its trace and top
    eigenvalue, and 2λ (Aoyagi). At the teacher the residual is zero, so H = JᵀJ and rank(H) is
    the rank of the Jacobian; 2λ − rank(H) is the degeneracy the Hessian cannot see (zero
    curvature, but the loss still grows at higher order), D − 2λ the one the parameter count
    cannot see. With ≥ 3 layers and rank 0 the Hessian is the zero matrix while λ > 0."""
    from .toys import parse_toy

    rows = []
    for spec in specs:
        task = parse_toy(spec, n=n)
        h = hessian_summary(task, k=1, dense=True)
        rows.append({"model": spec, "parameters D": task.num_params, "Hessian rank": h.numerical_rank,
                     "2λ (Aoyagi)": 2 * task.true_lambda, "Hessian trace": h.trace,
                     "top eigenvalue": h.top_eigenvalues[0], "λ": task.true_lambda})
    return rows
