"""Faults mid-run, concurrent sessions, bounded live traces and determinism across API, CLI and
dashboard. (A chain blowing up mid-run while the others finish is in test_flags.py; Stop in the
middle of a run and of a sweep in test_app.py, test_calibrate.py and test_pages.py.)"""

import json
import threading
import time

import streamlit as st
import torch
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module
from torch import nn

from llc_core import LLCTask, SGLDConfig, cli, estimate_llc
from llc_core.checkpoints import CACHE_DIR, load_task
from llc_core.jobs import EstimateJob, JobSlot
from llc_core.limits import LIVE_POINTS
from llc_core.toys import half_mse, parse_toy
from tests.conftest import ROOT


def llc_threads():
    return [t for t in threading.enumerate() if t.name.startswith("llc-") and t.is_alive()]


def test_closing_the_session_stops_its_workers_within_seconds():
    slot = JobSlot()
    task = parse_toy("crossing:1", n=2000)
    slot.start("estimate", EstimateJob(task, task.defaults.replace(chains=2, draws=50_000, thin=1)))
    slot.start("other", EstimateJob(task, task.defaults.replace(chains=2, draws=50_000, thin=1)))
    time.sleep(0.5)
    assert len(llc_threads()) >= 2
    started = time.monotonic()
    slot.close()  # what st.cache_resource(scope="session") calls when the tab closes
    assert time.monotonic() - started < 5 and not llc_threads()
    assert all(job.state == "stopped" for job in slot.jobs.values())


class Booby(nn.Module):
    """Works for the first `ok_calls` forward passes, then raises, like a model with a bug."""

    def __init__(self, ok_calls: int):
        super().__init__()
        self.lin = nn.Linear(1, 1, bias=False)
        self.calls, self.ok_calls = 0, ok_calls

    def forward(self, x):
        self.calls += 1
        if self.calls > self.ok_calls:
            raise RuntimeError("shape mismatch deep inside the model")
        return self.lin(x)


def booby_task():
    x = torch.randn(500, 1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model = Booby(ok_calls=40)
        model.lin.weight.fill_(1.0)
    return LLCTask(model, x, x.clone(), half_mse, name="booby",
                   defaults=SGLDConfig(epsilon=1e-4, gamma=1.0, chains=2, draws=500, burnin=0, batch_size=100))


def test_an_exception_in_the_worker_is_shown_and_the_app_goes_on(monkeypatch):
    import pages.models

    real = pages.models.cached_task
    monkeypatch.setattr(pages.models, "cached_task", lambda choice: booby_task() if choice == "toy:crossing:3"
                        else real(choice))
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update({"model": "toy:crossing:3"})
    at.run()
    at.button(key="run").click().run()
    deadline = time.time() + 30
    while not any("The run failed" in e.value for e in at.error) and time.time() < deadline:
        time.sleep(0.3)
        at.run()
    assert any("The run failed: RuntimeError: shape mismatch deep inside the model" in e.value for e in at.error)
    assert not at.exception and not at.button(key="run").disabled
    at.selectbox(key="model").set_value("toy:crossing:1").run()  # the app goes on
    assert at.select_slider(key="epsilon").value > 0 and not at.exception
    st.cache_resource.clear()


def run_numbers(result):
    return result.lambda_hat, result.lambda_hat_per_chain


def test_concurrent_sessions_get_exactly_their_solo_results_and_never_mutate_the_model():
    task_a = load_task(CACHE_DIR / "mnist1d_mlp_k3_s0.safetensors")
    task_b = parse_toy("crossing:2", n=3000)
    before = [p.detach().clone() for p in task_a.model.parameters()]
    cfg_a = task_a.defaults.replace(chains=2, draws=150, burnin=20, seed=5)
    cfg_b = task_b.defaults.replace(chains=4, draws=300, thin=1, seed=5)
    solo = [run_numbers(estimate_llc(task_a, cfg_a)), run_numbers(estimate_llc(task_b, cfg_b))]
    jobs = [EstimateJob(task_a, cfg_a), EstimateJob(task_b, cfg_b), EstimateJob(task_a, cfg_a)]
    for job in jobs:
        job.start()
    assert all(job.join(120) for job in jobs)
    together = [run_numbers(job.result) for job in jobs]
    assert together == [solo[0], solo[1], solo[0]]  # bit for bit, whatever ran beside them
    assert jobs[0].view()["lam"].shape[0] == 2 and jobs[1].view()["lam"].shape[0] == 4  # own traces
    assert all(torch.equal(a, b) for a, b in zip(before, task_a.model.parameters()))


def test_ten_times_the_default_draws_keeps_live_traces_at_their_cap():
    task = parse_toy("crossing:1", n=2000)
    base = task.defaults
    job = EstimateJob(task, base.replace(chains=2, draws=10 * base.draws, thin=1, burnin=0)).start()
    assert job.join(300)
    view = job.view()
    assert view["total_steps"] == 10 * base.draws
    for key in ("loss_steps", "lam_steps", "diag_steps"):
        assert len(view[key]) <= LIVE_POINTS
    assert view["loss"].shape[1] <= LIVE_POINTS and view["diag"].shape[-1] <= LIVE_POINTS
    assert view["loss_steps"][-1] >= 0.99 * view["total_steps"]  # still spans the whole run
    assert job.result.traces["loss"].shape[1] <= base.max_trace_points


class RecordingStorage(app_test_module.MemoryMediaFileStorage):
    files: dict = {}

    def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
        file_id = super().load_and_get_id(path_or_data, mimetype, kind, filename)
        RecordingStorage.files[file_id] = path_or_data
        return file_id


def test_same_seed_same_lambda_through_api_cli_and_dashboard(monkeypatch, capsys):
    args = {"chains": 3, "draws": 120, "burnin": 30, "seed": 11}
    task = parse_toy("crossing:2")
    api = estimate_llc(task, task.defaults.replace(**args))
    assert cli.main(["estimate", "--toy", "crossing:2", "--chains", "3", "--draws", "120", "--burnin", "30",
                     "--seed", "11", "--json"]) == 0
    from_cli = json.loads(capsys.readouterr().out)
    monkeypatch.setattr(app_test_module, "MemoryMediaFileStorage", RecordingStorage)
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update({"model": "toy:crossing:2", **{k: str(v) for k, v in args.items()}})
    at.run()
    at.button(key="run").click().run()
    deadline = time.time() + 60
    while not at.get("download_button") and time.time() < deadline:
        time.sleep(0.3)
        at.run()
    url = next(b.proto.url for b in at.get("download_button") if b.proto.label == "Download run (JSON)")
    payload = json.loads(RecordingStorage.files[url.rsplit("/", 1)[1].split(".")[0]])
    st.cache_resource.clear()
    from_page = payload["result"]
    assert api.lambda_hat_per_chain == from_cli["lambda_hat_per_chain"] == from_page["lambda_hat_per_chain"]
    assert api.lambda_hat == from_cli["lambda_hat"] == from_page["lambda_hat"]
    assert from_page["config"]["seed"] == 11 and from_page["config"]["chains"] == 3


def test_repeated_runs_in_one_process_do_not_leak_threads():
    task = parse_toy("crossing:1", n=2000)
    slot = JobSlot()
    for i in range(6):
        slot.start("estimate", EstimateJob(task, task.defaults.replace(chains=2, draws=50, thin=1,
                                                                                    seed=i))).join(30)
    assert not llc_threads()
