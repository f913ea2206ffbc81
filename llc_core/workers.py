"""Worker processes for long work started from a UI: one job per process, started warm.

Workers are forked from a forkserver that imported torch and llc_core once (`_start_context`;
spawned on a GPU machine, each importing torch itself, seconds). A `WorkerPool` keeps a few
idle and ready, so a run starts in milliseconds. `take()` hands one out and starts its
replacement. The job is sent as a pickled `(function, args)`; the
function runs as `function(*args, cancel=event, emit=send)` in the worker, where `emit(kind,
value)` sends a message back and `cancel` is a cross-process event set by Stop. The worker
then sends ("result", value) or ("error", (text, traceback)) and exits, so a job never
inherits another's state and a stuck one can simply be killed.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import threading
import time
import traceback

from . import processes

# arviz-stats too: llc_core.convergence imports it on first use, which in a worker is the run's first
# live R-hat, a stall of the sampler mid-run unless the warm worker has it already.
WARM_IMPORTS = ("torch", "numpy", "arviz_stats.base", "llc_core.sampler", "llc_core.jobs", "llc_core.sweep",
                "llc_core.calibrate", "llc_core.training", "llc_core.variability", "llc_core.checkpoints",
                "llc_core.toys")


def _start_context():
    """forkserver where there is no GPU: one clean process imports WARM_IMPORTS once, and each worker
    is forked from it (tens of ms, sharing its pages) instead of spawned and importing torch again
    (~3.4 CPU-s a worker; a server spends that on every run, since each run ends its worker).
    spawn with a GPU (a forked child can use CUDA only if its parent never did, which the import of
    a future module could break silently) and where forkserver does not exist. Never plain fork:
    it would copy the server's threads and locks mid-use."""
    import torch

    if torch.cuda.is_available() or "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(list(WARM_IMPORTS))
    return context


CONTEXT = _start_context()
MAX_WARM = 4  # idle workers kept (spawned, each holds torch's ~0.3 GB); more than 4 spares never helped a 2-core run
ENV_PREFIX = "LLC_"
JOIN_WAIT = 2.0  # seconds to wait for a killed worker to be reaped
# Seconds between handing out a warm worker and starting its replacement. Under spawn (GPU machines)
# the replacement's start (importing torch: ~3 CPU-seconds) would otherwise compete on a small machine
# with the run just started, the server and the browser drawing its first point; a fork from the
# forkserver costs ~25 ms. 0 when none is left idle.
REFILL_DELAY = 1.5


def default_warm(limit: int) -> int:
    """`LLC_WARM_WORKERS` if set (0 to MAX_WARM idle worker processes kept ready), else `limit` capped at MAX_WARM.
    0 starts one per run instead: ~25 ms forked from the forkserver, seconds where workers are spawned
    (a GPU machine: ~3.4 CPU-seconds and ~0.3 GB each)."""
    text = os.environ.get("LLC_WARM_WORKERS", "").strip()
    if not text:
        return min(limit, MAX_WARM)
    if not text.isdigit() or int(text) > MAX_WARM:
        raise ValueError(f"LLC_WARM_WORKERS={text!r}: expected a whole number of idle workers from 0 to {MAX_WARM}")
    return int(text)


class SharedFlag:
    """A cross-process stop flag read every SGLD step: a byte in shared memory, no lock (one
    writer, and a stale read only delays the stop by a step), unlike multiprocessing.Event."""

    def __init__(self):
        self._value = CONTEXT.RawValue("b", 0)

    def set(self) -> None:
        self._value.value = 1

    def is_set(self) -> bool:
        return bool(self._value.value)


def worker_main(conn, cancel, torch_threads: int) -> None:
    """Body of a worker process: import, wait for one job, run it, report, exit."""
    import importlib

    import torch

    torch.set_num_threads(torch_threads)
    for name in WARM_IMPORTS:
        importlib.import_module(name)
    conn.send_bytes(pickle.dumps(("ready", None)))
    try:
        payload = conn.recv_bytes()
    except (EOFError, OSError, KeyboardInterrupt):
        return  # the pool closed (or the server ended) before a job came

    def emit(kind: str, value) -> None:
        conn.send_bytes(pickle.dumps((kind, value), protocol=pickle.HIGHEST_PROTOCOL))

    try:
        function, args, env = pickle.loads(payload)
        _adopt_environment(env)
        emit("result", function(*args, cancel=cancel, emit=emit))
    except BaseException as exc:  # reported to the page; the worker then exits
        emit("error", (f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    finally:
        conn.close()


def project_environment() -> dict:
    """The server's LLC_* settings now (user models, caches, data folders, downloads), sent with
    each job: a warm worker was started earlier and must work with the settings of the moment."""
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}


def _adopt_environment(env: dict) -> None:
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX) and k not in env]:
        del os.environ[key]
    os.environ.update(env)


