"""Executors for independent units of work: a sweep cell, one checkpoint × seed, one truth-suite case.

    with make_executor(workers=2) as ex:            # or ray="local" / "auto" / "host:port"
        for index, result in ex.map_unordered(fn, items, cancel=token):
            ...                                     # in completion order, as units finish

A unit is a picklable top-level function `fn(item, cancel)` taking plain data (a task source dict,
an SGLDConfig dict) and returning plain data; it rebuilds what it needs in the worker (see
`cached_task`). Every executor runs units with the same number of torch threads, so the same
seeds give the same numbers bit for bit whichever executor ran them.

Policies, the same for every executor:
- A unit that raises does not stop the others: it comes back as a `UnitFailed` (naming the unit)
  in place of its result. A worker process that dies mid-unit is reported the same way and replaced.
- Cancellation (`cancel.is_set()`): nothing more is submitted, pending units are dropped and
  running ones are stopped (in-process: through the `cancel` the unit got; pool: the worker
  processes are terminated; Ray: `ray.cancel(force=True)`). A cancelled unit is never yielded,
  so what was yielded is a clean partial result.
"""

from __future__ import annotations

import functools
import math
import multiprocessing as mp
import os
import sys
import traceback
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any, Callable, Iterable, Iterator

from .config import ConfigError

RAY_ENV = "LLC_RAY_ADDRESS"
# How often (s) a waiting executor looks at the cancel token: Stop/Ctrl-C takes effect within this.
POLL_SECONDS = 0.1
# Seconds a terminated worker gets to exit before SIGKILL (an SGLD step is milliseconds; torch
# ignores nothing on SIGTERM, so this is only a safety net).
TERMINATE_GRACE = 1.0
# Fraction of a GPU each Ray unit asks for when its device is cuda: four runs share one card.
# A default for small models (an MNIST-1D MLP run holds well under 1 GB and a fraction of the
# SMs); not measured on a GPU on this CPU-only box. Override with `gpus_per_unit`.
GPU_SHARE = 0.25
# Local worker processes at most: each holds torch (~0.3 GB); beyond 256 the machine, not this
# limit, is the bottleneck, and a typo like --workers 2000 should not fork 2000 processes.
MAX_WORKERS = 256
UNIT_LABEL_CHARS = 200  # a failed unit is named by repr(item), cut to this length


@dataclass
class UnitFailed:
    """What a unit that raised (or whose worker died) yields in place of its result."""

    index: int
    unit: str  # repr of the unit's item, shortened
    error: str  # "TypeName: message"
    traceback: str = ""

    def __str__(self) -> str:
        return f"unit {self.index} ({self.unit}) failed: {self.error}"


class _NeverSet:
    def is_set(self) -> bool:
        return False


NEVER = _NeverSet()


def _label(item) -> str:
    text = repr(item)
    return text if len(text) <= UNIT_LABEL_CHARS else text[: UNIT_LABEL_CHARS - 1] + "…"


def _failure(index: int, item, exc: BaseException, tb: str = "") -> UnitFailed:
    return UnitFailed(index, _label(item), f"{type(exc).__name__}: {exc}", tb)


def set_torch_threads(n: int | None) -> None:
    if n is not None:
        import torch

        torch.set_num_threads(n)


@functools.lru_cache(maxsize=4)
def _cached_task(kind: str, spec: str, data_dir: str | None):
    if kind == "toy":
        from .toys import parse_toy

        return parse_toy(spec)
    from .checkpoints import load_task

    return load_task(spec, data_dir=data_dir)


def cached_task(source: dict):
    """The LLCTask a source names ({"toy": SPEC} or {"checkpoint": PATH, "data_dir": DIR}), built
    once per process: a worker reuses it for every unit of the same task (runs deep-copy the model)."""
    if "toy" in source:
        return _cached_task("toy", source["toy"], None)
    return _cached_task("checkpoint", str(source["checkpoint"]), source.get("data_dir"))


class SerialExecutor:
    """Units one after another in this process (workers=1)."""

    kind = "serial"
    workers = 1

    def __init__(self, torch_threads: int | None = 1):
        self.torch_threads = torch_threads

    def map_unordered(self, fn: Callable, items: Iterable, cancel=None) -> Iterator[tuple[int, Any]]:
        cancel = cancel or NEVER
        before = _torch_threads_now()
        set_torch_threads(self.torch_threads)
        try:
            for index, item in enumerate(items):
                if cancel.is_set():
                    return
                try:
                    result = fn(item, cancel)
                except Exception as exc:  # the policy: report the unit, go on with the rest
                    result = _failure(index, item, exc, traceback.format_exc())
                if cancel.is_set():
                    return  # stopped mid-unit: its result is partial, never yielded
                yield index, result
        finally:
            set_torch_threads(before)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _torch_threads_now() -> int | None:
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


