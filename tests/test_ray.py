"""The Ray executor on a real local Ray runtime (2 CPUs), started once for the module."""

import sys
import time

import pytest

ray = pytest.importorskip("ray")  # the optional extra: `make test` installs it

from llc_core.executor import RayExecutor, UnitFailed, make_executor  # noqa: E402
from llc_core.sweep import SweepGrid, sweep  # noqa: E402
from llc_core.toys import parse_toy  # noqa: E402

from test_executor import Flag, TOY, fail_on_negative, nap, small_sweep  # noqa: E402


@pytest.fixture(scope="module")
def ray_ex():
    ray.cloudpickle.register_pickle_by_value(sys.modules["test_executor"])  # test units are not installed
    ex = make_executor(ray="local", workers=2)
    yield ex
    ex.close()
    assert not ray.is_initialized()  # the runtime it started is shut down


def test_ray_gives_the_serial_numbers_bit_for_bit(ray_ex):
    from llc_core.executor import SerialExecutor

    assert isinstance(ray_ex, RayExecutor) and ray_ex.workers == 2
    with SerialExecutor() as serial:
        by_serial = small_sweep(serial)
    by_ray = small_sweep(ray_ex)
    assert set(by_ray) == set(by_serial) and len(by_ray) == 4
    for key, cell in by_ray.items():
        assert cell.lambda_hat == by_serial[key].lambda_hat and cell.lambda_std == by_serial[key].lambda_std


def test_ray_streams_results_as_units_finish(ray_ex):
    start = time.monotonic()
    arrivals = [(i, time.monotonic() - start) for i, _ in ray_ex.map_unordered(nap, [3.0, 0.05, 0.05])]
    assert [i for i, _ in arrivals][:2] == [1, 2]
    assert arrivals[0][1] < arrivals[-1][1] - 1.5


def test_ray_reports_a_failing_unit_and_runs_the_rest(ray_ex):
    outcomes = dict(ray_ex.map_unordered(fail_on_negative, [1, -7, 3]))
    assert outcomes[0] == 2 and outcomes[2] == 6
    assert isinstance(outcomes[1], UnitFailed) and outcomes[1].unit == "-7"
    assert outcomes[1].error == "ValueError: negative input -7"


def test_ray_cancel_keeps_the_partial_result_and_stops_running_tasks(ray_ex):
    cancel = Flag()
    got = []
    start = time.monotonic()
    for index, result in ray_ex.map_unordered(nap, [0.05, 60.0, 60.0], cancel):
        got.append((index, result))
        cancel.set()
    assert got == [(0, 0.05)] and time.monotonic() - start < 10.0
    assert dict(ray_ex.map_unordered(nap, [0.01])) == {0: 0.01}  # the cluster still takes work


def test_a_failed_sweep_cell_on_ray_is_an_error_cell(ray_ex):
    task = parse_toy(TOY)
    pilot = task.defaults.replace(chains=2, draws=20, burnin=0)
    cells = list(sweep(task, SweepGrid((1e-5,), (1.0,)), pilot, executor=ray_ex, source={"toy": "dln:bad"}))
    assert len(cells) == 1 and cells[0].status == "error" and "dln:bad" in cells[0].error
