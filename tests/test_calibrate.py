"""Calibration sweeps and the auto-calibrate recommendation; the task-variability helpers."""

import json
import math
import threading

import numpy as np
import pytest

from llc_core.calibrate import (LADDER, Attempt, auto_calibrate, final_recommendation, first_candidate, half_decades,
                                pilot_config, pilot_grid, recommend)
from llc_core.limits import MAX_SWEEP_CELLS
from llc_core.sweep import Cell, SweepGrid, sweep
from llc_core.checkpoints import CACHE_DIR, list_checkpoints, load_task
from llc_core.config import ConfigError, SGLDConfig
from llc_core.jobs import BatchJob, SweepJob, TrainJob
from llc_core.toys import parse_toy
from llc_core.variability import Row, estimate_cached, linear_fit, per_k_rows, summarize


def cell(eps, gamma, lam, status="ok", flags=(), mala=0.9, mult=1.0):
    return Cell(eps, gamma, mult, 100.0 * mult, lam, 0.01, status, list(flags), mala, 0.1)


@pytest.fixture(scope="module")
def crossing1():
    return parse_toy("crossing:1", n=2000)


def test_half_decades_are_round_and_centred():
    assert half_decades(3.68e-5, 5) == (3e-6, 1e-5, 3e-5, 1e-4, 3e-4)
    assert half_decades(2e-4, 3) == (1e-4, 3e-4, 1e-3)


def test_recommend_takes_largest_epsilon_on_the_plateau_below_instability():
    cells = [cell(1e-5, g, 0.40) for g in (0.1, 1, 10)]
    cells += [cell(3e-5, g, 0.50) for g in (0.1, 1, 10)]
    cells += [cell(1e-4, g, 0.52) for g in (0.1, 1, 10)]  # agrees with 3e-5 within 10%
    cells += [cell(3e-4, g, 0.75) for g in (0.1, 1, 10)]  # discretisation bias: disagrees
    cells += [cell(1e-3, g, math.nan, "diverged", ["diverged"]) for g in (0.1, 1, 10)]
    rec = recommend(cells)
    # the smaller of the agreeing pair (its bias is ~1/3 of the larger's), at the γ plateau's centre
    assert rec.found and rec.epsilon == 3e-5 and rec.gamma == 1
    assert rec.nbeta_multiplier == 1.0
    text = " ".join(rec.reasons)
    assert "largest step whose λ̂" in text and "sits on a plateau" in text and "diverged" in text


def test_recommend_skips_disqualified_cells_and_prefers_a_gamma_plateau():
    cells = [cell(1e-4, 0.1, 0.9, "warning", ["not_stationary"]), cell(3e-4, 0.1, 0.95, "warning", ["low_mala"]),
             cell(1e-4, 1, 0.50), cell(3e-4, 1, 0.52), cell(1e-4, 10, 0.49), cell(3e-4, 10, 0.51)]
    rec = recommend(cells)
    assert rec.gamma in (1, 10) and rec.epsilon == 1e-4  # γ = 0.1 only had disqualified cells


def test_recommend_says_why_when_nothing_is_stable():
    cells = [cell(1e-4, 1, -3.0, "negative", ["negative"]), cell(1e-3, 1, math.nan, "diverged", ["diverged"])]
    rec = recommend(cells)
    assert not rec.found and "diverged, negative" in rec.reasons[0] and "trained" in rec.reasons[0]


def test_grid_caps_and_bad_values_are_refused(crossing1):
    pilot = SGLDConfig(chains=2, draws=50, burnin=0)
    big = SweepGrid(tuple(10.0**-k for k in range(2, 10)), tuple(range(1, 9)))
    with pytest.raises(ConfigError, match=f"64 cells is too large: at most {MAX_SWEEP_CELLS}"):
        big.validate(pilot, crossing1.n)
    with pytest.raises(ConfigError, match="chain-steps is too long"):
        SweepGrid((1e-4,), (1.0,)).validate(pilot.replace(chains=64, draws=50_000), crossing1.n)
    with pytest.raises(ConfigError, match="epsilon"):
        SweepGrid((-1e-4,), (1.0,)).validate(pilot, crossing1.n)
    with pytest.raises(ConfigError, match="multiplier"):
        SweepGrid((1e-4,), (1.0,), (float("nan"),)).validate(pilot, crossing1.n)
    with pytest.raises(ConfigError, match="empty"):
        SweepGrid((), (1.0,)).validate(pilot, crossing1.n)


