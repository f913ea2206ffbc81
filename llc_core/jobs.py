"""Background jobs for a UI: run work in a thread, poll a snapshot, stop it at any moment.

No streamlit here: a page owns a `JobSlot` per session and polls `snapshot()`; the worker
thread never touches the UI. `EstimateJob` turns the sampler's Progress records into live,
bounded traces a plot can redraw whole on every poll.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .config import SGLDConfig
from .limits import LIVE_POINTS
from .sampler import Progress, SGLDRun
from .task import LLCTask
from .trace import ThinnedTrace



class Job:
    """Runs `work(cancel, publish)` in a daemon thread; `publish(update)` stores the latest update."""

    def __init__(self, work: Callable[[threading.Event, Callable[[Any], None]], Any], label: str = "job"):
        self.label = label
        self._work = work
        self.cancel = threading.Event()
        self._lock = threading.Lock()
        self.state = "pending"  # pending | running | done | stopped | failed
        self.update: Any = None
        self.result: Any = None
        self.error: str | None = None
        self.started = self.finished = None
        self._thread = threading.Thread(target=self._main, name=f"llc-{label}", daemon=True)

    def start(self) -> "Job":
        self.started = time.monotonic()
        self.state = "running"
        self._thread.start()
        return self

    def _main(self):
        try:
            result = self._work(self.cancel, self._publish)
            with self._lock:
                self.result = result
                self.state = "stopped" if self.cancel.is_set() else "done"
        except Exception as exc:  # shown on the page; the app goes on
            with self._lock:
                self.error = f"{type(exc).__name__}: {exc}"
                self.details = traceback.format_exc()
                self.state = "failed"
        finally:
            self.finished = time.monotonic()

    def _publish(self, update):
        with self._lock:
            self.update = update

    def stop(self, wait: float = 0.0) -> None:
        self.cancel.set()
        if wait:
            self._thread.join(wait)

    @property
    def running(self) -> bool:
        return self.state == "running"

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def peek(self):
        """(state, latest update, result, error) read together."""
        with self._lock:
            return self.state, self.update, self.result, self.error


class JobSlot:
    """The jobs of one browser session, by name; starting one stops its predecessor."""

    def __init__(self):
        self.jobs: dict[str, Job] = {}

    def start(self, name: str, job: Job) -> Job:
        self.stop(name)
        self.jobs[name] = job.start()
        return job

    def get(self, name: str) -> Job | None:
        return self.jobs.get(name)

    def stop(self, name: str | None = None, wait: float = 0.0) -> None:
        for key, job in list(self.jobs.items()):
            if name is None or key == name:
                job.stop(wait)

    def close(self) -> None:
        """Called when the session ends: stop everything and let the threads finish."""
        self.stop(wait=5.0)


@dataclass
class LiveRun:
    """Everything a page needs to draw a running (or finished) estimate."""

    chains: int
    burnin: int
    total_steps: int
    init_loss: float | None = None
    progress: Progress | None = None
    loss: ThinnedTrace = None
    lam: ThinnedTrace = None
    pooled: ThinnedTrace = None
    diag: ThinnedTrace = None  # rows: MALA, distance, drift norm, noise norm (C each)
    first_point_at: float | None = None
    diverged_steps: dict = field(default_factory=dict)  # chain -> step it blew up

    def __post_init__(self):
        c = self.chains
        self.loss = ThinnedTrace(c, LIVE_POINTS)
        self.lam = ThinnedTrace(c, LIVE_POINTS)
        self.pooled = ThinnedTrace(1, LIVE_POINTS)
        self.diag = ThinnedTrace(4 * c, LIVE_POINTS)


class EstimateJob(Job):
    """An SGLD run on its own copy of the model, feeding a LiveRun."""

    def __init__(self, task: LLCTask, config: SGLDConfig):
        self.run = SGLDRun(task, config)  # validates the config now, in the caller's thread
        self.live = LiveRun(config.chains, config.burnin, config.total_steps)
        self._live_lock = threading.Lock()
        super().__init__(self._sample, label="estimate")

    def _sample(self, cancel, publish):
        self.run.cancel = cancel
        for progress in self.run:
            with self._live_lock:
                self._absorb(progress)
            publish(progress)
        return self.run.result

    def _absorb(self, p: Progress):
        live = self.live
        if live.first_point_at is None:
            live.first_point_at = time.monotonic()
            live.init_loss = self.run.init_loss
        for i, step in enumerate(p.window_steps):
            live.loss.add(int(step), p.window_losses[:, i] - self.run.init_loss)
        live.lam.add(p.step, p.lambda_chain)
        live.pooled.add(p.step, [p.lambda_hat])
        live.diag.add(p.step, np.concatenate([p.mala, p.distance, p.drift_norm, p.noise_norm]))
        for c in np.flatnonzero(~p.alive):
            live.diverged_steps.setdefault(int(c), p.step)
        live.progress = p

    def view(self) -> dict:
        """A consistent copy of the live traces for drawing."""
        with self._live_lock:
            live = self.live
            return {
                "progress": live.progress, "init_loss": live.init_loss, "burnin": live.burnin,
                "total_steps": live.total_steps, "chains": live.chains,
                "loss_steps": live.loss.steps, "loss": live.loss.values,
                "lam_steps": live.lam.steps, "lam": live.lam.values, "pooled": live.pooled.values[0],
                "diag_steps": live.diag.steps, "diag": live.diag.values.reshape(4, live.chains, -1),
                "diverged_steps": dict(live.diverged_steps),
                "first_point_seconds": (live.first_point_at - self.started) if live.first_point_at else None,
            }


class SweepJob(Job):
    """A calibration sweep: cells fill in one by one; the published update is the running cell's
    latest Progress."""

    def __init__(self, task: LLCTask, grid, pilot: SGLDConfig):
        grid.validate(pilot, task.n)  # in the caller's thread, so bad input is reported at once
        self.task, self.grid, self.pilot = task, grid, pilot
        self.total_cells = len(grid.points())
        self.cells: list = []
        super().__init__(self._work_cells, label="sweep")

    def _work_cells(self, cancel, publish):
        from .sweep import sweep

        for cell in sweep(self.task, self.grid, self.pilot, cancel, publish):
            self._add_cell(cell)
        return self.snapshot_cells()

    def _add_cell(self, cell) -> None:
        with self._lock:
            self.cells.append(cell)

    def snapshot_cells(self) -> list:
        with self._lock:
            return list(self.cells)

    def fraction(self) -> float:
        """Cells done plus the running cell's share."""
        state, progress, _, _ = self.peek()
        done = len(self.snapshot_cells())
        within = progress.step / max(1, progress.total_steps) if (progress is not None and state == "running") else 0
        return min(1.0, (done + (within if done < self.total_cells else 0)) / self.total_cells)


