"""Intrinsic dimension of the objective landscape (Li, Farkhoor, Liu & Yosinski 2018).

Train only z ∈ R^d in θ = θ0 + P·z, with θ0 a random initialisation (not w*: as in the paper)
and P a fixed random D×d projection with unit-length columns; d_int90 is the smallest d whose
subspace training reaches 90% of the full model's performance (the trained checkpoint's).

Projections: dense Gaussian when D·d ≤ DENSE_PROJECTION_MAX entries, else a sparse random
projection (each column ⌈√D⌉ random ±1 entries, scaled to unit length; Li et al. offer sparse
and Fastfood projections for large D; Fastfood is not implemented here).

Performance: accuracy on the training set for classifiers (integer labels); for regression (float
targets) R² = 1 − Σ‖f(x) − y‖² / Σ‖y − ȳ‖² on the training set. The training set is what the
task carries (λ̂ and the Hessian are on it too); the paper uses held-out accuracy.

Search: a coarse grid (doubling by default), then bisection between the last grid point that
failed and the first that reached the target. The bisection assumes performance grows with d;
subspace training is noisy, so d_int90 is uncertain by roughly the spacing where the curve is
flat near the threshold — read the curve, not only the number.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch.func import functional_call

from .config import InputError
from .limits import MAX_SUBSPACE_STEPS
from .task import FULL_LOSS_CHUNK, LLCTask

DENSE_PROJECTION_MAX = 2**24  # entries of a dense P (64 MB in float32)


@dataclass
class SubspaceSettings:
    steps: int = 300  # Adam steps per subspace training
    lr: float = 0.05
    batch_size: int = 256
    threshold: float = 0.9  # fraction of the full model's performance
    grid: tuple | None = None  # d values of the coarse grid (default: 1, 2, 4, …, D)
    bisect_steps: int = 6  # bisection refinements after the grid (resolution ≈ gap / 2^steps)
    seed: int = 0

    def validate(self, num_params: int) -> "SubspaceSettings":
        if not 1 <= self.steps <= MAX_SUBSPACE_STEPS:
            raise InputError(f"subspace steps={self.steps} is invalid: use 1..{MAX_SUBSPACE_STEPS}")
        if not (0 < self.lr <= 10 and math.isfinite(self.lr)):
            raise InputError(f"subspace lr={self.lr} is invalid: use a number in (0, 10]")
        if self.batch_size < 1:
            raise InputError(f"subspace batch_size={self.batch_size} is invalid: use ≥ 1")
        if not 0 < self.threshold <= 1:
            raise InputError(f"threshold={self.threshold} is invalid: use a fraction in (0, 1]")
        if self.grid is not None:
            bad = [d for d in self.grid if not (isinstance(d, int) and 1 <= d <= num_params)]
            if bad or not self.grid:
                raise InputError(f"d grid {list(self.grid)} is invalid: use integers in 1..{num_params} "
                                 f"(the parameter count)")
        if not 0 <= self.bisect_steps <= 30:
            raise InputError(f"bisect_steps={self.bisect_steps} is invalid: use 0..30")
        return self

    def grid_points(self, num_params: int) -> list[int]:
        if self.grid:
            return sorted(set(self.grid))
        points = [2**i for i in range(int(math.log2(num_params)) + 1)]
        return points + ([num_params] if points[-1] != num_params else [])


@dataclass
class IntrinsicDimResult:
    num_params: int
    d_int: int | None  # None: no d tried reached the target (or stopped before one did)
    threshold: float
    metric: str  # "accuracy" | "r2"
    full_performance: float
    target: float  # threshold · full_performance
    curve: list = field(default_factory=list)  # [(d, performance)] in the order tried
    projection: str = "dense"  # of the largest d tried
    completed: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    def sorted_curve(self) -> list:
        return sorted(self.curve)


def is_classifier(task: LLCTask) -> bool:
    return not task.y.is_floating_point()


@torch.no_grad()
def performance(model_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                classifier: bool) -> float:
    """Training-set accuracy (classifier) or R² (regression), in fixed chunks."""
    outs = torch.cat([model_fn(x[s:s + FULL_LOSS_CHUNK]) for s in range(0, len(x), FULL_LOSS_CHUNK)])
    if classifier:
        return float((outs.argmax(dim=-1) == y).float().mean())
    resid = ((outs - y) ** 2).sum()
    total = ((y - y.mean(dim=0)) ** 2).sum()
    return float(1 - resid / total) if total > 0 else float("nan")


def random_init(model: torch.nn.Module, seed: int) -> torch.Tensor:
    """θ0: the flat parameters of a copy of `model` re-initialised by its layers' own
    `reset_parameters` (the architecture's usual initialisation), seeded."""
    fresh = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in fresh.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return torch.cat([p.detach().reshape(-1) for p in fresh.parameters()])


class SparseProjection:
    """A D×d sparse P kept as (rows, cols, values): P·z is a gather and an index_add, whose autograd
    is as cheap as the forward (torch.sparse.mm's backward was ~100× slower here on a CPU)."""

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, num_params: int):
        self.rows, self.cols, self.values, self.num_params = rows, cols, values, num_params

    def __matmul__(self, z: torch.Tensor) -> torch.Tensor:
        return torch.zeros(self.num_params, device=z.device, dtype=z.dtype).index_add(
            0, self.rows, self.values * z[self.cols])