def test_sweep_reports_each_cell_with_its_verdict(crossing1):
    grid = SweepGrid((1e-4, 1.0), (1.0,), (1.0, 2.0))
    cells = list(sweep(crossing1, grid, crossing1.defaults.replace(chains=2, draws=100, burnin=0,
                                                                                thin=1)))
    assert [(c.epsilon, c.nbeta_multiplier) for c in cells] == [(1e-4, 1.0), (1.0, 1.0), (1e-4, 2.0), (1.0, 2.0)]
    assert cells[1].verdict == "diverged" and cells[3].verdict == "diverged"
    assert cells[0].lambda_hat > 0 and cells[2].nbeta == pytest.approx(2 * cells[0].nbeta)


def test_stopping_a_sweep_keeps_finished_cells_only(crossing1):
    grid = SweepGrid((1e-5, 3e-5, 1e-4), (1.0,))
    job = SweepJob(crossing1, grid, crossing1.defaults.replace(chains=2, draws=4000, burnin=0, thin=1))
    job.start()
    while not job.snapshot_cells() and job.running:
        threading.Event().wait(0.05)
    job.stop()
    assert job.join(10)
    assert job.state == "stopped" and 1 <= len(job.result) < 3 and all(c.completed for c in job.result)


def test_auto_calibrate_meets_the_toy_target_from_its_recommendation():
    """The estimator issue's bar: within 10% of the exact finite-n target (bench/calibration.py
    runs the same check on seven toys)."""
    task = parse_toy("crossing:1")
    assert len(pilot_grid(task).points()) == 15 and pilot_config(task).chains == 8
    rec = auto_calibrate(task)
    assert rec.found and rec.confirmed
    assert abs(rec.lambda_hat / task.target_lambda - 1) < 0.10
    assert rec.status == "ok" and any("Confirmed" in r for r in rec.reasons)
    assert all(a.clean for a in rec.attempts if a.epsilon == rec.epsilon and a.config == rec.config)


# -- never recommend a flagged setting -------------------------------------------------------

def _realistic_ladder():
    """A DLN-like pilot bracket (issue 10): λ̂ rises with ε; the best-looking pair (3e-6, 1e-5: agree
    within 2%, MALA 0.97) has its smaller cell flagged high_mala — the step is too small for the
    pilot chain to cross the flat directions, the kind of cell the old rule recommended."""
    return [cell(1e-6, 1, 3.1, "warning", ["high_mala", "not_stationary"], mala=0.999),
            cell(3e-6, 1, 3.9, "warning", ["high_mala"], mala=0.997),
            cell(1e-5, 1, 3.95, mala=0.97), cell(3e-5, 1, 4.6, mala=0.9),
            cell(1e-4, 1, 6.2, "warning", ["low_mala"], mala=0.7), cell(3e-4, 1, math.nan, "diverged", ["diverged"])]


def _attempt(eps, lam, flags=(), status=None, draws=4000):
    config = SGLDConfig(epsilon=eps, gamma=1.0, nbeta=100.0, chains=8, draws=draws, burnin=2000, thin=5)
    return Attempt(eps, lam, 0.1, status or ("warning" if flags else "ok"), list(flags), 0.9, True, 0.04, config)


def test_a_step_biased_run_steps_epsilon_down_instead_of_growing_the_chains():
    """The step's own bias grows with ε, not with too few draws: doubling the chains cannot remove it."""
    from llc_core.calibrate import _next_step

    assert _next_step(_attempt(3e-5, 4.6, ["step_bias"]), index=5, length=1) == (4, 1)
    assert _next_step(_attempt(3e-5, 4.6, ["not_stationary"]), index=5, length=1) == (5, 2)


