"""Background jobs for a UI: long work runs in a worker process; the page polls a snapshot.

No streamlit here. A page owns a `JobSlot` per browser session and polls a job's `peek()`;
the work itself runs in a warm worker process (`llc_core.workers`), never on the server's
GIL, after the server-wide `RunQueue` gave it a slot (`llc_core.runqueue`). In the server,
one thread per job waits for the slot, hands the work to a worker and files the messages
coming back (live snapshots, sweep cells, epochs) where `peek()`/`view()` read them.

`Job` itself runs a callable in a thread (for small in-process work and tests); the
dashboard's jobs are `ProcessJob`s: `EstimateJob`, `SweepJob`, `AutoCalibrateJob`,
`VariabilityJob`, `TrainJob`, `DimensionsJob`.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from .config import SGLDConfig
from .limits import LIVE_POINTS
from .runqueue import RunQueue, default_limit
from .sampler import SGLDRun
from .task import LLCTask
from .trace import DIAG_ROWS, RunView
from .workers import WorkerDied, WorkerPool, default_warm

SNAPSHOT_INTERVAL = 0.25  # s between live snapshots a worker sends: ≤ 4/s, the page polls at 1/s
PROGRESS_INTERVAL = 0.2  # s between the sweep/training progress records a worker forwards
STOP_GRACE = 0.5  # s a worker gets to return its partial result after Stop before it is killed
RECEIVE_POLL = 0.05  # s the server thread waits for a message before rechecking Stop


class WorkerFailed(RuntimeError):
    """An exception inside the worker, carried back as its text ("Type: message")."""

    def __init__(self, text: str, details: str = ""):
        super().__init__(text)
        self.details = details


class Job:
    """Runs `work(cancel, publish)` in a daemon thread; `publish(update)` stores the latest update."""

    def __init__(self, work: Callable[[threading.Event, Callable[[Any], None]], Any], label: str = "job"):
        self.label = label
        self._work = work
        self.cancel = threading.Event()
        self._lock = threading.Lock()
        self.state = "pending"  # pending | queued | running | done | stopped | failed
        self.update: Any = None
        self.result: Any = None
        self.error: str | None = None
        self.details = ""
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
                remote = isinstance(exc, (WorkerFailed, WorkerDied))
                self.error = str(exc) if remote else f"{type(exc).__name__}: {exc}"
                self.details = getattr(exc, "details", "") or traceback.format_exc()
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
        """True until the job ended (also while it waits in the queue: Stop applies)."""
        return self.state in ("pending", "queued", "running")

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def peek(self):
        """(state, latest update, result, error) read together."""
        with self._lock:
            return self.state, self.update, self.result, self.error

    def queue_position(self) -> int:
        """0 unless the job waits for a slot; then its place in line (1 = next)."""
        return 0


class JobRunner:
    """The server-wide part: the run limit with its fair queue, and the warm worker processes.
    One per server process (the dashboard keeps it in `st.cache_resource`)."""

    def __init__(self, limit: int | None = None, warm: int | None = None):
        self.queue = RunQueue(limit)
        self.pool = WorkerPool(default_warm(self.queue.limit) if warm is None else warm)

    def start(self) -> "JobRunner":
        """Start the warm workers now (in the background), so the first Run does not wait for torch
        to import."""
        self.pool.prestart_in_background()
        return self

    def close(self) -> None:
        self.pool.close()


_default_runner: JobRunner | None = None
_default_lock = threading.Lock()


def default_runner() -> JobRunner:
    """The process-wide runner for jobs started outside a JobSlot that names one."""
    global _default_runner
    with _default_lock:
        if _default_runner is None:
            _default_runner = JobRunner(default_limit())
        return _default_runner


class ProcessJob(Job):
    """Runs `function(*args, cancel=, emit=)` (module-level, picklable) in a worker process once
    the queue grants a slot. `emit(kind, value)` in the worker arrives as `_receive(kind, value)`
    here. Stop: the worker's cancel event, then a kill after STOP_GRACE."""

    def __init__(self, function: Callable, args: tuple, label: str):
        self._function, self._args = function, args
        self.runner: JobRunner | None = None
        self.owner: object = None  # whose slot count this run adds to (the JobSlot)
        self.ticket = None
        self.worker_pid: int | None = None
        self.granted_at: float | None = None
        super().__init__(self._drive, label=label)

    def start(self) -> "ProcessJob":
        self.runner = self.runner or default_runner()
        self.owner = self if self.owner is None else self.owner
        self.ticket = self.runner.queue.submit(self.owner)  # in the caller's thread: the place is taken now
        self.started = time.monotonic()
        self.state = "running" if self.ticket.granted else "queued"
        self._thread.start()
        return self

    def queue_position(self) -> int:
        if self.state != "queued" or self.ticket is None:
            return 0
        return self.runner.queue.position(self.ticket)

    def _drive(self, cancel, publish):
        queue = self.runner.queue
        try:
            if not queue.wait(self.ticket, cancel):
                return self._partial()  # Stop while queued: nothing ran
            with self._lock:
                self.state, self.granted_at = "running", time.monotonic()
            worker = self.runner.pool.take()
            self.worker_pid = worker.pid
            try:
                worker.send(self._function, self._args)
                return self._follow(worker, cancel, publish)
            finally:
                worker.finish()
        finally:
            queue.release(self.ticket)

    def _follow(self, worker, cancel, publish):
        stop_sent = None
        while True:
            if cancel.is_set() and stop_sent is None:
                worker.cancel.set()
                stop_sent = time.monotonic()
            if stop_sent is not None and time.monotonic() - stop_sent > STOP_GRACE:
                worker.kill()  # it did not wind down in time: end it, keep what arrived
                return self._partial()
            try:
                message = worker.receive(RECEIVE_POLL)
            except WorkerDied:
                if cancel.is_set():
                    return self._partial()
                raise
            if message is None:
                continue
            kind, value = message
            if kind == "result":
                return value
            if kind == "error":
                raise WorkerFailed(*value)
            self._receive(kind, value, publish)

    def _receive(self, kind: str, value, publish) -> None:
        publish(value)

    def _partial(self):
        """The result of a job stopped before its worker returned one."""
        return None


