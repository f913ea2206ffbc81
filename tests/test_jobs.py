"""Background jobs: live traces, stop within a second, failures reported, session close."""

import os
import signal
import threading
import time

import psutil
import pytest

from llc_core import SGLDConfig
from llc_core.jobs import LIVE_POINTS, EstimateJob, Job, JobSlot
from llc_core.toys import parse_toy


def wait(job, timeout=60):
    assert job.join(timeout), "job did not end"


def test_estimate_job_streams_bounded_live_traces():
    task = parse_toy("crossing:1", n=2000)
    job = EstimateJob(task, SGLDConfig(epsilon=1e-4, gamma=1.0, chains=2, draws=3000, burnin=100,
                                       batch_size=100)).start()
    wait(job)
    state, progress, result, error = job.peek()
    assert state == "done" and error is None and result.completed
    view = job.view()
    assert view["loss"].shape[0] == 2 and 0 < view["loss"].shape[1] <= LIVE_POINTS
    assert view["loss_steps"][-1] >= 3000 and view["first_point_seconds"] is not None
    assert view["pooled"][-1] == result.lambda_hat


def test_stop_takes_effect_within_a_second():
    task = parse_toy("crossing:1", n=2000)
    job = EstimateJob(task, SGLDConfig(epsilon=1e-4, gamma=1.0, chains=2, draws=200_000, batch_size=100)).start()
    while job.peek()[1] is None:
        time.sleep(0.05)
    t0 = time.monotonic()
    job.stop()
    wait(job, timeout=5)
    assert time.monotonic() - t0 < 1.0
    state, _, result, _ = job.peek()
    assert state == "stopped" and not result.completed and result.steps_done < 400_000


def test_an_exception_in_the_worker_is_reported_not_raised():
    def boom(cancel, publish):
        publish("half way")
        raise RuntimeError("disk on fire")

    job = Job(boom).start()
    wait(job)
    state, update, _, error = job.peek()
    assert state == "failed" and update == "half way" and "disk on fire" in error


def test_closing_a_session_stops_its_threads():
    slot = JobSlot()
    started = threading.Event()

    def forever(cancel, publish):
        started.set()
        while not cancel.is_set():
            time.sleep(0.01)

    first = slot.start("a", Job(forever))
    started.wait(5)
    second = slot.start("a", Job(forever))  # replacing a job stops its predecessor
    wait(first, 5)
    slot.close()
    assert not second._thread.is_alive() and second.peek()[0] == "stopped"


# -- the server-wide fair queue ----------------------------------------------------------------

from llc_core.jobs import JobRunner, ProcessJob  # noqa: E402
from llc_core.runqueue import RunQueue, default_limit  # noqa: E402
from llc_core.workers import MAX_WARM, default_warm  # noqa: E402


def test_queue_grants_first_come_first_served_up_to_the_limit():
    queue = RunQueue(2)
    tickets = [queue.submit("s") for _ in range(5)]
    assert [t.granted for t in tickets] == [True, True, False, False, False]
    assert [queue.position(t) for t in tickets] == [0, 0, 1, 2, 3]
    queue.release(tickets[1])
    assert tickets[2].granted and not tickets[3].granted
    assert [queue.position(t) for t in tickets[3:]] == [1, 2]


def test_one_session_cannot_keep_every_slot_once_others_wait():
    queue = RunQueue(2)
    greedy = [queue.submit("A") for _ in range(4)]  # alone: A may use both slots
    assert [t.granted for t in greedy] == [True, True, False, False]
    late_b, late_c = queue.submit("B"), queue.submit("C")
    # B and C hold nothing, A holds two: both go before A's waiting runs, in arrival order
    assert queue.position(late_b) == 1 and queue.position(late_c) == 2 and queue.position(greedy[2]) == 3
    queue.release(greedy[0])
    assert late_b.granted and not late_c.granted
    queue.release(greedy[1])
    assert late_c.granted and not greedy[2].granted  # round-robin: C's turn before A's third
    queue.release(late_b)
    assert greedy[2].granted  # then A again


def test_waiting_can_be_cancelled_and_a_released_place_is_given_on():
    queue = RunQueue(1)
    holder, waiter = queue.submit("A"), queue.submit("B")
    cancel = threading.Event()
    cancel.set()
    assert not queue.wait(waiter, cancel)
    queue.release(waiter)
    third = queue.submit("C")
    assert queue.position(third) == 1
    queue.release(holder)
    assert queue.wait(third, timeout=1)


def test_the_run_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("LLC_MAX_RUNS", "3")
    assert default_limit() == 3
    monkeypatch.setenv("LLC_MAX_RUNS", "lots")
    with pytest.raises(ValueError, match="LLC_MAX_RUNS='lots'"):
        default_limit()


def test_the_warm_workers_come_from_the_environment_or_the_run_limit(monkeypatch):
    monkeypatch.delenv("LLC_WARM_WORKERS", raising=False)
    assert default_warm(2) == 2 and default_warm(64) == MAX_WARM  # as many as runs, within the cap
    monkeypatch.setenv("LLC_WARM_WORKERS", "0")
    assert default_warm(2) == 0 and JobRunner(limit=2).pool.warm == 0
    for bad in ("-1", "many", str(MAX_WARM + 1)):
        monkeypatch.setenv("LLC_WARM_WORKERS", bad)
        with pytest.raises(ValueError, match=f"LLC_WARM_WORKERS='{bad}'.*0 to {MAX_WARM}"):
            default_warm(2)


