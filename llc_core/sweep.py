"""Sweeps: run a grid of ε × γ (× an nβ multiplier) with short chains, one `Cell` per grid point.

`calibrate.py` reads a sweep and recommends settings; the Calibrate page, `python -m llc_core sweep`
and auto-calibrate's pilot all run their grids through `sweep`.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from .config import ConfigError, SGLDConfig, default_nbeta
from .limits import MAX_SWEEP_CELLS, MAX_SWEEP_CHAIN_STEPS
from .sampler import SGLDRun
from .task import LLCTask

# Flags that disqualify a cell (drawn ⚠ / hollow): it diverged, went negative, started with a spike,
# was still drifting, or its step size was too large (MALA far below 0.9, or the step's own bias on λ̂
# above 5%: step_bias, which MALA cannot see in small models). Length flags (high_rhat, low_ess,
# high_chain_variance) are not here: every short pilot chain has them whatever ε is.
DISQUALIFYING = ("diverged", "negative", "init_spike", "not_stationary", "low_mala", "loss_below_init", "step_bias")


@dataclass(frozen=True)
class SweepGrid:
    epsilons: tuple[float, ...]
    gammas: tuple[float, ...]
    nbeta_multipliers: tuple[float, ...] = (1.0,)

    def points(self) -> list[tuple[float, float, float]]:
        """(ε, γ, nβ multiplier) per cell, ε varying fastest."""
        return [(e, g, m) for m, g, e in itertools.product(sorted(self.nbeta_multipliers), sorted(self.gammas),
                                                            sorted(self.epsilons))]

    def validate(self, pilot: SGLDConfig, n: int) -> "SweepGrid":
        for name, values in (("epsilons", self.epsilons), ("gammas", self.gammas),
                             ("nbeta_multipliers", self.nbeta_multipliers)):
            if not values:
                raise ConfigError(f"sweep {name} is empty: pick at least one value")
        cells = len(self.points())
        if cells > MAX_SWEEP_CELLS:
            raise ConfigError(f"sweep of {cells} cells is too large: at most {MAX_SWEEP_CELLS} "
                              f"(ε × γ × nβ values)")
        cost = cells * pilot.chains * pilot.total_steps
        if cost > MAX_SWEEP_CHAIN_STEPS:
            raise ConfigError(f"sweep of {cells} cells × {pilot.chains} chains × {pilot.total_steps} steps = "
                              f"{cost:,} chain-steps is too long: at most {MAX_SWEEP_CHAIN_STEPS:,}")
        for m in self.nbeta_multipliers:
            if not (isinstance(m, (int, float)) and math.isfinite(m) and 0.01 <= m <= 100):
                raise ConfigError(f"nβ multiplier {m!r} is invalid: must be a number in [0.01, 100]")
        for eps, gamma, m in self.points():  # every cell's config must be valid on its own
            cell_config(pilot, eps, gamma, m, n).validate(n)
        return self


@dataclass
class Cell:
    epsilon: float
    gamma: float
    nbeta_multiplier: float
    nbeta: float
    lambda_hat: float
    lambda_std: float
    status: str  # ok | warning | negative | diverged (the run's status) | error (its unit failed)
    flags: list[str]
    mala: float  # mean over chains, NaN if not measured
    seconds: float
    completed: bool = True
    lambda_se: float = math.nan  # standard error of λ̂ (from the run's effective sample size)
    error: str = ""  # why the cell's unit failed (status "error"); empty otherwise
    # the cell's running λ̂ per chain, thinned (`cell_trace`), so a sweep explorer can show it
    trace: dict | None = field(default=None, repr=False, compare=False)

    @property
    def verdict(self) -> str:
        """What the heatmap shows: diverged, negative, unstable (any disqualifying flag) or ok."""
        if self.status in ("diverged", "negative"):
            return self.status
        return "unstable" if self.disqualified else "ok"

    @property
    def disqualified(self) -> bool:
        return not self.completed or self.disqualifying_flag is not None

    @property
    def disqualifying_flag(self) -> str | None:
        """The first of the cell's flags that disqualifies it (not a length flag listed before it)."""
        return next((code for code in self.flags if code in DISQUALIFYING), None)


