"""`python -m llc_core sweep` and `variability`: streamed JSON/CSV, workers, bad input, Ctrl-C."""

import json
import pathlib
import signal
import subprocess
import sys

import psutil
import pytest

from llc_core.cli import main
from tests.conftest import ROOT

SWEEP = ("sweep", "--toy", "dln:3,3:r0", "--epsilon", "1e-5,1e-4", "--gamma", "1,100", "--chains", "2",
         "--draws", "80", "--burnin", "20", "--seed", "1")
FIELDS = {"epsilon", "gamma", "nbeta_multiplier", "lambda_hat", "lambda_hat_se", "status", "warnings", "seconds"}


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "llc_core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def cells(stdout: str) -> dict:
    rows = [json.loads(line) for line in stdout.splitlines()]
    return {(r["epsilon"], r["gamma"], r["nbeta_multiplier"]): r for r in rows}


def test_sweep_json_one_line_per_cell_same_numbers_for_1_and_2_workers():
    one, two = cli(*SWEEP, "--json", "--workers", "1"), cli(*SWEEP, "--json", "--workers", "2")
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    a, b = cells(one.stdout), cells(two.stdout)
    assert len(a) == 4 and set(a) == set(b)
    for key, row in a.items():
        assert FIELDS <= set(row) and row["status"] in ("ok", "warning")
        assert row["lambda_hat"] == b[key]["lambda_hat"] and row["lambda_hat_se"] == b[key]["lambda_hat_se"]
    assert "cell" in two.stderr and "4 cells in" in two.stderr  # progress on stderr


def test_sweep_csv_and_table(capsys):
    assert main([*SWEEP[:3], "--epsilon", "1e-5", "--gamma", "1", "--nbeta-multiplier", "0.5,2", "--draws", "30", "--chains", "2", "--burnin", "0",
                 "--workers", "1", "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("epsilon,gamma,nbeta_multiplier,nbeta,lambda_hat,lambda_hat_se")
    assert len(lines) == 3 and {line.split(",")[2] for line in lines[1:]} == {"0.5", "2.0"}
    assert main([*SWEEP[:3], "--epsilon", "1e-5", "--gamma", "1", "--draws", "30", "--chains", "2", "--burnin", "0", "--workers", "1"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["ε", "γ", "nβ×", "λ̂"] and len(table) == 2


@pytest.mark.parametrize("args, names", [
    (("--epsilon", "1e-5,abc"), "--epsilon='abc'"),
    (("--epsilon", "1e-5,,1e-4"), "comma-separated"),
    (("--epsilon", "-1e-5", "--gamma", "1"), "epsilon=-1e-05"),
    (("--gamma", "1", "--workers", "0"), "workers=0"),
    (("--gamma", "1", "--workers", "two"), "--workers='two'"),
    (("--gamma", "1", "--workers", "2", "--ray", "local"), "not allowed with"),
    (("--gamma", "1", "--json", "--csv"), "not allowed with"),
    (("--gamma", "1", "--draws", "0"), "draws=0"),
    (("--gamma", "1", "--nbeta-multiplier", "1000"), "multiplier 1000"),
])
def test_bad_sweep_input_exits_2_with_one_line(capsys, args, names):
    base = ["sweep", "--toy", "dln:3,3:r0", "--epsilon", "1e-5"]
    assert main(base + list(args)) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and names in err, err


def test_sweep_needs_a_source_and_a_grid(capsys):
    assert main(["sweep", "--epsilon", "1e-5", "--gamma", "1"]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    assert main(["sweep", "--toy", "dln:3,3:r0", "--gamma", "1"]) == 2
    assert "--epsilon" in capsys.readouterr().err


def test_every_sweep_and_variability_flag_has_help_with_its_default():
    for command in ("sweep", "variability"):
        text = cli(command, "--help").stdout
        assert "--workers" in text and "--ray" in text and "default: one per core" in text
    assert "(default: (1.0,))" in " ".join(cli("sweep", "--help").stdout.split())


def test_ctrl_c_prints_what_finished_labels_it_partial_and_ends_the_workers():
    args = ["sweep", "--toy", "dln:3,3:r0", "--epsilon", "1e-6,1e-5,3e-5,1e-4", "--gamma", "1,100",
            "--chains", "2", "--draws", "1500", "--burnin", "0", "--json", "--workers", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "llc_core", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # one cell finished
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert sigint_disposition(proc.pid) == "caught"  # by Python's handler: Ctrl-C raises KeyboardInterrupt
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    done = cells(first + rest)
    assert 1 <= len(done) < 8 and all(FIELDS <= set(r) for r in done.values())
    assert f"partial: interrupted after {len(done)} of 8 cells" in err and "Traceback" not in err
    assert workers and not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


def sigint_disposition(pid: int) -> str:
    """'caught', 'ignored' or 'blocked' for SIGINT in process `pid`, from /proc/PID/status. A process
    started with SIGINT ignored (inherited through exec) never sees Ctrl-C: Python installs no handler."""
    masks = {k: int(v, 16) for k, v in (line.split(":\t") for line in pathlib.Path(f"/proc/{pid}/status")
             .read_text().splitlines() if line.startswith(("SigBlk", "SigIgn", "SigCgt")))}
    bit = 1 << (signal.SIGINT - 1)
    return next((name for key, name in (("SigBlk", "blocked"), ("SigIgn", "ignored"), ("SigCgt", "caught"))
                 if masks[key] & bit), "default")


def test_variability_over_given_checkpoints_with_workers_then_from_the_cache(tmp_path):
    paths = [str(ROOT / "cached_models" / f"mnist1d_mlp_k{k}_s{s}.safetensors") for k in (2, 4) for s in (0, 1)]
    args = ["variability", *[a for p in paths for a in ("--checkpoint", p)], "--draws", "20", "--chains", "2",
            "--burnin", "0", "--cache-dir", str(tmp_path), "--workers", "2"]
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    assert "| K | MLP λ̂ (mean ± std over seeds) |" in first.stdout and "| MLP |" in first.stdout
    assert any(line.startswith("| 2 |") for line in first.stdout.splitlines())
    assert len(list(tmp_path.glob("*.json"))) == 4
    again = cli(*args[:-2], "--workers", "1", "--json")
    rows = [json.loads(line) for line in again.stdout.splitlines()]
    assert len(rows) == 5 and all(r["cached"] for r in rows[:4]) and rows[4]["partial"] is False
    assert rows[4]["summary"]["MLP"]["classes"] == [2, 4]


def test_variability_bad_input_exits_2(capsys):
    assert main(["variability", "--checkpoint", "/nonexistent.safetensors"]) == 2
    assert "nonexistent" in capsys.readouterr().err
    assert main(["variability", "--draws", "0"]) == 2
    assert "draws=0" in capsys.readouterr().err