def _pool_worker(conn, torch_threads: int | None) -> None:
    """Body of a pool worker: run units sent over `conn` until told to stop (None) or orphaned."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it ends us
    set_torch_threads(torch_threads)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        index, fn, item = message
        try:
            conn.send(("ok", index, fn(item, NEVER)))
        except Exception as exc:  # includes a result that cannot be pickled
            conn.send(("error", index, f"{type(exc).__name__}: {exc}", traceback.format_exc()))


@dataclass(eq=False)
class _Worker:
    proc: Any
    conn: Any


def default_start_method(device: str = "cpu") -> str:
    """fork for CPU work from a single-threaded process (a forked worker has torch imported and the
    task built already, which saves the ~2.4 s torch import per worker that dominates short sweeps
    on a small machine; workers run one torch thread). spawn otherwise: for CUDA, which cannot be
    used in a forked child; from a process with threads (a server), whose locks fork would copy
    mid-use; and where fork does not exist."""
    import threading

    if (device.startswith("cuda") or device == "auto" or threading.active_count() > 1
            or "fork" not in mp.get_all_start_methods()):
        return "spawn"
    return "fork"


class PoolExecutor:
    """A fixed set of local worker processes, reused across units and across map_unordered calls."""

    kind = "pool"

    def __init__(self, workers: int, torch_threads: int | None = 1, start_method: str | None = None,
                 device: str = "cpu"):
        self.workers, self.torch_threads = workers, torch_threads
        self.start_method = start_method or default_start_method(device)
        self._ctx = mp.get_context(self.start_method)
        self._pool = [self._start() for _ in range(workers)]  # started now: they warm up meanwhile

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_pool_worker, args=(child, self.torch_threads), daemon=True,
                                 name="llc-exec-worker")
        proc.start()  # spawn re-creates __main__ in the child: a script's own top-level units resolve
        child.close()
        return _Worker(proc, parent)

    def _restart(self, worker: _Worker) -> _Worker:
        _stop(worker, kill=True)
        return self._start()

    def _replace(self, worker: _Worker) -> _Worker:
        fresh = self._restart(worker)
        self._pool[self._pool.index(worker)] = fresh
        return fresh

    def map_unordered(self, fn: Callable, items: Iterable, cancel=None) -> Iterator[tuple[int, Any]]:
        from collections import deque

        cancel = cancel or NEVER
        self._pool = [w if w.proc.is_alive() else self._restart(w) for w in self._pool]  # after a cancel
        todo, busy, idle = deque(enumerate(items)), {}, list(self._pool)
        try:
            while todo or busy:
                if cancel.is_set():
                    return  # the finally below stops the running units
                while todo and idle:
                    worker, (index, item) = idle.pop(), todo.popleft()
                    worker.conn.send((index, fn, item))
                    busy[worker] = (index, item)
                wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=POLL_SECONDS)
                for worker in list(busy):
                    outcome = self._collect(worker, *busy[worker])
                    if outcome is not None:
                        del busy[worker]
                        idle.append(worker if worker.proc.is_alive() else self._replace(worker))
                        if not cancel.is_set():
                            yield outcome
        finally:
            for worker in busy:  # stopped early (cancel, Ctrl-C, consumer gone): end their units now;
                _stop(worker, kill=True)  # the next call starts fresh workers in their place

    @staticmethod
    def _collect(worker: _Worker, index: int, item) -> tuple[int, Any] | None:
        """(index, result or UnitFailed) if the worker has answered or died, else None."""
        if worker.conn.poll():
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                message = None
            if message is not None and message[0] == "ok":
                return index, message[2]
            if message is not None:
                return index, UnitFailed(index, _label(item), message[2], message[3])
        elif worker.proc.is_alive():
            return None
        worker.proc.join(TERMINATE_GRACE)
        return index, UnitFailed(index, _label(item), f"worker process died (exit code {worker.proc.exitcode})")

    def close(self) -> None:
        for worker in self._pool:
            try:
                worker.conn.send(None)
            except (OSError, ValueError):
                pass
        for worker in self._pool:
            _stop(worker, kill=False)
        self._pool = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _stop(worker: _Worker, kill: bool) -> None:
    """End a worker: politely (it was sent None) or at once (it is mid-unit). Idempotent."""
    if worker.conn.closed:
        return
    if kill and worker.proc.is_alive():
        worker.proc.terminate()
    worker.proc.join(TERMINATE_GRACE)
    if worker.proc.is_alive():
        worker.proc.kill()
        worker.proc.join(TERMINATE_GRACE)
    worker.conn.close()


def _ray_unit(fn: Callable, item, torch_threads: int | None):
    set_torch_threads(torch_threads)
    return fn(item, NEVER)


class RayExecutor:
    """Units as Ray tasks on a local runtime ("local") or an existing cluster ("auto", an address).

    Ray reuses its worker processes, so per-process caches (`cached_task`) carry over between units."""

    kind = "ray"

    def __init__(self, address: str, num_cpus: int | None = None, torch_threads: int | None = 1,
                 num_gpus: float = 0.0):
        try:
            import ray
        except ImportError:
            raise ConfigError("Ray is not installed: install the optional extra (pip install 'llc-lab[ray]') "
                              "or use --workers N") from None
        self._ray, self.torch_threads, self.address = ray, torch_threads, address
        self._owns_runtime = not ray.is_initialized()
        if self._owns_runtime:
            _ray_init(ray, address, num_cpus)
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._remote = ray.remote(_ray_unit).options(num_cpus=1, num_gpus=num_gpus, max_retries=0)

    def map_unordered(self, fn: Callable, items: Iterable, cancel=None) -> Iterator[tuple[int, Any]]:
        from collections import deque

        cancel, ray = cancel or NEVER, self._ray
        todo, running = deque(enumerate(items)), {}
        in_flight = 2 * self.workers  # a few queued per CPU keeps workers busy; cancel drops few
        try:
            while todo or running:
                if cancel.is_set():
                    return
                while todo and len(running) < in_flight:
                    index, item = todo.popleft()
                    running[self._remote.remote(fn, item, self.torch_threads)] = (index, item)
                done, _ = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS)
                for ref in done:
                    index, item = running.pop(ref)
                    outcome = self._result(ref, index, item)
                    if not cancel.is_set():
                        yield index, outcome
        finally:
            for ref in running:
                ray.cancel(ref, force=True)

    def _result(self, ref, index: int, item):
        try:
            return self._ray.get(ref)
        except Exception as exc:  # RayTaskError wraps the unit's own exception as .cause
            cause = getattr(exc, "cause", None) or exc
            return UnitFailed(index, _label(item), f"{type(cause).__name__}: {cause}".splitlines()[0], str(exc))

    def close(self) -> None:
        if self._owns_runtime and self._ray.is_initialized():
            self._ray.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _ray_init(ray, address: str, num_cpus: int | None) -> None:
    """Start ("local") or join ("auto", "HOST:PORT", "ray://…") a Ray runtime. Local workers get
    this checkout on PYTHONPATH so they import the same llc_core; a cluster needs llc-lab installed."""
    import pathlib

    root = str(pathlib.Path(__file__).resolve().parent.parent)
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}}
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    if address == "local":
        ray.init(num_cpus=num_cpus or default_workers(), runtime_env=env, **quiet)
    else:
        ray.init(address=address, **quiet)


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def make_executor(workers: int | None = None, ray: str | None = None, device: str = "cpu",
                  torch_threads: int | None = 1, gpus_per_unit: float | None = None):
    """Serial (workers=1), a local process pool (default: one worker per core), or Ray (`ray` is
    "local", "auto" or an address; else $LLC_RAY_ADDRESS when no worker count is given)."""
    if ray is None and workers is None:
        ray = os.environ.get(RAY_ENV) or None
    if ray is not None:
        if not isinstance(ray, str) or not ray.strip():
            raise ConfigError(f"ray={ray!r} is invalid: use local, auto or a cluster address")
        share = gpus_per_unit if gpus_per_unit is not None else (GPU_SHARE if device.startswith("cuda") else 0.0)
        if not (isinstance(share, (int, float)) and math.isfinite(share) and 0 <= share <= 1):
            raise ConfigError(f"gpus_per_unit={share!r} is invalid: must be a number in [0, 1]")
        return RayExecutor(ray.strip(), num_cpus=workers, torch_threads=torch_threads, num_gpus=share)
    workers = default_workers() if workers is None else workers
    if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"workers={workers!r} is invalid: must be an integer in [1, {MAX_WORKERS}]")
    if workers == 1:
        return SerialExecutor(torch_threads)
    return PoolExecutor(workers, torch_threads, device=device)
