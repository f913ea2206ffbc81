"""The CLI contract of DESIGN.md §5: JSON on stdout, exit 2 with one line for bad input."""

import json
import subprocess
import sys

import pytest

from llc_core import ConfigError, SGLDConfig
from tests.conftest import ROOT

REQUIRED_KEYS = {"lambda_hat", "lambda_hat_std", "lambda_hat_per_chain", "true_lambda", "init_loss",
                 "nbeta", "status", "warnings", "steps_per_second", "wall_seconds", "config"}


def cli(*args):
    return subprocess.run([sys.executable, "-m", "llc_core", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_estimate_json_on_a_toy():
    out = cli("estimate", "--toy", "crossing:2", "--draws", "300", "--chains", "4", "--seed", "7", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert REQUIRED_KEYS <= set(data)
    assert data["true_lambda"] == 0.25 and data["config"]["draws"] == 300
    assert len(data["lambda_hat_per_chain"]) == 4 and data["lambda_hat"] > 0
    assert data["status"] in ("ok", "warning")
    assert all(set(w) == {"code", "message", "fix"} for w in data["warnings"])
    assert "step" in out.stderr  # the progress bar goes to stderr


def test_same_seed_same_json_numbers():
    args = ("estimate", "--toy", "crossing:1", "--draws", "100", "--chains", "2", "--seed", "3", "--json")
    a, b = json.loads(cli(*args).stdout), json.loads(cli(*args).stdout)
    assert a["lambda_hat_per_chain"] == b["lambda_hat_per_chain"]


def test_diverged_run_still_exits_zero():
    out = cli("estimate", "--toy", "crossing:1", "--epsilon", "1", "--chains", "2", "--draws", "50", "--json")
    assert out.returncode == 0
    assert json.loads(out.stdout)["status"] == "diverged"


@pytest.mark.parametrize("args,names", [
    (["--epsilon", "0"], "epsilon=0"),
    (["--epsilon", "-1e-3"], "epsilon=-0.001"),
    (["--gamma", "-1"], "gamma=-1"),
    (["--nbeta", "0"], "nbeta=0"),
    (["--nbeta", "lots"], "--nbeta='lots'"),
    (["--chains", "0"], "chains=0"),
    (["--draws", "0"], "draws=0"),
    (["--burnin", "-5"], "burnin=-5"),
    (["--batch-size", "20000"], "batch_size=20000"),
    (["--epsilon", "abc"], "--epsilon='abc'"),
    (["--chains", "2.5"], "--chains='2.5'"),
    (["--epsilon", "nan"], "--epsilon='nan'"),
    (["--chains", "100000"], "chains=100000"),
])
def test_bad_hyperparameters_exit_2_with_one_line(args, names):
    out = cli("estimate", "--toy", "crossing:1", *args)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0]
    assert any(word in lines[0] for word in ("must", "use", "not"))


@pytest.mark.parametrize("args", [["--toy", "crossing:zero"], ["--toy", "dln:4,4:r7"], [],
                                  ["--toy", "crossing:1", "--checkpoint", "x.safetensors"]])
def test_bad_sources_exit_2(args):
    out = cli("estimate", *args)
    assert out.returncode == 2 and out.stdout == "" and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("field,value", [
    ("epsilon", 0.0), ("epsilon", float("inf")), ("gamma", -0.1), ("nbeta", -1.0), ("chains", 0),
    ("chains", 65), ("draws", 0), ("burnin", -1), ("thin", 0), ("noise_scale", -1.0),
    ("epsilon", "1e-3"), ("chains", True), ("vectorize", "maybe"), ("device", "tpu"),
])
def test_config_rejects_out_of_range_values(field, value):
    with pytest.raises(ConfigError, match=field):
        SGLDConfig(**{field: value}).validate(n=1000)


def test_config_accepts_its_boundaries():
    SGLDConfig(epsilon=10.0, gamma=0.0, chains=1, draws=1, burnin=0, batch_size=1000).validate(n=1000)
    SGLDConfig(chains=64).validate(n=1000)
    with pytest.raises(ConfigError, match="batch_size=1001"):
        SGLDConfig(batch_size=1001).validate(n=1000)
    with pytest.raises(ConfigError, match="unknown"):
        SGLDConfig.from_dict({"epsilon": 1e-3, "stepsize": 2})
