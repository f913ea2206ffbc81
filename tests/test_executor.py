"""Executors on real processes: same numbers as serial, streaming, failures, cancellation."""

import os
import threading
import time

import pytest

from llc_core.config import ConfigError
from llc_core.executor import PoolExecutor, SerialExecutor, UnitFailed, make_executor
from llc_core.sweep import SweepGrid, sweep
from llc_core.toys import parse_toy

TOY = "dln:3,3:r0"


def small_sweep(executor=None):
    task = parse_toy(TOY)
    pilot = task.defaults.replace(chains=2, draws=60, burnin=20, seed=3)
    grid = SweepGrid((1e-5, 1e-4), (1.0, 100.0))
    cells = sweep(task, grid, pilot, executor=executor, source={"toy": TOY})
    return {(c.epsilon, c.gamma): c for c in cells}


# Units for the tests: top-level, so the workers find them by name.
def nap(seconds, cancel):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cancel.is_set():
            return "stopped"
        time.sleep(0.01)
    return seconds


def fail_on_negative(x, cancel):
    if x < 0:
        raise ValueError(f"negative input {x}")
    return x * 2


def die_on_negative(x, cancel):
    if x < 0:
        os._exit(3)  # the worker dies mid-unit, as if killed
    return x * 2


class Flag:
    def __init__(self):
        self._event = threading.Event()

    def set(self):
        self._event.set()

    def is_set(self):
        return self._event.is_set()


def test_pool_and_serial_give_the_plain_sweeps_numbers_bit_for_bit():
    from llc_core.executor import set_torch_threads

    set_torch_threads(1)  # the plain path runs with this process's threads: match the workers'
    plain = small_sweep()
    with SerialExecutor() as serial:
        by_serial = small_sweep(serial)
    with make_executor(workers=2) as pool:
        by_pool = small_sweep(pool)
    with PoolExecutor(2, start_method="spawn") as spawned:  # what CUDA runs use
        by_spawned = small_sweep(spawned)
    for cells in (by_serial, by_pool, by_spawned):
        assert set(cells) == set(plain) and len(cells) == 4
        for key, cell in cells.items():
            assert cell.lambda_hat == plain[key].lambda_hat and cell.lambda_std == plain[key].lambda_std
            assert cell.status == plain[key].status and cell.flags == plain[key].flags


def test_results_stream_back_as_units_finish():
    with make_executor(workers=2) as pool:
        start = time.monotonic()
        arrivals = [(index, time.monotonic() - start) for index, _ in pool.map_unordered(nap, [3.0, 0.05, 0.05])]
    assert [i for i, _ in arrivals][:2] == [1, 2]  # the short units first, while the long one runs
    assert arrivals[0][1] < arrivals[-1][1] - 1.5


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_unit_is_named_and_the_others_still_run(workers):
    with make_executor(workers=workers) as ex:
        outcomes = dict(ex.map_unordered(fail_on_negative, [1, -7, 3, 4]))
    assert {i: outcomes[i] for i in (0, 2, 3)} == {0: 2, 2: 6, 3: 8}
    failed = outcomes[1]
    assert isinstance(failed, UnitFailed) and failed.index == 1 and failed.unit == "-7"
    assert failed.error == "ValueError: negative input -7" and "fail_on_negative" in failed.traceback
    assert "unit 1 (-7) failed" in str(failed)


def test_a_dead_worker_is_reported_and_replaced():
    with make_executor(workers=2) as pool:
        outcomes = dict(pool.map_unordered(die_on_negative, [1, -1, 2, 3, 4]))
        assert isinstance(outcomes[1], UnitFailed) and "worker process died (exit code 3)" in outcomes[1].error
        assert {i: outcomes[i] for i in (0, 2, 3, 4)} == {0: 2, 2: 4, 3: 6, 4: 8}
        assert dict(pool.map_unordered(fail_on_negative, [5, 6])) == {0: 10, 1: 12}  # still two workers


@pytest.mark.parametrize("workers", [1, 2])
def test_cancel_stops_running_units_promptly_and_keeps_what_finished(workers):
    cancel = Flag()
    with make_executor(workers=workers) as ex:
        got = []
        for index, result in ex.map_unordered(nap, [0.05, 60.0, 60.0, 60.0], cancel):
            got.append((index, result))
            cancel.set()
            cancelled_at = time.monotonic()  # timed from the cancel, not from the workers' start-up
        stopped_after = time.monotonic() - cancelled_at
        assert got == [(0, 0.05)]  # the partial result: only what finished, nothing cancelled
        assert stopped_after < 5.0  # not the 60 s the running unit would take
        assert dict(ex.map_unordered(nap, [0.01])) == {0: 0.01}  # usable afterwards


def test_cancel_before_the_start_runs_nothing():
    cancel = Flag()
    cancel.set()
    with make_executor(workers=2) as pool:
        assert list(pool.map_unordered(nap, [0.01, 0.01], cancel)) == []


def test_a_sweep_cell_whose_unit_fails_comes_back_as_an_error_cell():
    task = parse_toy(TOY)
    pilot = task.defaults.replace(chains=2, draws=20, burnin=0)
    with make_executor(workers=2) as pool:
        cells = list(sweep(task, SweepGrid((1e-5,), (1.0, 10.0)), pilot, executor=pool, source={"toy": "dln:bad"}))
    assert len(cells) == 2 and all(c.status == "error" and not c.completed for c in cells)
    assert all("dln:bad" in c.error for c in cells) and cells[0].verdict == "unstable"


def test_a_sweep_on_an_executor_needs_the_task_source():
    task = parse_toy(TOY)
    with pytest.raises(ConfigError, match="source"):
        list(sweep(task, SweepGrid((1e-5,), (1.0,)), task.defaults.replace(draws=20), executor=SerialExecutor()))


@pytest.mark.parametrize("kwargs, match", [
    ({"workers": 0}, "workers=0"), ({"workers": 2.5}, "workers=2.5"), ({"workers": 10_000}, "workers=10000"),
    ({"ray": " "}, "ray=' '"), ({"ray": "local", "gpus_per_unit": 2}, "gpus_per_unit=2"),
])
def test_bad_executor_settings_name_the_value(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_executor(**kwargs)


def test_default_is_one_worker_per_core_and_one_means_in_process(monkeypatch):
    monkeypatch.delenv("LLC_RAY_ADDRESS", raising=False)
    with make_executor() as ex:
        assert ex.workers == len(os.sched_getaffinity(0))
    assert isinstance(make_executor(workers=1), SerialExecutor)

