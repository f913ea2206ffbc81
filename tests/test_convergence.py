"""R̂, ESS, MCSE and the λ̂ drift check (llc_core/convergence.py) against ArviZ and real runs."""

import numpy as np
import pytest

from llc_core import convergence as cv
from llc_core import estimate_llc
from llc_core.toys import parse_toy


def ar1(rho, chains=4, n=20_000, seed=0):
    """Stationary AR(1) chains with unit marginal variance: ESS of the mean = CN(1−ρ)/(1+ρ)."""
    rng = np.random.default_rng(seed)
    x = np.empty((chains, n))
    x[:, 0] = rng.normal(size=chains)
    eps = rng.normal(size=(chains, n)) * np.sqrt(1 - rho**2)
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + eps[:, t]
    return x


# Reference values: classic ArviZ 0.23.4 (`arviz.ess(x, method="bulk")`, `method="tail"`,
# `arviz.rhat(x, method="rank")`, `arviz.mcse(x, method="mean")`) on ar1(rho), computed once with
# that release; llc_core now calls arviz-stats, whose array functions must reproduce them.
ARVIZ_0_23_4 = {  # rho: (ess bulk, ess tail, rhat, mcse of the mean)
    0.0: (80359.16606901685, 79952.79999110205, 0.9999881030970148, 0.0035267261467067878),
    0.5: (26523.376901024774, 47182.27744474406, 1.0000398667284474, 0.006128530550985705),
    0.9: (3685.361526975906, 8890.344618261055, 1.000678334139382, 0.016520256348485286),
}


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_ess_of_an_ar1_series_matches_theory_and_arviz(rho):
    x = ar1(rho)
    expected = x.size * (1 - rho) / (1 + rho)
    assert cv.ess(x, "bulk") == pytest.approx(expected, rel=0.15)
    bulk, tail, rhat, mcse = ARVIZ_0_23_4[rho]
    assert cv.ess(x, "bulk") == pytest.approx(bulk, rel=1e-12)
    assert cv.ess(x, "tail") == pytest.approx(tail, rel=1e-12)
    assert cv.rhat(x) == pytest.approx(rhat, rel=1e-12) and cv.rhat(x) < 1.01
    assert cv.mean_mcse(x) == pytest.approx(mcse, rel=1e-12)
    assert cv.mean_mcse(x) == pytest.approx(np.sqrt(1 / expected), rel=0.1)


def test_a_shifted_chain_gives_a_large_rhat_and_the_flag():
    x = ar1(0.5, n=2000)
    x[0] += 3.0
    conv = cv.convergence(x, nbeta=1.0, init_loss=-10.0)
    assert conv.rhat > 1.3  # ≫ 1: healthy chains give < 1.01
    assert "high_rhat" in [f.code for f in cv.flags(conv)]


def test_lambda_mcse_is_nbeta_times_the_mcse_of_the_mean_draw():
    x = ar1(0.7, n=3000) + 5.0
    conv = cv.convergence(x, nbeta=250.0, init_loss=4.0)
    assert conv.lambda_mcse == pytest.approx(250.0 * 0.022774390115949998)  # arviz 0.23.4's mcse(x)
    assert conv.lambda_first_half == pytest.approx(250.0 * (x[:, :1500].mean() - 4.0))
    assert conv.lambda_second_half == pytest.approx(250.0 * (x[:, 1500:].mean() - 4.0))
    assert cv.flags(conv) == []  # stationary, mixed, plenty of draws


def test_drift_between_the_halves_raises_lambda_drift_and_few_draws_low_ess():
    x = ar1(0.5, n=2000) * 0.1 + 1.0
    x += np.linspace(0.0, 0.5, 2000)  # λ̂ still climbing: second half ~40% above the first
    assert "lambda_drift" in [f.code for f in cv.flags(cv.convergence(x, 1.0, 0.0))]
    few = ar1(0.95, chains=2, n=200)
    codes = [f.code for f in cv.flags(cv.convergence(few + 3.0, 1.0, 0.0))]
    assert "low_ess" in codes
    assert "low_ess" not in [f.code for f in cv.flags(cv.convergence(few + 3.0, 1.0, 0.0), final=False)]


def test_too_few_points_give_nan_and_no_flags():
    conv = cv.convergence(np.ones((4, 10)), 1.0, 0.0)
    assert np.isnan(conv.rhat) and np.isnan(conv.ess_bulk) and np.isnan(conv.lambda_mcse)
    assert cv.flags(conv) == []


def test_a_chain_still_climbing_is_flagged_on_a_real_run():
    """dln:5,5,5:r0 from w* = 0 with no burn-in and a tenth of its draws: the loss still rises."""
    task = parse_toy("dln:5,5,5:r0", n=20_000)
    res = estimate_llc(task, task.defaults.replace(chains=4, draws=400, burnin=0, thin=1))
    codes = [f.code for f in res.warnings]
    assert {"lambda_drift", "low_ess"} & set(codes), codes
    assert res.status == "warning"
    out = res.to_json_dict()
    for key in ("rhat", "ess_bulk", "ess_tail", "lambda_hat_mcse"):
        assert out[key] == res.diagnostics[key]
    assert out["lambda_hat_se"] == out["lambda_hat_mcse"]


def test_a_calibrated_run_raises_no_convergence_flag():
    task = parse_toy("crossing:2", n=5000)
    res = estimate_llc(task, task.defaults.replace(chains=8, draws=2000))
    assert not {"high_rhat", "low_ess", "lambda_drift"} & {f.code for f in res.warnings}
    assert res.diagnostics["rhat"] < cv.RHAT_MAX and res.diagnostics["ess_bulk"] > cv.ESS_MIN