class WorkerDied(RuntimeError):
    """The worker process ended without sending a result (killed, crashed, out of memory)."""


class Worker:
    """The server's handle on one worker process."""

    def __init__(self, torch_threads: int = 1):
        self.conn, child = CONTEXT.Pipe()
        self.cancel = SharedFlag()
        self.proc = CONTEXT.Process(target=worker_main, args=(child, self.cancel, torch_threads),
                                    name="llc-worker", daemon=True)
        processes.start(self.proc)  # not proc.start(): the child would re-run the page script
        child.close()  # so the server sees EOF when the worker dies
        self.started = time.monotonic()
        self.ready = False

    def send(self, function, args: tuple) -> None:
        job = (function, args, project_environment())
        self.conn.send_bytes(pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))

    def receive(self, timeout: float):
        """The next message (kind, value), or None if none came within `timeout`.
        Raises WorkerDied when the process is gone with nothing left to read."""
        try:
            if not self.conn.poll(timeout):
                return None
            message = pickle.loads(self.conn.recv_bytes())
        except (EOFError, OSError):
            self.proc.join(JOIN_WAIT)
            raise WorkerDied(self.death_text()) from None
        if message[0] == "ready":
            self.ready = True
            return None
        return message

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the worker's imports are done (call before it was sent a job)."""
        deadline = time.monotonic() + timeout
        while not self.ready and time.monotonic() < deadline:
            self.receive(min(0.1, max(0.0, deadline - time.monotonic())))
        return self.ready

    def death_text(self) -> str:
        code = self.proc.exitcode
        if code is not None and code < 0:
            return f"the worker process died (signal {-code}: {signal.Signals(-code).name})"
        return f"the worker process died (exit code {code})"

    def finish(self) -> None:
        """After the result: the worker has nothing left to do, and a torch interpreter's own
        exit takes a second or more on a busy machine, so end it now."""
        self.kill()

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(JOIN_WAIT)
        self.conn.close()

    @property
    def pid(self) -> int | None:
        return self.proc.pid


class WorkerPool:
    """Idle warm workers; `take()` returns one and starts its replacement in the background."""

    def __init__(self, warm: int = 2, torch_threads: int = 1):
        self.warm = max(0, min(int(warm), MAX_WARM))
        self.torch_threads = torch_threads
        self._idle: list[Worker] = []
        self._starting = 0  # workers being started outside the lock
        self._lock = threading.Lock()
        self._closed = False

    def prestart(self) -> "WorkerPool":
        """Start the idle workers now (at server start), not on the first Run. A start is made
        outside the lock: the very first one waits seconds for the forkserver's imports, and
        `take()` must not wait behind it."""
        while True:
            with self._lock:
                if self._closed or len(self._idle) + self._starting >= self.warm:
                    return self
                self._starting += 1
            try:
                worker = Worker(self.torch_threads)
            except BaseException:
                with self._lock:
                    self._starting -= 1
                raise
            with self._lock:  # counted down and filed at once: wait_ready never sees a worker in neither state
                self._starting -= 1
                closed = self._closed
                if not closed:
                    self._idle.append(worker)
            if closed:
                worker.kill()
                return self

    def prestart_in_background(self) -> None:
        """`prestart()` in a thread: the caller (a page's first script run) does not wait for it."""
        threading.Thread(target=self.prestart, name="pool-prestart", daemon=True).start()

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """Block until the warm workers are started and done with their imports (start-up, benchmarks)."""
        deadline = time.monotonic() + timeout
        while self._starting and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._lock:
            idle = list(self._idle)
        return all(w.wait_ready(max(0.0, deadline - time.monotonic())) for w in idle)

    def take(self) -> Worker:
        worker = None
        with self._lock:
            while self._idle and worker is None:
                worker = self._idle.pop(0)
                if not worker.proc.is_alive():
                    worker.kill()
                    worker = None
            left = len(self._idle)
        if worker is None:
            worker = Worker(self.torch_threads)  # none warm: a cold start (ms forked, seconds spawned)
        refill = threading.Timer(REFILL_DELAY if left else 0.0, self.prestart)
        refill.name, refill.daemon = "pool-refill", True
        refill.start()
        return worker

    def idle_pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in self._idle]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()