def throttled(emit, interval: float):
    """emit(kind, value) at most once per `interval` s per kind; `force=True` sends anyway."""
    last: dict = {}

    def send(kind, value, force: bool = False):
        now = time.monotonic()
        if force or now - last.get(kind, -1e9) >= interval:
            last[kind] = now
            emit(kind, value)

    return send


class JobSlot:
    """The jobs of one browser session, by name; starting one stops its predecessor.
    Its jobs share the server's `runner` (run limit, fair queue, workers); the slot is their owner
    in the queue, so one session's jobs count together."""

    def __init__(self, runner: JobRunner | None = None):
        self.runner = runner
        self.jobs: dict[str, Job] = {}

    def start(self, name: str, job: Job) -> Job:
        self.stop(name)
        if isinstance(job, ProcessJob):
            job.runner, job.owner = self.runner or default_runner(), self
        self.jobs[name] = job.start()
        return job

    def get(self, name: str) -> Job | None:
        return self.jobs.get(name)

    def stop(self, name: str | None = None, wait: float = 0.0) -> None:
        chosen = [job for key, job in list(self.jobs.items()) if name is None or key == name]
        for job in chosen:  # all told first, so they wind down together
            job.stop()
        if wait:
            deadline = time.monotonic() + wait
            for job in chosen:
                job.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Called when the session ends: stop everything, wait for the workers to end."""
        self.stop(wait=5.0)


def live_points(view: RunView) -> RunView:
    """The view with at most LIVE_POINTS points per trace (every k-th): Plotly re-sends figures
    whole, and a run may keep up to MAX_TRACE_POINTS for its result."""
    every = -(-len(view.steps) // (LIVE_POINTS - 1))  # one place left for with_latest
    every_diag = -(-len(view.diag_steps) // (LIVE_POINTS - 1))
    if every <= 1 and every_diag <= 1:
        return view
    keep = slice(len(view.steps) - 1 - (len(view.steps) - 1) // every * every, None, every)  # ends on the latest
    keep_d = slice(len(view.diag_steps) - 1 - (len(view.diag_steps) - 1) // every_diag * every_diag, None, every_diag)
    return replace(view, steps=view.steps[keep], loss=view.loss[:, keep], lam=view.lam[:, keep],
                   pooled=view.pooled[keep], diag_steps=view.diag_steps[keep_d],
                   diag={k: v[:, keep_d] for k, v in view.diag.items()})


def with_latest(view: RunView) -> RunView:
    """The view ending on the latest Progress record: the thinned traces keep every k-th step,
    so without it the live λ̂ would stop short of the number the page shows beside it."""
    p = view.progress
    if p is None or (len(view.steps) and view.steps[-1] >= p.step):
        return view
    diag = {"mala": p.mala, "distance": p.distance, "drift_norm": p.drift_norm, "noise_norm": p.noise_norm}
    return replace(view, steps=np.append(view.steps, p.step),
                   loss=np.column_stack([view.loss, p.window_losses[:, -1] - view.init_loss]),
                   lam=np.column_stack([view.lam, p.lambda_chain]), pooled=np.append(view.pooled, p.lambda_hat),
                   diag_steps=np.append(view.diag_steps, p.step),
                   diag={row: np.column_stack([view.diag[row], diag[row]]) for row in DIAG_ROWS})


def estimate_in_worker(task: LLCTask, config: SGLDConfig, *, cancel, emit):
    """Worker side of EstimateJob: sample, send the run's own view (≤ 1 per SNAPSHOT_INTERVAL)."""
    run = SGLDRun(task, config, cancel=cancel)
    send = throttled(emit, SNAPSHOT_INTERVAL)
    first = True
    for _ in run:
        send("view", with_latest(live_points(run.view())), force=first)  # the first point goes out at once
        first = False
    emit("view", with_latest(live_points(run.view())))  # the final traces, before the result
    return run.result


