"""Background jobs: live traces, stop within a second, failures reported, session close."""

import threading
import time

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