def test_when_every_pilot_cell_is_too_short_the_full_length_runs_start_at_the_largest_of_them():
    """No cell brackets: the default ε is too large (low_mala), the rungs below only too short. The full
    runs start at the largest too-short ε (confirm_loop then doubles their length), not nowhere."""
    from llc_core.calibrate import short_candidate

    cells = [cell(1e-5, 1, 93.0, "warning", ["low_mala", "high_rhat"], mala=0.6),
             cell(3e-6, 1, 60.0, "warning", ["not_stationary", "lambda_drift"], mala=0.9),
             cell(1e-6, 1, 40.0, "warning", ["high_rhat", "low_ess"], mala=0.97)]
    assert first_candidate(cells) is None and short_candidate(cells) == 3e-6
    too_large = [cell(1e-5, 1, 93.0, "warning", ["low_mala"]), cell(3e-6, 1, 70.0, "warning", ["step_bias"]),
                 cell(1e-6, 1, -2.0, "negative", ["negative"])]
    assert short_candidate(too_large) is None  # nothing only too short: nothing to grow
    # dln:10,20,20,10:r1: 1e-5 too short at the first pilot length, step-biased at twice it (the later
    # cell); 3e-6 too short at 2× and 4×: the full runs start at 3e-6
    longer = [cell(1e-5, 1, 41.5, "warning", ["high_rhat", "low_ess"], mala=0.95),
              cell(1e-5, 1, 47.7, "warning", ["high_rhat", "low_ess", "step_bias"], mala=0.9),
              cell(3e-6, 1, 35.7, "warning", ["high_rhat", "low_ess"], mala=0.99),
              cell(3e-6, 1, 41.9, "warning", ["high_rhat", "low_ess"], mala=0.99)]
    assert short_candidate(longer) == 3e-6


def test_the_pilot_share_does_not_stop_a_walk_that_has_only_seen_too_large_steps():
    from llc_core.calibrate import _only_too_large

    too_large = [cell(3e-5, 1, 146.0, "warning", ["low_mala"], mala=0.5), cell(1e-5, 1, 90.0, "warning", ["step_bias"]),
                 cell(3e-6, 1, math.nan, "diverged", ["diverged"])]
    assert _only_too_large(too_large)  # go on down: nothing here could be confirmed
    assert not _only_too_large(too_large + [cell(1e-6, 1, 48.0, "warning", ["not_stationary"])])  # a start for full runs
    assert not _only_too_large(too_large + [cell(1e-6, 1, 49.0)]) and not _only_too_large([])


def test_the_first_full_length_candidate_is_the_next_usable_epsilon_below_the_largest_not_a_low_plateau():
    """Short pilot chains at small ε sit low by about the same amount, so two of them "agree" on a
    false plateau. dln:5,6,3,4:r2 (λ = 8): pilots 1e-5 7.94, 3e-6 7.01, 1e-6 7.27; the old rule took
    the plateau's smaller ε, 1e-6, whose full run gave 7.40 (−7.5%). The candidate is now the next
    usable ε below the largest usable one (the edge carries a step bias that short chains under-rate)."""
    cells = [cell(1e-5, 1, 7.942, mala=0.97), cell(3e-5, 1, 9.403, "warning", ["step_bias"], mala=0.81),
             cell(3e-6, 1, 7.013, mala=0.99), cell(1e-6, 1, 7.113, "warning", ["low_ess"], mala=1.0),
             cell(1e-6, 1, 7.271, mala=1.0)]
    assert first_candidate(cells) == 3e-6
    # crossing:2's bracket: the largest usable cell (1e-3) is the edge; full runs there said
    # lambda_drift, then step_bias at twice the length — one rung below (3e-4) confirmed
    crossing = [cell(3e-4, 1, 0.3664, "warning", ["high_chain_variance"], mala=1.0), cell(1e-3, 1, 0.3046, mala=1.0),
                cell(3e-3, 1, 0.28, "warning", ["step_bias"], mala=0.98)]
    assert first_candidate(crossing) == 3e-4
    assert first_candidate([cell(1e-5, 1, 4.0, mala=0.95)]) == 1e-5  # a single usable cell is the candidate
    # below the MALA band, the largest usable cell is not a candidate while one in band exists
    assert first_candidate([cell(1e-5, 1, 4.0, mala=0.95), cell(3e-5, 1, 4.2, mala=0.86),
                            cell(1e-4, 1, 4.6, mala=0.82)]) == 1e-5


