"""Installable: pip installs the project outside the checkout, the `llc` command works there, the
shipped checkpoints come along as package data, and per-user files go to the user's folders."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from llc_core import paths
from tests.conftest import ROOT

SHIPPED = ("pyproject.toml", "README.md", "llc_core", "cached_models")


def test_per_user_folders_follow_the_environment(monkeypatch, tmp_path):
    for name in ("LLC_USER_MODELS", "LLC_DATA_DIR", "LLC_CACHE_DIR", "LLC_CACHED_MODELS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert paths.user_models_dir() == tmp_path / "home/.local/share/llc_lab/user_models"
    assert paths.data_dir() == tmp_path / "home/.cache/llc_lab/data"
    assert paths.runs_cache_dir() == tmp_path / "home/.cache/llc_lab/runs"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")  # the XDG spec: absolute paths only
    assert paths.user_models_dir() == tmp_path / "xdg-data/llc_lab/user_models"
    assert paths.data_dir() == tmp_path / "home/.cache/llc_lab/data"
    monkeypatch.setenv("LLC_USER_MODELS", str(tmp_path / "mine"))
    monkeypatch.setenv("LLC_CACHE_DIR", str(tmp_path / "c"))
    assert paths.user_models_dir() == tmp_path / "mine" and paths.runs_cache_dir() == tmp_path / "c/runs"
    assert paths.cached_models_dir() == ROOT / "cached_models"  # the checkout's own folder
    monkeypatch.setenv("LLC_CACHED_MODELS", str(tmp_path / "elsewhere"))
    assert paths.cached_models_dir() == tmp_path / "elsewhere"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The project pip-installed (no dependencies: the running environment has them) into a target
    folder, from a copy of the shipped files so the checkout gets no build outputs."""
    base = tmp_path_factory.mktemp("install")
    (base / "src").mkdir()
    for name in SHIPPED:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, base / "src" / name)
    out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--target", str(base / "target"), str(base / "src")], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    home = base / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLC_", "XDG_"))}
    env.update(PYTHONPATH=str(base / "target"), HOME=str(home), LLC_NO_DOWNLOAD="1",
               LLC_DATA_DIR=os.environ.get("LLC_DATA_DIR", str(paths.data_dir())))  # MNIST-1D already made
    return base, env


def llc(installed, *args):
    base, env = installed
    return subprocess.run([sys.executable, str(base / "target/bin/llc"), *args], cwd=base, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_installed_command_lists_the_shipped_checkpoints(installed):
    base, _ = installed
    out = llc(installed, "models", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) >= 54
    shipped = base / "target/llc_core/cached_models"
    assert all(os.path.dirname(r["path"]) == str(shipped) for r in rows)


def test_the_installed_command_estimates_and_writes_nothing_into_the_installation(installed):
    base, _ = installed
    before = sorted(p.relative_to(base / "target") for p in (base / "target").rglob("*") if "__pycache__" not in str(p))
    out = llc(installed, "estimate", "--toy", "crossing:2", "--draws", "100", "--chains", "2", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["true_lambda"] == 0.25
    checkpoint = base / "target/llc_core/cached_models/mnist1d_mlp_k2_s0.safetensors"
    out = llc(installed, "estimate", "--checkpoint", str(checkpoint), "--draws", "20", "--chains", "1", "--json")
    assert out.returncode == 0, out.stderr
    after = sorted(p.relative_to(base / "target") for p in (base / "target").rglob("*") if "__pycache__" not in str(p))
    assert after == before
    probe = subprocess.run([sys.executable, "-c", "import llc_core, llc_core.paths as p; "
                            "print(llc_core.__file__); print(p.user_models_dir())"],
                           cwd=base, env=installed[1], capture_output=True, text=True, timeout=120)
    module, user_models = probe.stdout.split()
    assert module.startswith(str(base / "target")) and user_models == str(base / "home/.local/share/llc_lab/user_models")
