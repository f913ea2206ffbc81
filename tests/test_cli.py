"""The CLI contract of docs/cli.md: JSON on stdout, exit 2 with one line for bad input, Ctrl-C keeps the
partial result, help for every flag."""

import json
import re
import signal
import threading
import time
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


def test_ctrl_c_ends_the_run_with_its_partial_result():
    """A real SIGINT mid-run: no traceback, the JSON of the steps done with completed=false, exit 130."""
    proc = subprocess.Popen([sys.executable, "-m", "llc_core", "estimate", "--toy", "crossing:1", "--chains", "2",
                             "--draws", "200000", "--burnin", "0", "--json"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(lambda: proc.stderr.read(1), "")), daemon=True)
    reader.start()
    deadline = time.time() + 120
    while not re.search(r"λ̂=[0-9]", "".join(seen)) and time.time() < deadline:  # a finite λ̂ is in
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    reader.join(10)
    data = json.loads(out)
    assert proc.returncode == 130, "".join(seen)[-500:]
    assert "Traceback" not in "".join(seen)
    assert data["completed"] is False and 0 < data["steps_done"] < 200_000
    assert data["lambda_hat"] is not None and len(data["lambda_hat_per_chain"]) == 2


def test_every_flag_has_help_with_its_range_or_default():
    out = cli("estimate", "--help")
    assert out.returncode == 0
    for flag, words in {"--epsilon": "(0, 10]", "--chains": "1..64", "--draws": "1..200,000",
                        "--burnin": "0..200,000", "--nbeta": "n/log n", "--device": "(default: auto)",
                        "--toy": "crossing:", "--json": "JSON"}.items():
        described = out.stdout.split("options:", 1)[1]  # past the usage line
        entry = described[described.index("\n  " + flag):]
        assert words in " ".join(entry.split()[:30]), flag
    assert "model's own calibrated value" in out.stdout
    train = " ".join(cli("train", "--help").stdout.split())
    assert "(default: 10)" in train and "1..1,000" in train


def test_models_json_is_one_array_of_checkpoint_metadata():
    out = cli("models", "--json")
    assert out.returncode == 0
    rows = json.loads(out.stdout)
    assert isinstance(rows, list) and len(rows) >= 54
    names = {r["name"] for r in rows}
    assert "mnist1d_cnn_k10_s0" in names
    assert all(r["path"].endswith(".safetensors") and r["format"] == "llc-lab-checkpoint/1" for r in rows)


def test_help_and_a_bad_flag_are_answered_without_importing_torch():
    """`llc --help`, a command's help and a bad hyperparameter flag need no model: they must not
    pay torch's import (~2.5 s here, the whole wait of a typo). The library's public names still
    load on first use."""
    probe = """
import contextlib, io, sys
from llc_core.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
    for argv in (["--help"], ["estimate", "--help"], ["sweep", "--help"], ["calibrate", "--help"], ["dimensions", "--help"]):
        try:
            main(argv)
        except SystemExit:
            pass
    codes = [main(["estimate", "--toy", "crossing:1", "--epsilon", "0"]),
             main(["sweep", "--toy", "crossing:1", "--epsilon", "1e-4", "--gamma", "1", "--chains", "0"]),
             main(["calibrate", "--toy", "crossing:1", "--budget-seconds", "-5"])]
print(codes, "torch" in sys.modules, err.getvalue().count("invalid"))
import llc_core
print(llc_core.SGLDRun.__module__, "torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[2, 2, 2] False 3", "llc_core.sampler True"]


def test_the_readable_summary_counts_one_parameter_in_the_singular():
    out = cli("estimate", "--toy", "crossing:1", "--chains", "2", "--draws", "20", "--burnin", "0")
    assert out.returncode == 0 and out.stdout.splitlines()[0].endswith("(1 parameter, n=10,000)"), out.stdout