def test_never_recommends_a_flagged_cell_from_the_pilot():
    cells = _realistic_ladder()
    assert recommend(cells).epsilon not in (1e-6, 3e-6)  # the sweep reader skips it too
    eps = first_candidate(cells)
    assert eps == 1e-5 and next(c for c in cells if c.epsilon == eps).flags == []


def test_never_recommends_a_flagged_full_length_run():
    cells = _realistic_ladder()
    pilots = [(SGLDConfig(epsilon=c.epsilon, gamma=1.0, nbeta=100.0, chains=8, draws=400), c) for c in cells]
    # the run closest to the truth (λ = 4) is flagged: it must not be the recommendation
    attempts = [_attempt(1e-5, 4.02, ["not_stationary"]), _attempt(1e-5, 3.7, draws=8000)]
    rec = final_recommendation(pilots, attempts, None, parse_toy("dln:3,4,5,3:r0", n=1000))
    assert rec.found and not rec.confirmed and rec.lambda_hat == 3.7 and rec.config.draws == 8000
    assert rec.status == "warning" and [w["code"] for w in rec.warnings] == ["not_confirmed"]
    assert rec.lambda_range[0] <= 3.1 and rec.lambda_range[1] >= 6.2  # every run's λ̂, flagged ones too
    # no clean full-length run: fall back to the clean pilot cell, unconfirmed, and say so
    rec = final_recommendation(pilots, attempts[:1], None, parse_toy("dln:3,4,5,3:r0", n=1000))
    assert rec.found and not rec.confirmed and rec.epsilon == 1e-5 and rec.config.draws == 400
    assert any("no full-length run was clean" in r for r in rec.reasons)
    # nothing clean anywhere: nothing recommended
    flagged = [(cfg, c) for cfg, c in pilots if c.flags]
    rec = final_recommendation(flagged, attempts[:1], None, parse_toy("dln:3,4,5,3:r0", n=1000))
    assert not rec.found and not any(rec.to_dict()["recommended"].values()) and rec.warnings[0]["code"] == "no_clean_run"


def test_the_pilot_fallback_never_pairs_cells_of_two_samplers():
    """ε is a different step under RMSProp's preconditioner: plain SGLD's 1e-5 and RMSProp-SGLD's 3e-5
    are not neighbouring rungs of one ladder, even when their λ̂ agree. Pooled, they formed a 'plateau'
    and the fallback recommended the SGLD cell; the last sampler's own cells decide."""
    sgld = [cell(1e-5, 1, 3.0, mala=0.95), cell(3e-5, 1, 5.0, "warning", ["low_mala"], mala=0.7)]
    rms = [cell(3e-5, 1, 3.1, mala=0.95), cell(1e-4, 1, 4.5, mala=0.92)]
    pilots = ([(SGLDConfig(epsilon=c.epsilon, gamma=1.0, nbeta=100.0, chains=2, draws=400), c) for c in sgld]
              + [(SGLDConfig(sampler="rmsprop_sgld", epsilon=c.epsilon, gamma=1.0, nbeta=100.0, chains=2, draws=400), c)
                 for c in rms])
    rec = final_recommendation(pilots, [], None, parse_toy("dln:3,4,5,3:r0", n=1000))
    assert rec.found and not rec.confirmed and rec.sampler == "rmsprop_sgld"
    assert rec.epsilon == first_candidate(rms) == 3e-5  # the rung below RMSProp's own largest clean cell
    only_sgld = final_recommendation(pilots[:2], [], None, parse_toy("dln:3,4,5,3:r0", n=1000))
    assert (only_sgld.sampler, only_sgld.epsilon) == ("sgld", 1e-5)


