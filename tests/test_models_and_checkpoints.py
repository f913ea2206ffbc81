"""Architectures, deterministic training, and checkpoints that never half-load."""

import json
import os
import pathlib
import pickle

import pytest
import torch
from safetensors.torch import save_file

from llc_core.checkpoints import (CheckpointError, list_checkpoints, load_checkpoint, load_task,
                                  read_metadata, sidecar)
from llc_core.data import load_dataset
from llc_core.models import ArchError, build_model, count_params, default_spec
from llc_core.training import TrainConfig, TrainResult, evaluate, train, train_to_checkpoint
from tests.conftest import ROOT


@pytest.mark.parametrize("arch,shape,params", [("mlp", (1, 28, 28), 118_282), ("cnn", (1, 28, 28), 127_098),
                                               ("mlp", (1, 40), 15_210), ("cnn", (1, 40), 16_618)])
def test_architectures_and_parameter_counts(arch, shape, params):
    model = build_model(default_spec(arch, shape))
    assert count_params(model) == params
    assert model(torch.zeros(3, *shape)).shape == (3, 10)


@pytest.mark.parametrize("spec,word", [({"kind": "transformer"}, "unknown"), ("mlp", "JSON object"),
                                       ({"kind": "mlp", "input_shape": [1, 40], "hidden": [-3], "outputs": 10}, "hidden"),
                                       ({"kind": "mlp", "input_shape": [1, 40]}, "invalid")])
def test_bad_specs(spec, word):
    with pytest.raises(ArchError, match=word):
        build_model(spec)


def short_training(seed):
    data = load_dataset("mnist1d", classes=3, same_n=True)
    cfg = TrainConfig(epochs=2, seed=seed)
    *progress, result = list(train(default_spec("cnn", data.input_shape), data, cfg))
    return progress, result


def test_training_is_deterministic_and_reports_progress():
    progress, a = short_training(seed=1)
    _, b = short_training(seed=1)
    _, c = short_training(seed=2)
    assert [p.epoch for p in progress] == [1, 2] and isinstance(a, TrainResult)
    sa, sb, sc = a.model.state_dict(), b.model.state_dict(), c.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert 0.0 <= a.test_accuracy <= 1.0 and a.train_loss > 0


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "mlp_k2.safetensors"
    meta = train_to_checkpoint("mnist1d", "mlp", classes=2, seed=0, out=path, epochs=3, same_n=True)
    return path, meta


def copy_checkpoint(src, folder, name="copy"):
    dst = folder / f"{name}.safetensors"
    dst.write_bytes(src.read_bytes())
    sidecar(dst).write_text(sidecar(src).read_text())
    return dst


def test_round_trip_reproduces_the_model(checkpoint):
    path, meta = checkpoint
    model, loaded = load_checkpoint(path)
    assert loaded["sha256"] == meta["sha256"] and loaded["num_params"] == 15_210
    data = load_dataset("mnist1d", classes=2, same_n=True)
    _, acc = evaluate(model, data.x_test, data.y_test)
    assert acc == pytest.approx(meta["test_accuracy"], abs=1e-9)
    task = load_task(path)
    assert task.n == meta["n_train"] == 4000 and task.defaults.gamma > 0


def mutate_meta(path, **changes):
    meta = json.loads(sidecar(path).read_text())
    meta.update(changes)
    sidecar(path).write_text(json.dumps(meta))


