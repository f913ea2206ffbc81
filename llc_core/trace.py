"""Bounded-memory traces: a fixed number of evenly spaced points, however long the run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class ThinnedTrace:
    """Keeps at most `max_points` rows of (step, values[rows]), evenly spaced in time.

    When full, every other point is dropped and the spacing doubles, so a chain of any
    length keeps a uniform picture of its whole history in fixed memory.
    """

    def __init__(self, rows: int, max_points: int):
        self.max_points = max_points
        self._steps = np.zeros(max_points, dtype=np.int64)
        self._values = np.full((rows, max_points), np.nan)
        self.size = 0
        self.stride = 1
        self._seen = 0

    def add(self, step: int, values) -> None:
        """Offer the point (step, values); `values` may be a function, called only if kept."""
        take = self._seen % self.stride == 0
        self._seen += 1
        if not take:
            return
        if self.size == self.max_points:
            self._halve()
            if (self._seen - 1) % self.stride:
                return
        self._steps[self.size] = step
        self._values[:, self.size] = values() if callable(values) else values
        self.size += 1

    def _halve(self) -> None:
        kept = (self.size + 1) // 2
        self._steps[:kept] = self._steps[: self.size : 2]
        self._values[:, :kept] = self._values[:, : self.size : 2]
        self._values[:, kept:] = np.nan
        self.size = kept
        self.stride *= 2

    @property
    def steps(self) -> np.ndarray:
        return self._steps[: self.size].copy()

    @property
    def values(self) -> np.ndarray:
        return self._values[:, : self.size].copy()


# Rows of the diagnostics trace, in this order; each holds one value per chain.
DIAG_ROWS = ("mala", "distance", "drift_norm", "noise_norm")


@dataclass
class RunView:
    """A picklable snapshot of a run (numpy only) that a live page draws from directly."""

    step: int
    total_steps: int
    burnin: int
    chains: int
    init_loss: float | None
    nbeta: float
    nbeta_rule: str
    device: str
    sampler: str
    path: str
    steps: np.ndarray  # (k,) steps of the loss/λ̂ traces
    loss: np.ndarray  # (C, k) L_m(w_t) − L_n(w*), NaN after a chain diverged
    lam: np.ndarray  # (C, k) running λ̂ per chain
    pooled: np.ndarray  # (k,) running pooled λ̂ (mean over the chains with a finite λ̂)
    diag_steps: np.ndarray  # (k2,)
    diag: dict  # DIAG_ROWS -> (C, k2)
    diverged_steps: dict  # chain -> step it blew up
    progress: object | None  # the latest Progress record


class RunTraces:
    """The run's thinned traces, kept once: raw minibatch losses, running λ̂ per chain, and the
    diagnostics rows of DIAG_ROWS. The result and the live view are both read from here."""

    def __init__(self, chains: int, max_points: int):
        self.chains = chains
        self.loss = ThinnedTrace(chains, max_points)
        self.lam = ThinnedTrace(chains, max_points)
        self.diag = ThinnedTrace(len(DIAG_ROWS) * chains, max_points)

    def diag_rows(self) -> dict:
        values = self.diag.values.reshape(len(DIAG_ROWS), self.chains, -1)
        return dict(zip(DIAG_ROWS, values))

    def as_dict(self) -> dict:
        """The `LLCResult.traces` layout: raw L_m in "loss", one key per diagnostics row."""
        return {"steps": self.loss.steps, "loss": self.loss.values, "lambda": self.lam.values,
                "diag_steps": self.diag.steps, **self.diag_rows()}


def pooled_trace(lam: np.ndarray) -> np.ndarray:
    """Mean over chains of the finite running λ̂ at each point (NaN where none is finite);
    diverged chains carry NaN in `lam` from the step they blew up, so they drop out."""
    finite = np.isfinite(lam)
    counts = finite.sum(axis=0)
    sums = np.where(finite, lam, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