def test_confirmed_only_with_a_clean_agreeing_run_one_step_lower_and_one_twice_as_long():
    attempts = [_attempt(3e-5, 4.6, ["low_mala"]), _attempt(1e-5, 3.2, draws=2000), _attempt(1e-5, 3.95),
                _attempt(1e-5, 4.0, draws=8000), _attempt(3e-6, 3.9)]
    task = parse_toy("dln:3,4,5,3:r0", n=1000)
    rec = final_recommendation([], attempts, attempts[3], task)
    assert rec.confirmed and rec.status == "ok" and rec.epsilon == 1e-5 and rec.warnings == []
    assert rec.config.draws == 8000 and rec.lambda_hat == 4.0  # the longer run is the recommendation
    # the evidence named is the run half as long (not the earlier, shorter one) and the rung below
    assert any("half as long it gave 3.95" in r and "3.9 " in r for r in rec.reasons), rec.reasons
    out = rec.to_dict(task)
    assert set(out["recommended"]) >= {"epsilon", "gamma", "nbeta", "sampler", "chains", "draws", "burnin", "thin",
                                       "batch_size"}
    assert out["lambda_range"] == [3.2, 4.6] and out["true_lambda"] == 4.0


def _scripted_search(monkeypatch, table):
    """confirm_loop's decisions on scripted full-length runs: `table[(ε, length)]` is (λ̂, flags)."""
    from llc_core import calibrate

    order = []

    def full_run(s, epsilon, length):
        order.append((epsilon, length))
        lam, flags = table[(epsilon, length)]
        attempt = _attempt(epsilon, lam, flags, draws=4000 * length)
        s.attempts.append(attempt)
        return attempt

    monkeypatch.setattr(calibrate, "_full_run", full_run)
    task = parse_toy("dln:3,4,5,3:r0", n=1000)
    search = calibrate._Search(task, task.defaults, calibrate.Budget(60.0))
    return calibrate, search, order


def test_a_rung_check_that_agrees_is_not_enough_when_twice_as_long_moves_lambda(monkeypatch):
    """The truth suite's silent misses (seed 12): ε and the rung below agree while both under-explore;
    twice as long at ε moves λ̂ (dln:2,3,5,2,3:r1: 2.17 → 2.48 → 2.49 at 1×, 2×, 4×). Confirmed only
    where λ̂ holds with length and with ε: here twice the length, with its own checks."""
    table = {(3e-6, 1): (2.17, []), (1e-6, 1): (2.05, []), (3e-6, 2): (2.48, []),
             (1e-6, 2): (2.41, []), (3e-6, 4): (2.49, [])}
    calibrate, search, order = _scripted_search(monkeypatch, table)
    confirmed = calibrate.confirm_loop(search, 3e-6)
    assert order == [(3e-6, 1), (3e-6, 2), (3e-6, 4), (1e-6, 2)]  # the length check comes first
    assert confirmed.epsilon == 3e-6 and confirmed.lambda_hat == 2.49 and confirmed.config.draws == 16000
    table[(3e-6, 4)], table[(3e-6, 8)] = (2.9, []), (3.3, [])  # still moving: nothing confirmed
    calibrate, search, order = _scripted_search(monkeypatch, table)
    assert calibrate.confirm_loop(search, 3e-6) is None
    assert order == [(3e-6, 1), (3e-6, 2), (3e-6, 4), (3e-6, 8)]  # no 16×: no rung check to waste


def test_the_rung_below_still_has_to_agree(monkeypatch):
    table = {(1e-5, 1): (3.0, []), (1e-5, 2): (3.05, []), (3e-6, 1): (2.5, []), (3e-6, 2): (2.52, []),
             (1e-6, 1): (2.45, [])}
    calibrate, search, order = _scripted_search(monkeypatch, table)
    confirmed = calibrate.confirm_loop(search, 1e-5)
    assert order == [(1e-5, 1), (1e-5, 2), (3e-6, 1), (3e-6, 2), (1e-6, 1)]
    assert confirmed.epsilon == 3e-6 and confirmed.lambda_hat == 2.52


