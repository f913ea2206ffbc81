"""The truth suite (bench/truth_suite.py): shape drawing, multiplicity, and a fast real subset."""

import pathlib
import re
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "bench"))

import truth_suite  # noqa: E402
from llc_core.limits import DLN_CAPS  # noqa: E402
from llc_core.toys import rrr_lambda  # noqa: E402


def test_multiplicity_matches_reduced_rank_regression_parity():
    """Three widths are reduced-rank regression: m = 2 exactly in its odd M+H+N+r case."""
    for m, h, n, r in [(5, 3, 5, 0), (5, 4, 5, 0), (5, 5, 5, 0), (4, 3, 8, 0), (10, 5, 10, 2), (6, 4, 6, 1)]:
        central = n + r <= m + h and m + r <= n + h and h + r <= m + n
        expected = 2 if central and (m + h + n + r) % 2 else 1
        assert truth_suite.dln_multiplicity([m, h, n], r) == expected, (m, h, n, r)
        assert rrr_lambda(m, h, n, r) > 0
    assert truth_suite.dln_multiplicity([3, 3], 0) == 1  # one matrix: regular


def test_drawn_shapes_respect_the_device_caps_and_skip_multiplicity_two():
    specs, skipped = truth_suite.draw_cases(12, seed=3, device="cpu", max_params=5000, crossings=2)
    dlns = [s for s in specs if s.startswith("dln:")]
    assert len(dlns) == 12 and sum(s.startswith("crossing:") for s in specs) == 2
    for spec in dlns + skipped:
        widths = [int(w) for w in spec.split(":")[1].split(",")]
        rank = int(spec.split(":r")[1])
        assert 3 <= len(widths) <= 7 and max(widths) <= DLN_CAPS["cpu"][0] and 0 <= rank <= min(widths)
        assert truth_suite.params_of(widths) <= 5000
        assert truth_suite.dln_multiplicity(widths, rank) == (1 if spec in dlns else 2)
    assert truth_suite.draw_cases(12, 3, "cpu", 5000, 2) == (specs, skipped)  # the seed fixes the suite
    assert len(set(specs + skipped)) == len(specs + skipped)  # no case counted twice


def test_drawn_cases_are_distinct_and_impossible_requests_are_refused():
    """Seed 14 once drew dln:2,2,2,2,2,2,2:r2 and crossing:2 twice each; now every case is new."""
    specs, skipped = truth_suite.draw_cases(30, seed=14, device="cpu", max_params=200, crossings=3)
    assert len(specs) == 33 and len(set(specs)) == 33 and not set(specs) & set(skipped)
    assert sorted(s for s in specs if s.startswith("crossing:")) == ["crossing:1", "crossing:2", "crossing:3"]
    with pytest.raises(ValueError, match="crossings=4: there are 3 distinct"):
        truth_suite.draw_cases(1, seed=0, device="cpu", max_params=200, crossings=4)
    with pytest.raises(ValueError, match="distinct shapes with 20…21 parameters"):
        truth_suite.draw_cases(50, seed=0, device="cpu", max_params=21, crossings=0)
    gpu, _ = truth_suite.draw_cases(5, seed=0, device="cuda", max_params=2_000_000, crossings=0)
    sizes = [truth_suite.params_of([int(w) for w in s.split(":")[1].split(",")]) for s in gpu]
    assert all(10_000 <= p <= 2_000_000 for p in sizes)


def test_fast_subset_auto_calibrate_has_no_silent_miss_and_defaults_are_counted(capsys):
    """A small random DLN and a crossing, real runs, one per process on llc_core's executor: rows,
    summary, no silent miss after auto-calibrate, and the defaults' silent misses counted exactly.
    (Zero silent misses at the defaults is issue 10's target and is NOT met on every seed — reported
    in docs/calibration.md, not asserted away.)"""
    # 45 s per case (auto-calibrate keeps its budget), the two cases at once: each runs one torch
    # thread, so one alone would leave the second core idle for minutes
    rows = truth_suite.main(["--count", "1", "--crossings", "1", "--seed", "1", "--max-params", "60",
                             "--budget-seconds", "45", "--workers", "2"])
    out = capsys.readouterr().out
    assert len(rows) == 2 and out.count("\n| dln:") == 1 and out.count("\n| crossing:") == 1
    assert re.search(r"^auto-calibrate: \d/2 within 10% .* silent misses 0$", out, re.M), out
    assert not any(r.silent(r.auto_lambda, r.auto_status) for r in rows)
    silent_defaults = sum(r.silent(r.default_lambda, r.default_status) for r in rows)
    assert re.search(rf"^defaults: \d/2 within 10% .* silent misses {silent_defaults}\b", out, re.M), out
    assert out.count("SILENT") == silent_defaults
    for r in rows:  # a recommendation names its ε × draws; none means nothing was found
        assert (r.auto_setting == "–") == (r.auto_lambda is None)
