"""λ̂ beside the Hessian and the intrinsic dimension (issue 15): HVPs against autograd, the rank on
deep linear networks against the exact Jacobian rank, d_int on a problem whose answer is known by
construction, caching, the CLI and the Dimensions page."""

import json
import subprocess
import sys
import time
from functools import partial

from tests.conftest import wait_for as wait_for_shared

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev

from llc_core.dimensions import DimensionSettings, measure_dimensions, rank_vs_llc_demo
from llc_core.hessian import HessianOperator, hessian_summary, numerical_rank
from llc_core.intrinsic_dim import SubspaceSettings, intrinsic_dimension
from llc_core.task import LLCTask
from llc_core.toys import half_mse, parse_toy
from tests.conftest import ROOT


def small_classifier(seed=0) -> LLCTask:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 3))
    x, y = torch.randn(60, 3), torch.randint(0, 3, (60,))
    return LLCTask(model, x, y, nn.functional.cross_entropy, name="small")


def autograd_hessian(task: LLCTask) -> torch.Tensor:
    """The reference: torch.autograd.functional.hessian of L_n as a function of the flat weights."""
    model = task.model.double()
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(w):
        params, start = {}, 0
        for name, shape in zip(names, shapes):
            size = int(np.prod(shape))
            params[name] = w[start:start + size].reshape(shape)
            start += size
        return task.loss_fn(functional_call(model, params, (task.x.double(),)), task.y)

    h = torch.autograd.functional.hessian(loss, flat)
    task.model.float()
    return h