def test_a_run_that_turns_step_biased_when_longer_steps_epsilon_down(monkeypatch):
    """Longer chains reach where the curvature is larger (dln:2,3,5,2,3:r1 at ε = 1e-5: 2.53 at 1×,
    3.11 with step_bias at 2×): that is ε too large, so the next candidate is a rung lower at 2×."""
    table = {(1e-5, 1): (2.53, []), (1e-5, 2): (3.11, ["step_bias"]), (3e-6, 2): (2.48, []),
             (3e-6, 4): (2.49, []), (1e-6, 2): (2.45, [])}
    calibrate, search, order = _scripted_search(monkeypatch, table)
    confirmed = calibrate.confirm_loop(search, 1e-5)
    assert order == [(1e-5, 1), (1e-5, 2), (3e-6, 2), (3e-6, 4), (1e-6, 2)]
    assert confirmed.epsilon == 3e-6 and confirmed.config.draws == 16000


def test_unconfirmed_recommends_the_longest_clean_run(monkeypatch):
    attempts = [_attempt(3e-6, 2.17), _attempt(3e-6, 2.48, draws=8000), _attempt(1e-6, 2.41)]
    rec = final_recommendation([], attempts, None, parse_toy("dln:3,4,5,3:r0", n=1000))
    assert not rec.confirmed and rec.lambda_hat == 2.48 and rec.config.draws == 8000


def test_the_ladder_spans_the_sizes_that_need_it():
    """65k-parameter DLNs needed ε ≈ 1e-7 … 5e-9 (Furman & Lau 2024); the old grid stopped at 3e-6.
    Its top rung is one a config accepts (the ladder used to end at 30, which SGLDConfig refuses)."""
    from llc_core.limits import MAX_EPSILON

    assert min(LADDER) <= 5e-9 and 1e-7 in LADDER and max(LADDER) == MAX_EPSILON
    SGLDConfig(epsilon=max(LADDER)).validate()
    assert half_decades(1e-13, 5) == (1e-12, 3e-12, 1e-11, 3e-11, 1e-10)  # near the end: still 5 values


def test_the_budget_forecast_counts_steps_not_draws():
    """A thinned run (every toy keeps 1 draw in 5) took `thin` times more steps than draws: the time
    forecast for the same run again must be its own wall time, not a fifth of it (it was, so runs
    that could not fit were started and cut at the deadline)."""
    from llc_core import calibrate

    task = parse_toy("crossing:1", n=2000)
    base = task.defaults.replace(chains=4, draws=300, burnin=100, thin=5)
    search = calibrate._Search(task, base, calibrate.Budget(120.0))
    attempt = calibrate._full_run(search, base.epsilon, 1)
    predicted = base.chains * base.total_steps / search.budget.rate
    assert attempt.completed and 0.6 * attempt.seconds <= predicted <= 1.6 * attempt.seconds, (predicted, attempt.seconds)


def test_a_confirmation_names_the_runs_of_its_own_sampler():
    """After plain SGLD stayed unconfirmed the search confirmed with rmsprop_sgld: the reason quotes
    rmsprop_sgld's run half as long and its rung below, not SGLD's run at the same ε and length."""
    sgld = _attempt(1e-5, 5.0)
    rms = [_attempt(1e-5, 6.0), _attempt(1e-5, 6.1, draws=8000), _attempt(3e-6, 6.05)]
    for a in rms:
        a.config = a.config.replace(sampler="rmsprop_sgld")
    rec = final_recommendation([], [sgld] + rms, rms[1], parse_toy("dln:3,4,5,3:r0", n=1000))
    assert rec.confirmed and rec.sampler == "rmsprop_sgld"
    assert any("half as long it gave 6 " in r and "6.05" in r for r in rec.reasons), rec.reasons


