"""The Hessian of the training loss at w*: Hessian-vector products, top eigenvalues, trace, rank.

Hessian-vector products are forward-over-reverse (`torch.func.jvp` of `torch.func.grad`) on the
full training set, summed over fixed chunks, so no D×D matrix is ever formed for a large model.
The top of the spectrum comes from scipy's ARPACK Lanczos (`scipy.sparse.linalg.eigsh` on a
`LinearOperator`), the trace from Hutchinson's estimator with Rademacher probes (with its
standard error). Small models (D ≤ DENSE_MAX_PARAMS) get the exact dense Hessian instead, in
float64: its full spectrum, exact trace and exact numerical rank.

What each number can and cannot see:
- numerical rank = #{i : |h_i| > rtol·max|h|}. From the dense Hessian it is exact (up to the
  tolerance). From the top-k spectrum it only counts the k largest eigenvalues: when all k pass
  the tolerance the rank is reported as a lower bound "≥ k" (`rank_is_lower_bound`), and negative
  eigenvalues (w* not an exact minimum) are not seen at all.
- the trace is the sum of all eigenvalues, positive and negative: near a non-minimum they cancel.
- none of them sees beyond second order: a direction where the loss grows like w⁴ has curvature 0.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
from torch.func import functional_call, grad, jvp

from .config import InputError
from .limits import DEFAULT_RANK_RTOL, MAX_EIGENVALUES, MAX_PROBES
from .task import FULL_LOSS_CHUNK, LLCTask

DENSE_MAX_PARAMS = 2000  # up to this many parameters the full Hessian is formed (float64, ≤ 32 MB)


class Stopped(Exception):
    """Raised inside an HVP when the caller asked to stop (eigsh cannot be interrupted otherwise)."""


@dataclass
class HessianResult:
    num_params: int
    method: str  # "dense" (exact) | "lanczos+hutchinson"
    dtype: str
    top_eigenvalues: list  # largest first
    trace: float
    trace_se: float  # 0 for the exact trace
    probes: int  # Hutchinson probes (0 for dense)
    numerical_rank: int
    rank_is_lower_bound: bool  # True: "≥ numerical_rank" (every computed eigenvalue passed the tolerance)
    rank_tolerance: float  # the relative tolerance
    hvps: int = 0
    completed: bool = True
    spectrum: list = field(default_factory=list)  # the full spectrum (dense only), largest first

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def rank_text(self) -> str:
        return f"≥ {self.numerical_rank}" if self.rank_is_lower_bound else str(self.numerical_rank)


def _dtype_for(num_params: int, dtype: torch.dtype | None) -> torch.dtype:
    return dtype or (torch.float64 if num_params <= DENSE_MAX_PARAMS else torch.float32)


class HessianOperator:
    """v ↦ ∇²L_n(w*)·v for the task's model, data and loss on `device`, in `dtype`.

    A copy of the model is used (the task's own is left alone), in eval mode: L_n is the loss the
    SGLD estimate is centred on (llc_core.task.full_loss)."""

    def __init__(self, task: LLCTask, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                 should_stop: Callable[[], bool] | None = None):
        self.device = torch.device(device)
        self.num_params = task.num_params
        self.dtype = _dtype_for(self.num_params, dtype)
        self.model = copy.deepcopy(task.model).to(self.device, self.dtype).eval()
        self.names = [n for n, _ in self.model.named_parameters()]
        self.shapes = [p.shape for _, p in self.model.named_parameters()]
        self.w = torch.cat([p.detach().reshape(-1) for _, p in self.model.named_parameters()])
        self.buffers = {n: b for n, b in self.model.named_buffers()}
        self.x = _cast(task.x, self.device, self.dtype)
        self.y = _cast(task.y, self.device, self.dtype)
        self.loss_fn = task.loss_fn
        self.should_stop = should_stop or (lambda: False)
        self.calls = 0

    def params(self, flat: torch.Tensor) -> dict:
        out, start = {}, 0
        for name, shape in zip(self.names, self.shapes):
            size = math.prod(shape)
            out[name] = flat[start:start + size].reshape(shape)
            start += size
        return out

    def _chunk_loss(self, flat, xb, yb):
        return self.loss_fn(functional_call(self.model, (self.params(flat), self.buffers), (xb,)), yb)

    def hvp(self, v: torch.Tensor) -> torch.Tensor:
        """H·v: the chunk HVPs weighted by chunk size (L_n is the mean over all n examples)."""
        if self.should_stop():
            raise Stopped
        self.calls += 1
        n, out = len(self.x), torch.zeros_like(self.w)
        for start in range(0, n, FULL_LOSS_CHUNK):
            xb, yb = self.x[start:start + FULL_LOSS_CHUNK], self.y[start:start + FULL_LOSS_CHUNK]
            g = grad(lambda f: self._chunk_loss(f, xb, yb))
            out += jvp(g, (self.w,), (v.to(self.w),))[1] * (len(xb) / n)
        return out

    def matvec(self, v: np.ndarray) -> np.ndarray:
        """For scipy: numpy in, numpy (float64) out."""
        t = torch.as_tensor(np.asarray(v).reshape(-1), dtype=self.dtype, device=self.device)
        return self.hvp(t).detach().cpu().double().numpy()

    def dense(self, on_progress: Callable[[int, int], None] | None = None, block: int = 64) -> torch.Tensor:
        """The full D×D Hessian, a block of columns at a time (one HVP per column)."""
        d = self.num_params
        if d > DENSE_MAX_PARAMS:
            raise InputError(f"the dense Hessian needs ≤ {DENSE_MAX_PARAMS} parameters; this model has {d:,}")
        eye = torch.eye(d, dtype=self.dtype, device=self.device)
        cols = []
        for start in range(0, d, block):
            cols += [self.hvp(eye[i]) for i in range(start, min(d, start + block))]
            if on_progress:
                on_progress(len(cols), d)
        h = torch.stack(cols, dim=1)
        return (h + h.T) / 2  # exactly symmetric: the two halves differ only by rounding


def _cast(t: torch.Tensor, device, dtype) -> torch.Tensor:
    t = t.to(device)
    return t.to(dtype) if t.is_floating_point() else t


def numerical_rank(eigenvalues, rtol: float = DEFAULT_RANK_RTOL) -> int:
    """#{i : |h_i| > rtol · max |h|} (0 for the zero matrix)."""
    h = np.abs(np.asarray(eigenvalues, dtype=float))
    if not len(h) or h.max() == 0:
        return 0
    return int((h > rtol * h.max()).sum())


def hutchinson_trace(op: HessianOperator, probes: int, seed: int = 0,
                     on_probe: Callable[[int, int], None] | None = None) -> tuple[float, float, int]:
    """tr(H) ≈ mean of vᵀHv over Rademacher v, with its standard error (std/√probes). Stopping
    keeps the probes done so far; returns (trace, se, probes used)."""
    gen = torch.Generator().manual_seed(seed)
    values = []
    for i in range(probes):
        v = (torch.randint(0, 2, (op.num_params,), generator=gen) * 2 - 1).to(op.w)
        try:
            values.append(float(torch.dot(v, op.hvp(v))))
        except Stopped:
            break
        if on_probe:
            on_probe(i + 1, probes)
    if not values:
        return float("nan"), float("nan"), 0
    se = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return float(np.mean(values)), se, len(values)


def top_eigenvalues(op: HessianOperator, k: int, seed: int = 0, tol: float = 1e-6) -> np.ndarray:
    """The k largest (algebraic) eigenvalues, largest first, by ARPACK's implicitly restarted Lanczos."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    d = op.num_params
    linop = LinearOperator((d, d), matvec=op.matvec, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(d)
    values = eigsh(linop, k=min(k, d - 1), which="LA", v0=v0, tol=tol, return_eigenvectors=False)
    return np.sort(values)[::-1]


def check_settings(k: int, probes: int, rtol: float) -> None:
    if not 1 <= k <= MAX_EIGENVALUES:
        raise InputError(f"eigenvalues={k} is invalid: use 1..{MAX_EIGENVALUES}")
    if not 2 <= probes <= MAX_PROBES:
        raise InputError(f"probes={probes} is invalid: use 2..{MAX_PROBES} (the standard error needs two)")
    if not 0 < rtol < 1:
        raise InputError(f"rank tolerance={rtol} is invalid: use a number in (0, 1)")


def hessian_summary(task: LLCTask, k: int = 20, probes: int = 30, rtol: float = DEFAULT_RANK_RTOL,
                    device: str | torch.device = "cpu", seed: int = 0, dense: bool | None = None,
                    dtype: torch.dtype | None = None, should_stop: Callable[[], bool] | None = None,
                    on_progress: Callable[[str, int, int], None] | None = None) -> HessianResult:
    """The Hessian of L_n at the task's w*: top-k eigenvalues, trace (± s.e.), numerical rank.

    `dense` (default: D ≤ DENSE_MAX_PARAMS) forms the exact Hessian in float64; otherwise Lanczos
    gives the top k and Hutchinson (`probes` Rademacher vectors) the trace. `on_progress(stage,
    done, total)` reports "dense" columns, "lanczos" (HVPs so far, total unknown: 0) and "trace"
    probes. `should_stop()` True ends the work at the next HVP: the result is marked incomplete."""
    check_settings(k, probes, rtol)
    report = on_progress or (lambda stage, done, total: None)
    op = HessianOperator(task, device, dtype, should_stop)
    dense = op.num_params <= DENSE_MAX_PARAMS if dense is None else dense
    if dense:
        return _dense_summary(op, k, rtol, report)
    base = dict(num_params=op.num_params, method="lanczos+hutchinson", dtype=str(op.dtype).replace("torch.", ""),
                rank_tolerance=rtol)
    try:
        report("lanczos", 0, 0)
        top = top_eigenvalues(op, k, seed)
    except Stopped:
        return HessianResult(**base, top_eigenvalues=[], trace=float("nan"), trace_se=float("nan"), probes=0,
                             numerical_rank=0, rank_is_lower_bound=True, hvps=op.calls, completed=False)
    trace, se, used = hutchinson_trace(op, probes, seed, lambda i, total: report("trace", i, total))
    rank = numerical_rank(top, rtol)
    return HessianResult(**base, top_eigenvalues=top.tolist(), trace=trace, trace_se=se, probes=used,
                         numerical_rank=rank, rank_is_lower_bound=rank == len(top), hvps=op.calls,
                         completed=used == probes)


def _dense_summary(op: HessianOperator, k: int, rtol: float, report) -> HessianResult:
    base = dict(num_params=op.num_params, method="dense", dtype=str(op.dtype).replace("torch.", ""),
                rank_tolerance=rtol, probes=0)
    try:
        h = op.dense(lambda done, total: report("dense", done, total))
    except Stopped:
        return HessianResult(**base, top_eigenvalues=[], trace=float("nan"), trace_se=float("nan"),
                             numerical_rank=0, rank_is_lower_bound=True, hvps=op.calls, completed=False)
    spectrum = np.sort(torch.linalg.eigvalsh(h).cpu().double().numpy())[::-1]
    return HessianResult(**base, top_eigenvalues=spectrum[:k].tolist(), trace=float(torch.trace(h)), trace_se=0.0,
                         numerical_rank=numerical_rank(spectrum, rtol), rank_is_lower_bound=False,
                         hvps=op.calls, spectrum=spectrum.tolist())