def test_hvp_matches_autograd_hessian():
    task = small_classifier()
    reference = autograd_hessian(task)
    op = HessianOperator(task, dtype=torch.float64)
    v = torch.randn(task.num_params, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(op.hvp(v), reference @ v, rtol=1e-9, atol=1e-12)
    assert torch.allclose(op.dense(), reference, rtol=1e-9, atol=1e-12)


def test_lanczos_top_and_hutchinson_trace_agree_with_the_dense_hessian():
    task = small_classifier()
    exact = hessian_summary(task, k=5, dense=True)
    approx = hessian_summary(task, k=5, probes=400, dense=False, dtype=torch.float64)
    assert np.allclose(approx.top_eigenvalues, exact.top_eigenvalues, rtol=1e-6, atol=1e-10)
    assert abs(approx.trace - exact.trace) < 4 * approx.trace_se
    assert approx.rank_is_lower_bound and approx.numerical_rank == 5  # the top 5 are all well above zero
    assert exact.method == "dense" and exact.trace_se == 0 and not exact.rank_is_lower_bound


def jacobian_rank(task: LLCTask) -> int:
    """rank of the Jacobian of all outputs over all examples w.r.t. the weights, in float64."""
    model = task.model.double()
    params = {n: p.detach() for n, p in model.named_parameters()}
    jac = jacrev(lambda p: functional_call(model, p, (task.x.double(),)))(params)
    stacked = torch.cat([j.reshape(-1, params[n].numel()) for n, j in jac.items()], dim=1)
    task.model.float()
    return int(np.linalg.matrix_rank(stacked.numpy()))


@pytest.mark.parametrize("spec", ["dln:4,3,4:r1", "dln:3,2,3:r2", "dln:5,5,5:r2", "dln:3,4,2:r1",
                                  "dln:4,4,4,4:r2", "dln:2,3:r1"])
def test_dln_hessian_rank_is_the_jacobian_rank(spec):
    task = parse_toy(spec, n=400)
    exact = jacobian_rank(task)
    dense = hessian_summary(task, k=3, dense=True)
    assert dense.numerical_rank == exact
    assert exact <= 2 * task.true_lambda <= task.num_params  # rank(H) ≤ 2λ ≤ D
    if exact + 1 < task.num_params:  # the Lanczos path, asked for more eigenvalues than the rank
        lanczos = hessian_summary(task, k=exact + 1, dense=False, dtype=torch.float64, probes=4)
        assert lanczos.numerical_rank == exact and not lanczos.rank_is_lower_bound


@pytest.mark.parametrize("spec", ["dln:4,4,4:r0", "dln:3,3,3,3:r0"])
def test_rank0_deep_dln_has_a_zero_hessian_but_positive_lambda(spec):
    task = parse_toy(spec, n=400)
    h = HessianOperator(task).dense()
    assert torch.count_nonzero(h) == 0
    summary = hessian_summary(task, dense=True)
    assert summary.numerical_rank == 0 and summary.trace == 0 and summary.top_eigenvalues[0] == 0
    assert task.true_lambda > 0


def test_numerical_rank_uses_the_relative_tolerance():
    assert numerical_rank([10.0, 1e-3, 1e-8, 0.0], rtol=1e-6) == 2
    assert numerical_rank([10.0, 1e-3, 1e-8, 0.0], rtol=1e-10) == 3
    assert numerical_rank([0.0, 0.0]) == 0


def sparse_regression(num_params: int, k: int, seed: int = 0, n: int = 400) -> LLCTask:
    """y = x·w_true where only the first k inputs are non-zero: the loss depends on k weights only."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, num_params, generator=gen)
    x[:, k:] = 0
    w_true = torch.zeros(1, num_params)
    w_true[:, :k] = torch.randn(1, k, generator=gen)
    model = nn.Linear(num_params, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(w_true)
    return LLCTask(model, x, x @ w_true.T, half_mse, name=f"sparse-regression-{k}")


@pytest.mark.parametrize("k", [3, 6])
def test_a_loss_on_k_coordinates_is_fitted_from_d_equal_k(k):
    """Through θ0 = 0 a random d-dim subspace contains the solution as soon as d ≥ k (the k×d block
    of P has rank k): every d ≥ k reaches R² ≥ 0.99, so d_int(0.99) ≤ k."""
    task = sparse_regression(20, k)
    settings = SubspaceSettings(threshold=0.99, steps=1200, lr=0.05, batch_size=400)
    result = intrinsic_dimension(task, settings, theta0=torch.zeros(20))
    assert result.metric == "r2" and result.full_performance == pytest.approx(1.0)
    assert 1 <= result.d_int <= k
    assert all(perf >= 0.99 for d, perf in result.curve if d >= k)


def test_d_int90_of_an_isotropic_regression_is_ninety_percent_of_its_dimension():
    """All q weights matter equally (whitened inputs, θ0 = 0): the best fit in a random d-dim subspace
    keeps the share ‖proj w‖²/‖w‖² of R², Beta(d/2, (q−d)/2) with mean d/q and s.d. ≈ 0.05 near
    d = 0.9q for q = 60. So d_int90 ≈ 0.9q = 54, within 3 s.d. (±9)."""
    q = 60
    task = sparse_regression(q, q, n=1000)
    result = intrinsic_dimension(task, SubspaceSettings(threshold=0.9, steps=800, lr=0.05, batch_size=1000),
                                 theta0=torch.zeros(q))
    assert abs(result.d_int - 0.9 * q) <= 9, result.sorted_curve()
    assert max(p for d, p in result.curve if d <= q // 4) < 0.5  # a quarter of the dimensions: far short


def test_intrinsic_dimension_bad_grid_names_the_value():
    with pytest.raises(Exception, match=r"d grid \[0, 5\].*1\.\.40"):
        intrinsic_dimension(sparse_regression(40, 3), SubspaceSettings(grid=(0, 5)))


TINY = dict(eigenvalues=3, probes=4, chains=1, draws=60, subspace=SubspaceSettings(steps=20, grid=(1, 4, 8)))


def test_measure_dimensions_is_cached_by_weights_and_settings():
    task = parse_toy("dln:3,2,3:r1", n=400)
    first = measure_dimensions(task, DimensionSettings(**TINY))
    again = measure_dimensions(task, DimensionSettings(**TINY))
    assert first["completed"] and not first["cached"] and again["cached"]
    assert again["lambda_hat"] == first["lambda_hat"] and again["d_int90_curve"] == first["d_int90_curve"]
    other = measure_dimensions(task, DimensionSettings(**{**TINY, "probes": 5}))
    assert not other["cached"]  # other settings: measured again


def test_stopped_measurement_is_partial_and_not_cached():
    task = parse_toy("dln:3,2,3:r1", n=400)
    calls = []

    def stop_after_lambda():
        calls.append(1)
        return "lambda_hat" in parts[-1] if parts else False

    parts = []
    out = measure_dimensions(task, DimensionSettings(**{**TINY, "seed": 3}), should_stop=stop_after_lambda,
                             on_part=parts.append)
    assert not out["completed"] and "lambda_hat" in out and out.get("d_int90") is None
    again = measure_dimensions(task, DimensionSettings(**{**TINY, "seed": 3}))
    assert not again["cached"]


def test_rank_vs_llc_demo_shows_the_zero_hessian_with_positive_lambda():
    rows = {r["model"]: r for r in rank_vs_llc_demo(("dln:5,5,5:r0", "dln:4,3,4:r1"))}
    assert rows["dln:5,5,5:r0"]["Hessian rank"] == 0 and rows["dln:5,5,5:r0"]["2λ (Aoyagi)"] == 19
    assert rows["dln:4,3,4:r1"]["Hessian rank"] == 7 < rows["dln:4,3,4:r1"]["2λ (Aoyagi)"]


# -- CLI ------------------------------------------------------------------------------------------

def cli(*args):
    return subprocess.run([sys.executable, "-m", "llc_core", "dimensions", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_cli_json_keys():
    out = cli("--toy", "dln:3,2,3:r1", "--chains", "1", "--draws", "60", "--probes", "4", "--eigenvalues", "3",
              "--d-grid", "1,4,8", "--subspace-steps", "20", "--device", "cpu", "--no-cache", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    keys = {"lambda_hat", "lambda_hat_mcse", "hessian_trace", "hessian_trace_se", "top_eigenvalues",
            "numerical_rank", "rank_tolerance", "d_int90", "d_int90_curve", "num_params", "name", "weights_sha256"}
    assert keys <= set(data)
    assert data["name"] == "dln:3,2,3:r1" and data["num_params"] == 12 and len(data["top_eigenvalues"]) == 3
    assert data["numerical_rank"] == 5  # r(M+N) − r² = 1·6 − 1
    assert data["d_int90_curve"][0][0] == 1 and all(d in (1, 2, 3, 4, 5, 6, 7, 8) for d, _ in data["d_int90_curve"])


@pytest.mark.parametrize("args,names", [
    (["--probes", "1"], "probes=1"),
    (["--eigenvalues", "0"], "eigenvalues=0"),
    (["--d-grid", "4,x"], "--d-grid='4,x'"),
    (["--d-grid", "0,4"], "--d-grid='0,4'"),
    (["--threshold", "2"], "threshold=2"),
    (["--rank-rtol", "1.5"], "tolerance=1.5"),
    (["--chains", "0"], "chains=0"),
    (["--device", "tpu"], "device='tpu'"),
])
def test_cli_bad_input_exits_2_naming_the_value(args, names):
    out = cli("--toy", "dln:3,2,3:r1", *args)
    assert out.returncode == 2, out.stderr
    assert names in out.stderr and out.stderr.count("\n") == 1 and not out.stdout


def test_cli_bad_d_grid_beyond_the_parameter_count():
    out = cli("--toy", "dln:3,2,3:r1", "--d-grid", "4,100")
    assert out.returncode == 2 and "1..12" in out.stderr


# -- the Dimensions page --------------------------------------------------------------------------

wait_for = partial(wait_for_shared, timeout=240)  # this file's runs need up to 240 s


def small_settings(at, prefix):
    for key, value in (("eig", 3), ("probes", 4), ("chains", 1), ("draws", 60), ("steps", 10)):
        at.number_input(key=prefix + key).set_value(value)
    at.run()


def test_dimensions_page_runs_and_stops(app):
    app.switch_page("pages/dimensions.py").run()
    assert not app.exception, app.exception
    app.selectbox(key="dim_model").set_value("toy:dln:4,3,4:r1").run()
    small_settings(app, "dim_")
    app.button(key="dim_run").click().run()
    wait_for(app, lambda a: any(c.value.startswith("Done") for c in a.caption), what="the measures")
    values = {m.label: m.value for m in app.metric}
    assert values["Numerical rank"] == "7" and values["Parameters D"] == "24"
    assert values["Top eigenvalue"] == "2"
    app.number_input(key="dim_draws").set_value(20_000).run()  # long enough to be stopped
    app.button(key="dim_run").click().run()
    app.button(key="dim_stop").click().run()
    wait_for(app, lambda a: not a.button(key="dim_run").disabled, what="Run enabled again")
    assert app.button(key="dim_stop").disabled
    assert any(c.value.startswith("Stopped") for c in app.caption)


def test_variability_page_measures_against_k_and_stops(app):
    app.switch_page("pages/variability.py").run()
    assert not app.exception, app.exception
    app.multiselect(key="dimk_ks").set_value([2]).run()
    small_settings(app, "dimk_")
    app.button(key="dimk_run").click().run()
    app.button(key="dimk_stop").click().run()
    wait_for(app, lambda a: not a.button(key="dimk_run").disabled, what="Run enabled again after Stop")
    assert app.button(key="dimk_stop").disabled
    assert any(c.value.startswith("Stopped") for c in app.caption)


def test_sparse_projection_has_unit_columns_and_matches_its_dense_form(monkeypatch):
    import llc_core.intrinsic_dim as intrinsic

    monkeypatch.setattr(intrinsic, "DENSE_PROJECTION_MAX", 0)
    p, kind = intrinsic.projection(300, 20, seed=1, device="cpu")
    assert kind == "sparse"
    dense = torch.stack([p @ column for column in torch.eye(20)], dim=1)  # P's columns
    assert torch.allclose(dense.norm(dim=0), torch.ones(20))
    assert (dense != 0).sum(dim=0).max() <= 18  # ⌈√300⌉ entries a column at most
    z = torch.randn(20)
    assert torch.allclose(p @ z, dense @ z, atol=1e-6)


def test_hessian_stops_when_asked_and_says_incomplete():
    task = small_classifier()
    calls = []
    stopped = hessian_summary(task, k=3, probes=10, dense=False, should_stop=lambda: len(calls) > 3 or calls.append(1))
    assert not stopped.completed


def test_dimensions_job_sends_each_measure_as_it_finishes():
    from llc_core.jobs import DimensionsJob

    task = parse_toy("dln:3,2,3:r1", n=400)
    job = DimensionsJob(task, DimensionSettings(**{**TINY, "seed": 11})).start()
    assert job.join(240), "the job did not end"
    state, update, result, error = job.peek()
    assert state == "done", error
    assert result["completed"] and result["numerical_rank"] == 5 and job.part()["d_int90"] == result["d_int90"]
    assert update[0] in ("lambda_hat", "hessian", "d_int90")


def test_dimensions_job_rejects_bad_settings_before_starting():
    from llc_core.config import InputError
    from llc_core.jobs import DimensionsJob

    with pytest.raises(InputError, match="probes=1"):
        DimensionsJob(parse_toy("dln:3,2,3:r1", n=400), DimensionSettings(**{**TINY, "probes": 1}))