def test_at_the_draws_cap_twice_as_long_is_the_same_run_and_is_not_counted(monkeypatch):
    """At MAX_DRAWS and MAX_BURNIN a 'twice as long' run would repeat the run itself (same config and
    seed) and agree with it trivially: the length check cannot be passed that way."""
    from llc_core.limits import MAX_BURNIN, MAX_DRAWS

    calibrate, search, order = _scripted_search(monkeypatch, {(3e-6, 1): (2.17, [])})
    search.base = search.base.replace(draws=MAX_DRAWS, burnin=MAX_BURNIN)
    assert calibrate.confirm_loop(search, 3e-6) is None and order == [(3e-6, 1)]


def test_a_search_where_nothing_ran_says_so():
    rec = final_recommendation([], [], None, parse_toy("crossing:1", n=2000))
    assert not rec.found and any("Nothing ran" in r for r in rec.reasons)
    assert not any("carried a flag" in r for r in rec.reasons)


# -- task variability ------------------------------------------------------------------------

def test_linear_fit_recovers_a_line_and_r2():
    x = np.arange(2, 11)
    slope, intercept, r2 = linear_fit(x, 3.0 * x + 5)
    assert slope == pytest.approx(3.0) and intercept == pytest.approx(5.0) and r2 == pytest.approx(1.0)
    noisy = 3.0 * x + 5 + np.array([1, -1] * 4 + [0])
    assert 0.9 < linear_fit(x, noisy)[2] < 1.0
    assert math.isnan(linear_fit([4, 4], [1, 2])[0])


def test_summarize_groups_by_architecture_and_k():
    rows = [Row(f"m{k}{s}", a, k, s, k * (1 if a == "CNN" else 2) + s, 0.1, "ok" if s else "warning", False)
            for a in ("CNN", "MLP") for k in (2, 3, 4) for s in (0, 1)]
    out = summarize(rows)
    assert out["MLP"]["classes"] == [2, 3, 4] and out["MLP"]["mean"] == [4.5, 6.5, 8.5]
    assert out["CNN"]["slope"] == pytest.approx(1.0) and out["MLP"]["slope"] == pytest.approx(2.0)
    assert out["CNN"]["flagged"] == [True, True, True]


def test_estimates_are_cached_on_disk_and_a_damaged_entry_is_recomputed(tmp_path):
    meta = next(m for m in list_checkpoints(CACHE_DIR) if m["name"] == "mnist1d_mlp_k2_s0")
    overrides = {"chains": 1, "draws": 30, "burnin": 0}
    first = estimate_cached(meta, load_task, overrides, folder=tmp_path)
    again = estimate_cached(meta, load_task, overrides, folder=tmp_path)
    assert not first.cached and again.cached and again.lambda_hat == pytest.approx(first.lambda_hat)
    (entry,) = tmp_path.glob("*.json")
    assert json.loads(entry.read_text())["config"]["draws"] == 30
    entry.write_text("{broken")
    assert not estimate_cached(meta, load_task, overrides, folder=tmp_path).cached
    other = estimate_cached(meta, load_task, {**overrides, "seed": 1}, folder=tmp_path)
    assert not other.cached and len(list(tmp_path.glob("*.json"))) == 2


def test_batch_job_stops_between_items():
    seen = []

    def work(item, cancel):  # the job's own cancel event: Stop pressed while item 2 runs
        seen.append(item)
        if item == 2:
            cancel.set()
        return item * 10

    job = BatchJob(range(10), work).start()
    assert job.join(5) and job.state == "stopped" and job.result == [0, 10, 20] and seen == [0, 1, 2]


def test_stopped_training_saves_nothing(tmp_path):
    out = tmp_path / "half.safetensors"
    job = TrainJob(dict(dataset="mnist1d", arch="mlp", classes=2, seed=0, out=out, epochs=500, same_n=False,
                        overwrite=False))
    job.start()
    while len(job.snapshot_history()) < 2 and job.running:
        threading.Event().wait(0.05)
    job.stop()
    assert job.join(30) and job.state == "stopped" and job.result is None
    assert not out.exists() and not list(tmp_path.iterdir())


