"""The w* guard (issue 13): Train marks a model that stopped far from convergence, Estimate flags a
w* that is not near a minimum; neither fires on the shipped checkpoints or the known-λ toys."""

import json
import time

import pytest
import torch
from streamlit.testing.v1 import AppTest

from llc_core import estimate_llc, wstar
from llc_core.checkpoints import CACHE_DIR, CheckpointError, list_checkpoints, load_task, task_from_bytes
from llc_core.toys import parse_toy
from llc_core.training import train_to_checkpoint
from pages.models import TOYS
from tests.conftest import ROOT

SHIPPED = [m["name"] for m in list_checkpoints(CACHE_DIR)]


@pytest.fixture(scope="module")
def five_epochs(tmp_path_factory):
    """The MNIST-1D CNN (K = 10) trained 5 of its recipe's 60 epochs, as Train saves it."""
    folder = tmp_path_factory.mktemp("unconverged")
    meta = train_to_checkpoint("mnist1d", "cnn", 10, 0, folder / "cnn_5_epochs.safetensors", epochs=5, same_n=True)
    return folder, meta


def test_there_are_shipped_checkpoints_to_check():
    assert len(SHIPPED) == 54


@pytest.mark.parametrize("name", SHIPPED)
def test_no_shipped_checkpoint_is_flagged(name):
    check = wstar.check_task(load_task(CACHE_DIR / f"{name}.safetensors"))
    assert wstar.flags(check) == [] and check.slope_bias < wstar.MAX_SLOPE_BIAS / 10, check


@pytest.mark.parametrize("spec", TOYS)
def test_no_known_lambda_toy_at_its_minimum_is_flagged(spec):
    check = wstar.check_task(parse_toy(spec))
    assert check.grad_norm == 0.0 and check.slope_bias == 0.0 and wstar.flags(check) == []


def test_train_saves_a_five_epoch_model_marked_unconverged(five_epochs):
    folder, meta = five_epochs
    assert meta["test_accuracy"] < 0.7 and meta["converged"] is False
    notes = " ".join(meta["convergence_notes"])
    assert "5 of the recipe's 60 epochs" in notes and "the recipe reaches 100%" in notes
    assert "lowers λ̂ by" in notes  # the slope check agrees with the accuracy
    on_disk = json.loads((folder / "cnn_5_epochs.json").read_text())
    assert on_disk["converged"] is False and on_disk["convergence_notes"] == meta["convergence_notes"]


def test_estimate_flags_the_five_epoch_checkpoint(five_epochs):
    folder, _ = five_epochs
    task = load_task(folder / "cnn_5_epochs.safetensors")
    check = wstar.check_task(task)
    assert check.slope_bias > wstar.MAX_SLOPE_BIAS and check.training_notes
    result = estimate_llc(task, task.defaults.replace(chains=1, draws=20, burnin=0))
    flag = next(f for f in result.warnings if f.code == "wstar_not_minimum")
    assert "not near a minimum" in flag.message and "Train the model to convergence" in flag.fix
    assert result.status != "ok" and result.diagnostics["wstar"]["slope_bias"] == check.slope_bias


def test_the_first_record_is_not_held_up_by_the_check_and_the_flag_follows(five_epochs):
    """The check (a full-data gradient and curvature) runs right after the first record, so a live
    page draws its first point without waiting for it; the flag is there from the second record on."""
    from llc_core.sampler import SGLDRun

    folder, _ = five_epochs
    task = load_task(folder / "cnn_5_epochs.safetensors")
    run = SGLDRun(task, task.defaults.replace(chains=1, draws=60, burnin=0))
    records = []
    for progress in run:
        records.append(([f.code for f in progress.flags], run.wstar_check is None))
    first_codes, checked_later = records[0]
    assert "wstar_not_minimum" not in first_codes and checked_later
    assert all("wstar_not_minimum" in codes and not pending for codes, pending in records[1:])
    assert len(records) > 1 and "wstar_not_minimum" in [f.code for f in run.result.warnings]
    assert run.result.diagnostics["wstar"]["slope_bias"] == wstar.check_task(task).slope_bias


def test_a_loss_far_above_the_recorded_one_is_flagged():
    task = load_task(CACHE_DIR / "mnist1d_mlp_k10_s0.safetensors")  # L_n = 0.0024
    task.info = {**task.info, "train_loss": task.info["train_loss"] / 100}  # as if other weights were recorded
    found = wstar.problems(wstar.check_task(task))
    assert len(found) == 1 and "far above the training loss the checkpoint recorded" in found[0]


def test_the_check_leaves_the_model_as_it_was():
    task = load_task(CACHE_DIR / "mnist1d_mlp_k3_s0.safetensors")
    task.model.train()
    before = [p.detach().clone() for p in task.model.parameters()]
    wstar.check_task(task)
    assert task.model.training and all(p.grad is None for p in task.model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, task.model.parameters()))


def test_a_bad_convergence_field_in_metadata_is_named():
    meta = json.loads((CACHE_DIR / "mnist1d_mlp_k2_s0.json").read_text())
    weights = (CACHE_DIR / "mnist1d_mlp_k2_s0.safetensors").read_bytes()
    with pytest.raises(CheckpointError, match="'converged' must be true or false"):
        task_from_bytes(weights, json.dumps({**meta, "converged": "no"}).encode())
    with pytest.raises(CheckpointError, match="'convergence_notes' must be a list of strings"):
        task_from_bytes(weights, json.dumps({**meta, "convergence_notes": "oops"}).encode())


def test_the_estimate_page_shows_the_flag_with_its_fix(five_epochs, monkeypatch):
    import streamlit as st

    folder, _ = five_epochs
    monkeypatch.setenv("LLC_USER_MODELS", str(folder))
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update({"model": "cnn_5_epochs", "chains": "1", "draws": "20", "burnin": "0"})
    at.run()
    at.button(key="run").click().run()
    deadline = time.time() + 120
    while not any("wstar_not_minimum" in e.value for e in at.warning) and time.time() < deadline:
        time.sleep(0.3)
        at.run()
    st.cache_resource.clear()
    box = next(w.value for w in at.warning if "wstar_not_minimum" in w.value)
    assert "not near a minimum" in box and "**Fix:**" in box and not at.exception