def page_view(view: RunView) -> dict:
    """The layout the pages draw from (pages/live.py, compare.py)."""
    return {
        "progress": view.progress, "init_loss": view.init_loss, "burnin": view.burnin,
        "total_steps": view.total_steps, "chains": view.chains, "nbeta": view.nbeta,
        "loss_steps": view.steps, "loss": view.loss, "lam_steps": view.steps, "lam": view.lam,
        "pooled": view.pooled, "diag_steps": view.diag_steps,
        "diag": np.stack([view.diag[row] for row in DIAG_ROWS]), "diverged_steps": dict(view.diverged_steps),
    }


class EstimateJob(ProcessJob):
    """An SGLD run in a worker process; `view()` is the latest live snapshot it sent."""

    def __init__(self, task: LLCTask, config: SGLDConfig):
        self.run = SGLDRun(task, config)  # validates the config now, in the caller's thread; nbeta for the page
        self.config = config
        self._view = page_view(self.run.view())  # empty until the worker sends its first
        self.first_point_at: float | None = None
        super().__init__(estimate_in_worker, (task, config), label="estimate")

    def _receive(self, kind, value, publish):
        with self._lock:
            if self.first_point_at is None and value.progress is not None:
                self.first_point_at = time.monotonic()
            self._view = page_view(value)
            self.update = value.progress

    def view(self) -> dict:
        """The latest live traces, plus when the first point came (s after start)."""
        with self._lock:
            first = self.first_point_at
            return {**self._view, "first_point_seconds": (first - self.started) if first else None}


def sweep_in_worker(task, grid, pilot, *, cancel, emit):
    """Worker side of SweepJob: each finished cell goes back at once."""
    from .sweep import sweep

    send = throttled(emit, PROGRESS_INTERVAL)
    cells = []
    for cell in sweep(task, grid, pilot, cancel, lambda p: send("progress", p)):
        cells.append(cell)
        emit("cell", cell)
    return cells


class SweepJob(ProcessJob):
    """A calibration sweep: cells fill in one by one; the published update is the running cell's
    latest Progress."""

    def __init__(self, task: LLCTask, grid, pilot: SGLDConfig):
        grid.validate(pilot, task.n)  # in the caller's thread, so bad input is reported at once
        self.task, self.grid, self.pilot = task, grid, pilot
        self.total_cells = len(grid.points())
        self.cells: list = []
        super().__init__(*self._worker_call(), label="sweep")

    def _worker_call(self):
        return sweep_in_worker, (self.task, self.grid, self.pilot)

    def _receive(self, kind, value, publish):
        with self._lock:
            if kind == "cell":
                self.cells.append(value)
            else:
                self.update = value

    def _partial(self):
        return self.snapshot_cells()

    def snapshot_cells(self) -> list:
        with self._lock:
            return list(self.cells)

    def fraction(self) -> float:
        """Cells done plus the running cell's share."""
        state, progress, _, _ = self.peek()
        done = len(self.snapshot_cells())
        within = progress.step / max(1, progress.total_steps) if (progress is not None and state == "running") else 0
        return min(1.0, (done + (within if done < self.total_cells else 0)) / self.total_cells)


def auto_calibrate_in_worker(task, budget_seconds, seed, base, known_cells=(), *, cancel, emit):
    from .calibrate import auto_calibrate

    send = throttled(emit, PROGRESS_INTERVAL)
    return auto_calibrate(task, budget_seconds=budget_seconds, seed=seed, cancel=cancel, base=base,
                          known_cells=list(known_cells),
                          on_cell=lambda cell: emit("cell", cell), on_progress=lambda p: send("progress", p),
                          on_attempt=lambda attempt: emit("attempt", attempt))


