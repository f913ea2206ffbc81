"""Sweeps: run a grid of ε × γ (× an nβ multiplier) with short chains, one `Cell` per grid point.

`calibrate.py` reads a sweep and recommends settings; the Calibrate page, `python -m llc_core sweep`
and auto-calibrate's pilot all run their grids through `sweep`.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .config import ConfigError, SGLDConfig, default_nbeta
from .limits import MAX_SWEEP_CELLS, MAX_SWEEP_CHAIN_STEPS
from .sampler import SGLDRun
from .task import LLCTask

# Flags that disqualify a cell: it diverged, went negative, started with a spike, was still
# drifting, or its step size was too large for the posterior (MALA far below 0.9).
DISQUALIFYING = ("diverged", "negative", "init_spike", "not_stationary", "low_mala", "loss_below_init")


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
    status: str  # ok | warning | negative | diverged (the run's status)
    flags: list[str]
    mala: float  # mean over chains, NaN if not measured
    seconds: float
    completed: bool = True

    @property
    def verdict(self) -> str:
        """What the heatmap shows: diverged, negative, unstable (any disqualifying flag) or ok."""
        if self.status in ("diverged", "negative"):
            return self.status
        return "unstable" if self.disqualified else "ok"

    @property
    def disqualified(self) -> bool:
        return not self.completed or any(code in DISQUALIFYING for code in self.flags)


def cell_config(pilot: SGLDConfig, epsilon: float, gamma: float, multiplier: float, n: int) -> SGLDConfig:
    base = pilot.nbeta if pilot.nbeta is not None else default_nbeta(n)
    return pilot.replace(epsilon=float(epsilon), gamma=float(gamma), nbeta=float(base * multiplier))


def sweep(task: LLCTask, grid: SweepGrid, pilot: SGLDConfig, cancel=None,
          on_progress=None) -> Iterator[Cell]:
    """Run every cell of the grid in turn (same seed for all: differences are the settings')."""
    grid.validate(pilot, task.n)
    for eps, gamma, mult in grid.points():
        if cancel is not None and cancel.is_set():
            return
        config = cell_config(pilot, eps, gamma, mult, task.n)
        run = SGLDRun(task, config, cancel=cancel)
        start = time.perf_counter()
        result = run.run(on_progress)
        if not result.completed and cancel is not None and cancel.is_set():
            return  # stopped mid-cell: a partial cell would look like a real result
        yield Cell(eps, gamma, mult, result.nbeta, result.lambda_hat, result.lambda_hat_std, result.status,
                   [f.code for f in result.warnings], mean_mala(result), time.perf_counter() - start,
                   result.completed)


def mean_mala(result) -> float:
    """MALA acceptance averaged over the chains that measured it; NaN if none did."""
    values = [m for m in result.diagnostics.get("mala_acceptance") or [] if m is not None and not math.isnan(m)]
    return float(np.mean(values)) if values else math.nan