CORRUPTIONS = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:100]), "sha256"),
    "empty": (lambda p: p.write_bytes(b""), "sha256"),
    "random bytes": (lambda p: p.write_bytes(os.urandom(5000)), "sha256"),
    "bad json": (lambda p: sidecar(p).write_text("{not json"), "not valid JSON"),
    "json list": (lambda p: sidecar(p).write_text("[1, 2]"), "JSON object"),
    "missing sidecar": (lambda p: sidecar(p).unlink(), "not found beside"),
    "unknown arch": (lambda p: mutate_meta(p, arch={"kind": "resnet"}), "unknown"),
    "wrong arch": (lambda p: mutate_meta(p, arch=default_spec("cnn", (1, 40))), "tensors do not match"),
    "path-like name": (lambda p: mutate_meta(p, name="../../etc/passwd"), "no paths"),
    "unknown dataset": (lambda p: mutate_meta(p, dataset="imagenet"), "imagenet"),
    "wrong param count": (lambda p: mutate_meta(p, num_params=5), "parameters"),
    "missing field": (lambda p: mutate_meta(p, classes=None), "classes"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_every_corruption_is_one_clear_error(checkpoint, tmp_path, case):
    path = copy_checkpoint(checkpoint[0], tmp_path)
    corrupt, message = CORRUPTIONS[case]
    corrupt(path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def rewrite_weights(path, change):
    """Re-save the tensors after `change`, with a matching hash, so only the content is wrong."""
    import hashlib

    from safetensors.torch import load_file
    state = load_file(path)
    change(state)
    save_file(state, path)
    mutate_meta(path, sha256=hashlib.sha256(path.read_bytes()).hexdigest())


@pytest.mark.parametrize("change,message", [
    (lambda s: s["1.weight"].__setitem__((0, 0), float("nan")), "NaN or Inf"),
    (lambda s: s.__setitem__("1.weight", s["1.weight"][:, :20].contiguous()), "shape"),
    (lambda s: s.pop("3.bias"), "missing"),
    (lambda s: s.__setitem__("extra", torch.zeros(2)), "unexpected"),
    (lambda s: s.__setitem__("1.weight", s["1.weight"].double()), "float64"),
])
def test_weights_that_disagree_with_the_architecture(checkpoint, tmp_path, change, message):
    path = copy_checkpoint(checkpoint[0], tmp_path)
    rewrite_weights(path, change)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = pathlib.Path("/tmp/llc_lab_pickle_ran")


def test_malicious_pickle_is_refused_and_never_runs(checkpoint, tmp_path):
    MARKER.unlink(missing_ok=True)
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"1.weight": _Exploit()}, f)
    sidecar(evil).write_text(sidecar(checkpoint[0]).read_text())
    with open(evil, "rb") as f:  # control: plain unpickling really would run the payload
        pickle.load(f)
    assert MARKER.exists()
    MARKER.unlink()
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(evil)
    assert not MARKER.exists()


def test_legacy_state_dict_loads_with_weights_only(checkpoint, tmp_path):
    model, meta = load_checkpoint(checkpoint[0])
    legacy = tmp_path / "legacy.pt"
    torch.save(model.state_dict(), legacy)
    sidecar(legacy).write_text(sidecar(checkpoint[0]).read_text())
    again, _ = load_checkpoint(legacy)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_listing_skips_broken_files(checkpoint, tmp_path):
    copy_checkpoint(checkpoint[0], tmp_path, "good")
    bad = copy_checkpoint(checkpoint[0], tmp_path, "bad")
    sidecar(bad).write_text("oops")
    assert [pathlib.Path(m["path"]).name for m in list_checkpoints(tmp_path)] == ["good.safetensors"]


# -- the shipped cache ---------------------------------------------------------------------------

CACHE = ROOT / "cached_models"


def test_cached_models_agree_with_their_manifest():
    manifest = json.loads((CACHE / "manifest.json").read_text())["checkpoints"]
    files = sorted(p.name for p in CACHE.glob("*.safetensors"))
    assert sorted(e["file"] for e in manifest) == files
    assert len(files) == 2 * 9 * 3  # MLP and CNN, K = 2..10, three seeds
    for entry in manifest:
        meta = read_metadata(CACHE / entry["file"])
        assert meta["sha256"] == entry["sha256"]
        load_checkpoint(CACHE / entry["file"])  # every one loads, hash and shapes checked
    total = sum(p.stat().st_size for p in CACHE.iterdir())
    assert total < 30 * 1024 * 1024


@pytest.mark.parametrize("name", ["mnist1d_cnn_k10_s0", "mnist1d_mlp_k10_s1", "mnist1d_cnn_k4_s2"])
def test_a_sample_of_cached_models_reproduce_their_accuracy(name):
    model, meta = load_checkpoint(CACHE / f"{name}.safetensors")
    data = load_dataset(meta["dataset"], classes=meta["classes"], same_n=meta["same_n"])
    loss, acc = evaluate(model, data.x_test, data.y_test)
    assert acc == pytest.approx(meta["test_accuracy"], abs=1e-6)
    assert loss == pytest.approx(meta["test_loss"], rel=1e-5)


def test_mnist1d_accuracy_targets_at_ten_classes():
    rows = [m for m in list_checkpoints(CACHE) if m["classes"] == 10]
    cnn = [m["test_accuracy"] for m in rows if m["arch"]["kind"] == "cnn1d"]
    mlp = [m["test_accuracy"] for m in rows if m["arch"]["kind"] == "mlp"]
    assert len(cnn) == len(mlp) == 3
    assert min(cnn) >= 0.90 and min(mlp) >= 0.60