def test_training_refuses_to_overwrite(tmp_path):
    out = tmp_path / "taken.safetensors"
    out.write_bytes(b"keep me")
    job = TrainJob(dict(dataset="mnist1d", arch="mlp", classes=2, seed=0, out=out, epochs=1, overwrite=False)).start()
    assert job.join(30) and job.state == "failed" and "already exists" in job.error
    assert out.read_bytes() == b"keep me"


def test_per_k_rows_mark_flagged_ks():
    rows = [Row(f"m{k}{s}", "MLP", k, s, 10.0 * k + s, 0.1, "warning" if k == 3 and s else "ok", False)
            for k in (2, 3) for s in (0, 1)]
    assert per_k_rows(summarize(rows), flag_mark=" *") == [{"K": 2, "MLP": "20.50 ± 0.71"},
                                                           {"K": 3, "MLP": "30.50 ± 0.71 *"}]
    one_seed = [r for r in rows if r.seed == 0]  # no spread to show: not "± 0.00"
    assert per_k_rows(summarize(one_seed), flag_mark=" *") == [{"K": 2, "MLP": "20.00 (1 seed)"},
                                                               {"K": 3, "MLP": "30.00 (1 seed)"}]


# -- the calibrate CLI contract --------------------------------------------------------------

def _cli(*args, timeout=600):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "llc_core", "calibrate", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_calibrate_cli_prints_the_contract_json_and_refuses_bad_input():
    done = _cli("--toy", "crossing:1", "--budget-seconds", "40", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"found", "confirmed", "recommended", "lambda_hat", "lambda_hat_se", "status", "warnings", "true_lambda",
            "reasons", "lambda_range"} <= set(out)
    assert out["true_lambda"] == 0.5 and out["reasons"] and all("code" in w for w in out["warnings"])
    assert "pilot" in done.stderr  # progress goes to stderr
    if out["found"]:
        assert {"epsilon", "gamma", "nbeta", "sampler", "chains", "draws", "burnin", "thin",
                "batch_size"} <= set(out["recommended"])
    assert out["confirmed"] == (out["status"] == "ok")  # `ok` only for a confirmed recommendation
    for bad, word in ((["--toy", "nonsense:1"], "nonsense:1"), (["--toy", "crossing:1", "--budget-seconds", "-5"], "-5"),
                      (["--toy", "crossing:1", "--device", "tpu"], "tpu"),  # the same --device as every command
                      (["--toy", "crossing:1", "--device", "cuda:99"], "cuda:99")):  # resolved before the search
        refused = _cli(*bad, "--json", timeout=60)
        assert refused.returncode == 2 and refused.stdout == ""
        assert len(refused.stderr.strip().splitlines()) == 1 and word in refused.stderr


def test_full_length_runs_agree_within_ten_percent_or_their_noise():
    from llc_core.calibrate import _runs_agree

    assert _runs_agree(_attempt(1e-5, 4.0), _attempt(3e-6, 3.7))  # 7.5% apart
    assert not _runs_agree(_attempt(1e-5, 4.0), _attempt(3e-6, 3.0))  # 25% apart, s.e. 0.04 each
    noisy = _attempt(3e-6, 3.0)
    noisy.lambda_se = 0.5  # 1 apart, 2 combined s.e. = 1.0: indistinguishable
    assert _runs_agree(_attempt(1e-5, 4.0), noisy)


def test_auto_calibrate_stops_at_its_budget_even_when_a_run_would_overrun_it():
    """The rate forecast only decides whether to start a run; a run under way is cut at the deadline
    (a loaded machine made a 90 s budget take 290 s). The first pilot cell of this DLN alone takes
    longer than the budget here, and nothing is measured yet to forecast it."""
    task = parse_toy("dln:10,20,20,10:r1")
    rec = auto_calibrate(task, budget_seconds=2.0)
    assert rec.seconds < 2.0 + 1.0, rec.seconds  # the deadline, plus one chain step and the wrap-up
    assert not rec.confirmed and rec.status == "warning"
    assert not any(a.completed is False for a in rec.attempts)  # a cut run is never reported as a result