# -- worker processes ----------------------------------------------------------------------------

def failing_work(*, cancel, emit):
    emit("update", "half way")
    raise ValueError("bad shape (3, 4)")


def finishing_work(*, cancel, emit):
    emit("update", os.getpid())
    return "finished"


def endless_work(*, cancel, emit):
    emit("update", os.getpid())
    while not cancel.is_set():
        time.sleep(0.01)
    return "wound down"


def stubborn_work(*, cancel, emit):
    emit("update", os.getpid())
    while True:  # ignores Stop, like a model stuck in one long forward pass
        time.sleep(0.01)


def started_process_job(function, runner=None):
    job = ProcessJob(function, (), label="test")
    job.runner = runner
    job.start()
    deadline = time.monotonic() + 120
    while job.peek()[1] is None and job.running and time.monotonic() < deadline:
        time.sleep(0.02)
    return job


def process_gone(pid, timeout=1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.02)
    return False


def test_an_exception_in_a_worker_process_is_reported_with_its_type():
    job = started_process_job(failing_work)
    wait(job)
    state, update, _, error = job.peek()
    assert state == "failed" and update == "half way" and error == "ValueError: bad shape (3, 4)"
    assert "Traceback" in job.details and "failing_work" in job.details


def test_a_killed_worker_is_reported_not_waited_on():
    job = started_process_job(endless_work)
    os.kill(job.peek()[1], signal.SIGKILL)
    wait(job, timeout=5)
    state, _, _, error = job.peek()
    assert state == "failed" and error.startswith("the worker process died (signal 9")


def test_stop_ends_the_worker_process_within_a_second():
    for work, result in ((endless_work, "wound down"), (stubborn_work, None)):  # cooperative, then killed
        job = started_process_job(work)
        pid = job.peek()[1]
        t0 = time.monotonic()
        job.stop()
        wait(job, timeout=5)
        assert process_gone(pid, timeout=max(0.0, 1.0 - (time.monotonic() - t0)))
        assert time.monotonic() - t0 < 1.0 and job.state == "stopped" and job.result == result


def test_a_queued_job_waits_for_a_slot_and_stops_without_running():
    runner = JobRunner(limit=1, warm=1)
    try:
        first = started_process_job(endless_work, runner)
        queued = ProcessJob(endless_work, (), label="test")
        queued.runner = runner
        queued.start()
        assert queued.state == "queued" and queued.queue_position() == 1 and queued.running
        queued.stop(wait=2)
        assert queued.state == "stopped" and queued.worker_pid is None and not queued.running
        first.stop(wait=2)
        assert first.state == "stopped"
    finally:
        runner.close()


def page_script_as_main(monkeypatch, tmp_path):
    """What Streamlit does on every script run: the page script becomes sys.modules["__main__"].
    This one leaves a marker file when executed and then fails, like a page run outside Streamlit."""
    import sys
    import types

    marker = tmp_path / "page script ran"
    script = tmp_path / "page.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\nraise NameError(\"name '__args' is not defined\")\n")
    fake = types.ModuleType("__main__")
    fake.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake)
    return fake, marker


def test_a_worker_started_under_a_page_script_does_not_run_that_script(monkeypatch, tmp_path):
    import sys

    from llc_core.workers import Worker

    fake, marker = page_script_as_main(monkeypatch, tmp_path)
    worker = Worker()
    try:
        assert sys.modules["__main__"] is fake  # the page's module is back once the worker started
        assert worker.wait_ready(60), worker.death_text()
        assert not marker.exists()
    finally:
        worker.kill()


def test_a_cold_started_job_runs_under_a_page_script(monkeypatch, tmp_path):
    """No warm worker (LLC_WARM_WORKERS=0): the job's own worker is spawned while a page script is __main__."""
    fake, marker = page_script_as_main(monkeypatch, tmp_path)
    runner = JobRunner(limit=1, warm=0)
    try:
        job = started_process_job(finishing_work, runner)
        wait(job)
        assert job.peek()[0] == "done" and job.result == "finished", job.error
        assert not marker.exists()
    finally:
        runner.close()


def test_without_a_gpu_workers_are_forked_from_one_forkserver_that_imported_torch():
    """Each run ends its worker, so a server starts a process per run: forked from the forkserver
    (torch already imported there) instead of spawned and importing torch again (~3.4 CPU-s each)."""
    import torch

    from llc_core.workers import CONTEXT, Worker

    assert not torch.cuda.is_available()  # this machine and CI: the forkserver path
    assert CONTEXT.get_start_method() == "forkserver"
    workers = [Worker(), Worker()]
    try:
        assert all(w.wait_ready(60) for w in workers), [w.death_text() for w in workers]
        parents = {psutil.Process(w.pid).ppid() for w in workers}
        assert len(parents) == 1 and os.getpid() not in parents  # both from one forkserver, not from here
        forkserver = psutil.Process(parents.pop())
        assert forkserver.ppid() == os.getpid()
        assert any("libtorch" in m.path for m in forkserver.memory_maps())  # its preload: torch is in it
    finally:
        for w in workers:
            w.kill()