def projection(num_params: int, d: int, seed: int, device) -> tuple:
    """P (D×d, unit-length columns): dense Gaussian, or sparse ±1 with ⌈√D⌉ entries a column."""
    gen = torch.Generator().manual_seed((seed * 1_000_003 + d) % 2**63)
    if num_params * d <= DENSE_PROJECTION_MAX:
        p = torch.randn(num_params, d, generator=gen)
        return (p / p.norm(dim=0, keepdim=True)).to(device), "dense"
    per_col = math.ceil(math.sqrt(num_params))
    rows = torch.randint(0, num_params, (d * per_col,), generator=gen)
    cols = torch.arange(d).repeat_interleave(per_col)
    signs = (torch.randint(0, 2, (d * per_col,), generator=gen) * 2 - 1).float()
    # a row drawn twice in one column adds up (as a coalesced sparse matrix would): normalise the sums
    key = cols * num_params + rows
    unique, inverse = torch.unique(key, return_inverse=True)
    summed = torch.zeros(len(unique)).index_add_(0, inverse, signs)
    u_rows, u_cols = unique % num_params, unique // num_params
    norms = torch.zeros(d).index_add_(0, u_cols, summed ** 2).sqrt()
    keep = summed != 0
    values = summed[keep] / norms[u_cols[keep]]
    return SparseProjection(u_rows[keep].to(device), u_cols[keep].to(device), values.to(device), num_params), "sparse"


class SubspaceModel:
    """The task's model as a function of z: θ = θ0 + P·z, everything on `device` in float32."""

    def __init__(self, task: LLCTask, theta0: torch.Tensor, device):
        self.model = copy.deepcopy(task.model).to(device).float().eval()
        self.names = [n for n, _ in self.model.named_parameters()]
        self.shapes = [p.shape for _, p in self.model.named_parameters()]
        self.buffers = dict(self.model.named_buffers())
        self.theta0 = theta0.to(device, torch.float32)
        self.device = device

    def forward(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        params, start = {}, 0
        for name, shape in zip(self.names, self.shapes):
            size = math.prod(shape)
            params[name] = theta[start:start + size].reshape(shape)
            start += size
        return functional_call(self.model, (params, self.buffers), (x,))

    def theta(self, p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.theta0 + p @ z


def train_in_subspace(sub: SubspaceModel, task_data: tuple, loss_fn, d: int, settings: SubspaceSettings,
                      classifier: bool, should_stop: Callable[[], bool]) -> tuple[float | None, str]:
    """Adam on z (from 0) for `settings.steps` minibatch steps; the performance at the end, or
    None when stopped."""
    x, y = task_data
    p, kind = projection(len(sub.theta0), d, settings.seed, sub.device)
    z = torch.zeros(d, device=sub.device, requires_grad=True)
    opt = torch.optim.Adam([z], lr=settings.lr)
    gen = torch.Generator().manual_seed((settings.seed + 7919 * d) % 2**63)
    batch = min(settings.batch_size, len(x))
    for _ in range(settings.steps):
        if should_stop():
            return None, kind
        idx = torch.randint(0, len(x), (batch,), generator=gen).to(x.device)
        opt.zero_grad()
        loss_fn(sub.forward(sub.theta(p, z), x[idx]), y[idx]).backward()
        opt.step()
    theta = sub.theta(p, z.detach())
    return performance(lambda xb: sub.forward(theta, xb), x, y, classifier), kind


def intrinsic_dimension(task: LLCTask, settings: SubspaceSettings | None = None, device="cpu",
                        theta0: torch.Tensor | None = None, should_stop: Callable[[], bool] | None = None,
                        on_progress: Callable[[int, float], None] | None = None) -> IntrinsicDimResult:
    """d_int (at `settings.threshold`, 90% by default) and the (d, performance) curve.

    `theta0` overrides the random initialisation (flat, length D). `on_progress(d, performance)`
    after each subspace training; `should_stop()` True ends the search: the result keeps the
    curve so far and is marked incomplete."""
    settings = (settings or SubspaceSettings()).validate(task.num_params)
    stop = should_stop or (lambda: False)
    device = torch.device(device)
    classifier = is_classifier(task)
    data = (task.x.to(device).float(), task.y.to(device) if classifier else task.y.to(device).float())
    full_model = copy.deepcopy(task.model).to(device).float().eval()
    full = performance(full_model, *data, classifier)
    start = random_init(task.model, settings.seed) if theta0 is None else theta0.reshape(-1)
    if start.numel() != task.num_params:
        raise InputError(f"theta0 has {start.numel()} entries; the model has {task.num_params} parameters")
    sub = SubspaceModel(task, start, device)
    result = IntrinsicDimResult(task.num_params, None, settings.threshold, "accuracy" if classifier else "r2",
                                full, settings.threshold * full)

    def reaches(d: int) -> bool | None:
        perf, result.projection = train_in_subspace(sub, data, task.loss_fn, d, settings, classifier, stop)
        if perf is None:
            return None
        result.curve.append((d, perf))
        if on_progress:
            on_progress(d, perf)
        return perf >= result.target

    result.d_int, result.completed = _search(settings, task.num_params, reaches)
    return result


def _search(settings: SubspaceSettings, num_params: int, reaches) -> tuple[int | None, bool]:
    """Coarse grid up to the first d that reaches the target, then bisection below it."""
    low = 0  # largest d known to fail
    for d in settings.grid_points(num_params):
        ok = reaches(d)
        if ok is None:
            return None, False
        if ok:
            high = d
            break
        low = d
    else:
        return None, True  # even the largest d tried falls short
    for _ in range(settings.bisect_steps):
        if high - low <= 1:
            break
        mid = (low + high) // 2
        ok = reaches(mid)
        if ok is None:
            return high, False
        low, high = (low, mid) if ok else (mid, high)
    return high, True