def cell_config(pilot: SGLDConfig, epsilon: float, gamma: float, multiplier: float, n: int) -> SGLDConfig:
    base = pilot.nbeta if pilot.nbeta is not None else default_nbeta(n)
    return pilot.replace(epsilon=float(epsilon), gamma=float(gamma), nbeta=float(base * multiplier))


def sweep(task: LLCTask, grid: SweepGrid, pilot: SGLDConfig, cancel=None,
          on_progress=None, executor=None, source: dict | None = None) -> Iterator[Cell]:
    """Run every cell of the grid (same seed for all: differences are the settings').

    Without an executor the cells run here in grid order and `on_progress` sees every step. With
    one (see llc_core.executor) they run as units in its workers and come back as they finish;
    `source` ({"toy": SPEC} or {"checkpoint": PATH, "data_dir": DIR}) names the task for the
    workers to rebuild, and a cell whose unit failed comes back with status "error"."""
    grid.validate(pilot, task.n)
    if executor is not None:
        yield from _sweep_on(executor, task, grid, pilot, cancel, source)
        return
    for eps, gamma, mult in grid.points():
        if cancel is not None and cancel.is_set():
            return
        config = cell_config(pilot, eps, gamma, mult, task.n)
        cell = run_cell_on(task, config, (eps, gamma, mult), cancel, on_progress)
        if not cell.completed and cancel is not None and cancel.is_set():
            return  # stopped mid-cell: a partial cell would look like a real result
        yield cell


def run_cell_on(task: LLCTask, config: SGLDConfig, point, cancel=None, on_progress=None) -> Cell:
    eps, gamma, mult = point
    start = time.perf_counter()
    result = SGLDRun(task, config, cancel=cancel).run(on_progress)
    return Cell(eps, gamma, mult, result.nbeta, result.lambda_hat, result.lambda_hat_std, result.status,
                [f.code for f in result.warnings], mean_mala(result), time.perf_counter() - start,
                result.completed, lambda_se=result.lambda_hat_se, trace=cell_trace(result, config))


CELL_TRACE_POINTS = 120  # per chain: enough to see a trend, small enough for 60 cells in a page's state


def cell_trace(result, config: SGLDConfig) -> dict:
    """The run's running λ̂ per chain at ≤ CELL_TRACE_POINTS evenly spaced points: {steps, lambda, burnin}."""
    steps, lam = np.asarray(result.traces.get("steps", [])), np.asarray(result.traces.get("lambda", []), float)
    keep = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), CELL_TRACE_POINTS)).astype(int)) \
        if len(steps) else np.array([], int)
    return {"steps": steps[keep], "lambda": lam[:, keep] if lam.ndim == 2 else lam, "burnin": config.burnin}


def run_cell(unit: tuple, cancel) -> Cell:
    """One sweep cell as an executor unit: (task source, SGLDConfig dict, (ε, γ, multiplier))."""
    from .executor import cached_task

    source, config, point = unit
    return run_cell_on(cached_task(source), SGLDConfig.from_dict(config), point, cancel)


def _sweep_on(executor, task: LLCTask, grid: SweepGrid, pilot: SGLDConfig, cancel, source) -> Iterator[Cell]:
    from .executor import UnitFailed

    if source is None:
        raise ConfigError("a sweep on an executor needs the task's source (a toy spec or checkpoint path)")
    points = grid.points()
    units = [(source, cell_config(pilot, *p, task.n).to_dict(), p) for p in points]
    for index, outcome in executor.map_unordered(run_cell, units, cancel):
        if isinstance(outcome, UnitFailed):
            eps, gamma, mult = points[index]
            base = pilot.nbeta if pilot.nbeta is not None else default_nbeta(task.n)
            yield Cell(eps, gamma, mult, base * mult, math.nan, math.nan, "error", ["error"], math.nan, 0.0,
                       completed=False, error=outcome.error)
        else:
            yield outcome


def mean_mala(result) -> float:
    """MALA acceptance averaged over the chains that measured it; NaN if none did."""
    values = [m for m in result.diagnostics.get("mala_acceptance") or [] if m is not None and not math.isnan(m)]
    return float(np.mean(values)) if values else math.nan
