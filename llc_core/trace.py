"""Bounded-memory traces: a fixed number of evenly spaced points, however long the run."""

from __future__ import annotations

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
