"""Ground truth: Aoyagi's formula, the exact finite-n targets, and a fast accuracy subset."""

import math

import pytest

from llc_core import estimate_llc
from llc_core.toys import (ToySpecError, aoyagi_lambda, crossing_lambda, exact_target, parse_toy,
                           rrr_lambda)

DLN_VECTORS = [([5, 5, 5], 0, 9.5), ([4, 3, 8], 0, 6), ([10, 5, 10], 0, 22), ([10, 5, 10], 2, 29),
               ([10, 20, 20, 10], 0, 50), ([10, 20, 20, 10], 1, 50), ([10, 20, 20, 10], 4, 50),
               ([3, 3], 0, 4.5)]
RRR_VECTORS = [((5, 3, 5), 6.5), ((5, 4, 5), 8), ((8, 3, 4), 6), ((3, 8, 4), 6)]


@pytest.mark.parametrize("widths,rank,expected", DLN_VECTORS)
def test_aoyagi_test_vectors(widths, rank, expected):
    assert aoyagi_lambda(widths, rank) == expected


@pytest.mark.parametrize("mhn,expected", RRR_VECTORS)
def test_reduced_rank_regression_vectors(mhn, expected):
    assert rrr_lambda(*mhn, 0) == expected
    assert aoyagi_lambda(list(mhn), 0) == expected


def test_aoyagi_reduces_to_reduced_rank_regression_everywhere_small():
    for m in range(1, 8):
        for h in range(1, 8):
            for n in range(1, 8):
                for r in range(min(m, h, n) + 1):
                    assert aoyagi_lambda([m, h, n], r) == rrr_lambda(m, h, n, r), (m, h, n, r)


def test_crossing_lambda_and_multiplicity():
    assert crossing_lambda([1]) == (0.5, 1)
    assert crossing_lambda([1, 1]) == (0.5, 2)
    assert crossing_lambda([1, 2]) == (0.25, 1)
    assert crossing_lambda([3, 3]) == (1 / 6, 2)


# docs/method.md §3: exact nβ·E_β[K] for K = ½·Π w^{2p} with a N(0, 1) localizing prior.
TARGET_TABLE = {
    (1,): [0.495, 0.500, 0.500, 0.500, 0.500],
    (2,): [0.238, 0.246, 0.249, 0.250, 0.250],
    (3,): [0.153, 0.160, 0.164, 0.165, 0.166],
    (1, 2): [0.198, 0.220, 0.233, 0.241, 0.245],
    (1, 4): [0.101, 0.110, 0.116, 0.119, 0.122],
    (1, 1): [0.339, 0.381, 0.407, 0.423, 0.435],
    (2, 3): [0.105, 0.119, 0.130, 0.138, 0.144],
}


@pytest.mark.parametrize("powers", list(TARGET_TABLE))
def test_quadrature_matches_the_design_table(powers):
    got = [exact_target(list(powers), nb) for nb in (1e2, 1e3, 1e4, 1e5, 1e6)]
    assert got == pytest.approx(TARGET_TABLE[powers], abs=6e-4)


def test_multiplicity_two_target_follows_the_log_correction():
    # nβ·E[K] ≈ λ − (m−1)/log(nβ) for p = [1, 1] at large nβ
    nb = 1e6
    assert exact_target([1, 1], nb) == pytest.approx(0.5 - 1 / math.log(nb), abs=0.02)


@pytest.mark.parametrize("spec", ["crossing:", "crossing:0", "crossing:1,a", "dln:5:r0",
                                  "dln:5,5,5:r9", "dln:5,100,5:r0", "nope:1", ""])
def test_bad_toy_specs_are_refused(spec):
    with pytest.raises(ToySpecError):
        parse_toy(spec)


# -- fast accuracy subset (the full suite is bench/accuracy.py) ---------------------------------

@pytest.mark.parametrize("spec", ["crossing:1", "crossing:2"])
def test_sampler_meets_the_exact_finite_n_target(spec):
    task = parse_toy(spec)
    res = estimate_llc(task)
    assert res.status == "ok"
    assert abs(res.lambda_hat - task.target_lambda) <= 0.10 * task.target_lambda
    assert abs(res.lambda_hat - task.true_lambda) <= 0.10 * task.true_lambda


def test_dln_estimate_meets_aoyagi():
    task = parse_toy("dln:4,3,4:r1")
    res = estimate_llc(task, task.defaults.replace(draws=1000, burnin=1000))
    assert abs(res.lambda_hat - 6.0) <= 0.6


@pytest.mark.parametrize("spec", ["dln:5,5,5:r0", "crossing:1"])
def test_a_toys_data_do_not_depend_on_the_callers_torch_threads(spec):
    """The same spec gives the same data (so the same λ̂ bit for bit) in a many-thread parent and a
    one-thread worker or Ray task: the DLN's whitening reduction used to round with the thread count."""
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        many = parse_toy(spec)
        assert torch.get_num_threads() == 4  # the caller's setting is given back
        torch.set_num_threads(1)
        one = parse_toy(spec)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(many.x, one.x) and torch.equal(many.y, one.y)