class AutoCalibrateJob(SweepJob):
    """`auto_calibrate`: pilot cells along the ε ladder, then full-length runs; `attempts` fill in
    as those runs finish. The grid holds the start cell only: the bracket decides where to go."""

    def __init__(self, task: LLCTask, budget_seconds: float | None = None, seed: int = 0,
                 base: SGLDConfig | None = None, known_cells: list | None = None):
        from .calibrate import DEFAULT_BUDGET_SECONDS, MAX_PILOT_CELLS, pilot_config
        from .sweep import SweepGrid

        self.attempts: list = []
        self.budget_seconds = budget_seconds or DEFAULT_BUDGET_SECONDS
        self.seed, self.base = seed, (base or task.defaults).validate(task.n)
        self.known_cells = list(known_cells or [])  # (config, Cell) swept before: reused, not rerun
        super().__init__(task, SweepGrid((self.base.epsilon,), (self.base.gamma,)), pilot_config(task, self.base))
        self.total_cells = MAX_PILOT_CELLS  # an upper bound: the bracket stops once it has its answer

    def _worker_call(self):
        return auto_calibrate_in_worker, (self.task, self.budget_seconds, self.seed, self.base, self.known_cells)

    def _receive(self, kind, value, publish):
        if kind == "attempt":
            with self._lock:
                self.attempts.append(value)
        else:
            super()._receive(kind, value, publish)

    def _partial(self):
        return None

    @property
    def phase(self) -> str:
        """"pilot" while ladder cells run, "confirm" once a run longer than a pilot cell is going."""
        _, progress, _, _ = self.peek()
        longer = progress is not None and progress.total_steps > self.pilot.total_steps
        return "confirm" if self.attempts or longer else "pilot"


class BatchJob(Job):
    """Items processed in order by `work_one(item, cancel)` in a thread; results (not None)
    collect in `rows`. (The dashboard's experiment is VariabilityJob, in a worker process.)"""

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


def variability_in_worker(metas: list, overrides: dict, *, cancel, emit):
    """Worker side of VariabilityJob: one cached-or-computed estimate per checkpoint."""
    from .checkpoints import load_task
    from .variability import estimate_cached

    rows = []
    for i, meta in enumerate(metas):
        if cancel.is_set():
            break
        emit("item", i)
        row = estimate_cached(meta, load_task, overrides, cancel)
        if row is not None:
            rows.append(row)
            emit("row", row)
    return rows


class VariabilityJob(ProcessJob):
    """The task-variability experiment over checkpoints (`metas`), in a worker process."""

    def __init__(self, metas: list, overrides: dict):
        self.items = list(metas)
        self.rows: list = []
        super().__init__(variability_in_worker, (self.items, dict(overrides)), label="variability")

    def _receive(self, kind, value, publish):
        with self._lock:
            if kind == "row":
                self.rows.append(value)
            else:
                self.update = value  # index of the checkpoint being worked on

    def _partial(self):
        return self.snapshot_rows()

    def snapshot_rows(self) -> list:
        with self._lock:
            return list(self.rows)


def train_in_worker(train_args: dict, *, cancel, emit):
    from .training import train_to_checkpoint

    return train_to_checkpoint(**train_args, cancel=cancel, on_epoch=lambda p: emit("epoch", p))


class TrainJob(ProcessJob):
    """Trains a model and saves it as a checkpoint; `history` holds (epoch, train loss)."""

    def __init__(self, train_args: dict):
        self.train_args = train_args
        self.history: list[tuple[int, float]] = []
        self.epochs = train_args.get("epochs")
        super().__init__(train_in_worker, (dict(train_args),), label="train")

    def _receive(self, kind, p, publish):
        with self._lock:
            self.history.append((p.epoch, p.train_loss))
            self.epochs = p.epochs
            self.update = p

    def snapshot_history(self) -> list:
        with self._lock:
            return list(self.history)


def dimensions_in_worker(task: LLCTask, settings, *, cancel, emit):
    """Worker side of DimensionsJob: λ̂, the Hessian, d_int90 (llc_core.dimensions), each finished
    measure sent back at once, progress at most every PROGRESS_INTERVAL."""
    from .dimensions import measure_dimensions

    send = throttled(emit, PROGRESS_INTERVAL)
    return measure_dimensions(task, settings, should_stop=cancel.is_set,
                              on_progress=lambda measure, fraction, text: send("progress", (measure, fraction, text)),
                              on_part=lambda part: emit("part", part))


class DimensionsJob(ProcessJob):
    """λ̂ beside the Hessian spectrum and the intrinsic dimension of one model, in a worker process.
    The update is (measure, fraction, text); `part()` the measures finished so far."""

    def __init__(self, task: LLCTask, settings):
        self.settings = settings.validate(task)  # bad input is reported in the caller's thread
        self._part: dict = {}
        super().__init__(dimensions_in_worker, (task, settings), label="dimensions")

    def _receive(self, kind, value, publish):
        with self._lock:
            if kind == "part":
                self._part = value
            else:
                self.update = value

    def _partial(self):
        return {**self.part(), "completed": False} if self.part() else None

    def part(self) -> dict:
        with self._lock:
            return dict(self._part)
