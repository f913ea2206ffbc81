"""Device everywhere: auto resolves to what the machine has, cuda:N is accepted where it exists and
refused clearly where it does not; the device used is in every result and JSON; the dashboard's
device picker and sampler control, bound to the URL. GPU-only checks skip without a GPU."""

import json
import math
import pathlib
import time

import numpy as np
import pytest
import torch

from llc_core import SGLDConfig, estimate_llc
from llc_core.cli import main
from llc_core.config import ConfigError
from llc_core.devices import available_devices, resolve_device
from llc_core.toys import parse_toy

NO_GPU = not torch.cuda.is_available()
APP = str(pathlib.Path(__file__).resolve().parent.parent / "app.py")


def test_auto_is_the_default_and_resolves_to_what_is_here():
    assert SGLDConfig().device == "auto"
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert str(resolve_device("auto")) == expected
    res = estimate_llc(parse_toy("crossing:1", n=500), SGLDConfig(chains=2, draws=20, burnin=0, batch_size=50))
    assert res.device == expected and res.to_json_dict()["device"] == expected


@pytest.mark.parametrize("bad", ["tpu", "cuda:", "cuda:x", "gpu0", "", 3])
def test_malformed_device_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="device="):
        SGLDConfig(device=bad).validate()


@pytest.mark.skipif(not NO_GPU, reason="checks the message on a machine without CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_asked_for_and_absent_is_refused_naming_it(name):
    with pytest.raises(ConfigError, match=rf"device='{name}' is unavailable: no CUDA GPU"):
        resolve_device(name)


def test_cli_device_auto_and_cuda_n(capsys):
    args = ["estimate", "--toy", "crossing:2", "--draws", "30", "--chains", "2", "--json"]
    assert main(args + ["--device", "auto", "--sampler", "rmsprop_sgld"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["device"] == available_devices()[-1 if not NO_GPU else 0] and out["sampler"] == "rmsprop_sgld"
    assert out["config"]["sampler"] == "rmsprop_sgld" and out["config"]["device"] == "auto"
    missing = f"cuda:{len(available_devices()) - 1}"  # one past the last GPU (cuda:0 on a CPU machine)
    assert main(args + ["--device", missing]) == 2
    assert "cuda" in capsys.readouterr().err.strip().splitlines()[-1]


def test_dashboard_device_picker_and_sampler_from_the_url(app):
    from streamlit.testing.v1 import AppTest

    assert app.selectbox(key="device").options == ["auto"] + available_devices()
    assert app.selectbox(key="device").value == "auto"
    assert app.selectbox(key="sampler").value == "sgld"
    assert any("GPU" in c.value for c in app.caption)  # says what was found (or that none was)

    linked = AppTest.from_file(APP, default_timeout=120)
    linked.query_params.update({"sampler": "rmsprop_sgld", "device": "cpu"})
    linked.run()
    assert not linked.exception
    assert (linked.selectbox(key="sampler").value, linked.selectbox(key="device").value) == ("rmsprop_sgld", "cpu")

    bad = AppTest.from_file(APP, default_timeout=120)
    bad.query_params.update({"sampler": "hmc", "device": "cuda:7"})
    bad.run()
    assert bad.selectbox(key="sampler").value == "sgld" and bad.selectbox(key="device").value == "auto"
    warned = " ".join(w.value for w in bad.warning)
    assert "sampler must be one of" in warned and "device must be one this machine has" in warned


def test_dashboard_run_with_rmsprop_reports_device_and_sampler(app):
    app.selectbox(key="model").set_value("toy:crossing:1").run()
    for key, value in {"chains": 2, "draws": 100, "burnin": 20}.items():
        widget = next(w for w in (app.slider, app.number_input) if any(x.key == key for x in w))
        widget(key=key).set_value(value)
    app.selectbox(key="sampler").set_value("rmsprop_sgld")
    app.selectbox(key="device").set_value("cpu").run()
    app.button(key="run").click().run()
    deadline = time.time() + 180
    while time.time() < deadline and not any("finished" in m.value for m in app.markdown):
        time.sleep(0.5)
        app.run()
    assert not app.exception
    assert any("finished" in m.value for m in app.markdown)
    assert any("rmsprop_sgld" in t and "cpu" in t for t in [m.value for m in (*app.markdown, *app.caption)])


# -- GPU only (run on the GPU machine; bench/gpu.py times the same path) ------------------------
gpu = pytest.mark.skipif(NO_GPU, reason="needs a CUDA GPU")


def _gpu_cfg(**kw):
    base = dict(device="cuda", epsilon=1e-4, gamma=1.0, chains=4, draws=150, burnin=30, batch_size=50, seed=7)
    return SGLDConfig(**{**base, **kw})


@gpu
@pytest.mark.parametrize("sampler", ["sgld", "rmsprop_sgld"])
def test_gpu_graph_replay_equals_the_eager_step(monkeypatch, sampler):
    task = parse_toy("dln:3,2,3:r1", n=5000)
    graph = estimate_llc(task, _gpu_cfg(sampler=sampler))
    monkeypatch.setenv("LLC_CUDA_GRAPH", "0")
    eager = estimate_llc(task, _gpu_cfg(sampler=sampler))
    assert (graph.path, eager.path) == ("vmap/cuda-graph", "vmap/eager")
    assert graph.device == "cuda:0"
    assert np.allclose(graph.lambda_hat_per_chain, eager.lambda_hat_per_chain, rtol=1e-6, atol=0)
    assert np.allclose(graph.traces["loss"], eager.traces["loss"], rtol=1e-6, equal_nan=True)


@gpu
def test_gpu_first_chains_do_not_depend_on_how_many_run():
    task = parse_toy("crossing:1", n=2000)
    two, four = estimate_llc(task, _gpu_cfg(chains=2)), estimate_llc(task, _gpu_cfg(chains=4))
    assert two.lambda_hat_per_chain == four.lambda_hat_per_chain[:2]
    assert len(set(four.lambda_hat_per_chain)) == 4


@gpu
def test_gpu_divergence_and_cancel_between_records():
    task = parse_toy("crossing:1", n=2000)
    blown = estimate_llc(task, _gpu_cfg(epsilon=0.5, draws=100, burnin=0))
    assert blown.status == "diverged" and blown.chains_used == 0
    import threading

    stop = threading.Event()
    res = estimate_llc(task, _gpu_cfg(draws=10_000), cancel=stop,
                       on_progress=lambda p: stop.set() if p.step >= 40 else None)
    assert not res.completed and res.steps_done == 41
    assert res.traces["steps"][-1] == 41  # the window fetched after the cancel is recorded


@gpu
def test_gpu_lambda_agrees_with_cpu_within_noise():
    """Different random streams (Philox rows vs per-chain CPU generators), same sampler."""
    task = parse_toy("crossing:2", n=5000)
    cfg = _gpu_cfg(chains=8, draws=2000, burnin=300, batch_size=256, gamma=100.0)
    on_gpu, on_cpu = estimate_llc(task, cfg), estimate_llc(task, cfg.replace(device="cpu"))
    spread = 4 * math.hypot(on_gpu.lambda_hat_se, on_cpu.lambda_hat_se)
    assert abs(on_gpu.lambda_hat - on_cpu.lambda_hat) < spread