class BatchJob(Job):
    """Items processed in order by `work_one(item, cancel)`; results (not None) collect in `rows`."""

    def __init__(self, items: list, work_one: Callable, label: str = "batch"):
        self.items = list(items)
        self.rows: list = []
        self._work_one = work_one
        super().__init__(self._all, label=label)

    def _all(self, cancel, publish):
        for i, item in enumerate(self.items):
            if cancel.is_set():
                break
            publish(i)  # index of the item being worked on
            row = self._work_one(item, cancel)
            if row is not None:
                with self._lock:
                    self.rows.append(row)
        return self.snapshot_rows()

    def snapshot_rows(self) -> list:
        with self._lock:
            return list(self.rows)


class TrainJob(Job):
    """Trains a model and saves it as a checkpoint; `history` holds (epoch, train loss)."""

    def __init__(self, train_args: dict):
        self.train_args = train_args
        self.history: list[tuple[int, float]] = []
        self.epochs = train_args.get("epochs")
        super().__init__(self._train, label="train")

    def _train(self, cancel, publish):
        from .training import train_to_checkpoint

        def on_epoch(p):
            with self._lock:
                self.history.append((p.epoch, p.train_loss))
                self.epochs = p.epochs
            publish(p)

        return train_to_checkpoint(**self.train_args, cancel=cancel, on_epoch=on_epoch)

    def snapshot_history(self) -> list:
        with self._lock:
            return list(self.history)


class AutoCalibrateJob(SweepJob):
    """`auto_calibrate`: pilot cells along the ε ladder, then full-length runs; `attempts` fill in
    as those runs finish. The grid holds the start cell only: the bracket decides where to go."""

    def __init__(self, task: LLCTask, budget_seconds: float | None = None, seed: int = 0):
        from .calibrate import DEFAULT_BUDGET_SECONDS, MAX_PILOT_CELLS, pilot_config
        from .sweep import SweepGrid

        self.attempts: list = []
        self.budget_seconds = budget_seconds or DEFAULT_BUDGET_SECONDS
        self.seed = seed
        pilot = pilot_config(task)
        super().__init__(task, SweepGrid((task.defaults.epsilon,), (task.defaults.gamma,)), pilot)
        self.total_cells = MAX_PILOT_CELLS  # an upper bound: the bracket stops once it has its answer

    @property
    def phase(self) -> str:
        """"pilot" while ladder cells run, "confirm" once a run longer than a pilot cell is going."""
        _, progress, _, _ = self.peek()
        longer = progress is not None and progress.total_steps > self.pilot.total_steps
        return "confirm" if self.attempts or longer else "pilot"

    def _work_cells(self, cancel, publish):
        from .calibrate import auto_calibrate

        def on_attempt(attempt):
            with self._lock:
                self.attempts.append(attempt)

        return auto_calibrate(self.task, budget_seconds=self.budget_seconds, seed=self.seed, cancel=cancel,
                              on_cell=self._add_cell, on_progress=publish, on_attempt=on_attempt)
