"""Hostile and broken checkpoints through every door: the API, the CLI and the dashboard upload.

Each case gets one clear error naming what is wrong; nothing runs that was handed in, and
nothing is written to cached_models/ or the user models folder.
"""

import hashlib
import json
import os
import pathlib
import pickle

import pytest
import torch
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from llc_core import cli
from llc_core.checkpoints import CACHE_DIR, MAX_WEIGHTS_BYTES, CheckpointError, load_checkpoint
from llc_core.config import InputError
from pages.models import uploaded_task

SOURCE = CACHE_DIR / "mnist1d_mlp_k2_s0.safetensors"
MARKER = pathlib.Path("/tmp/llc_lab_hostile_ran")


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def _meta(**changes) -> dict:
    return {**json.loads(SOURCE.with_suffix(".json").read_text()), **changes}


def _with_hash(blob: bytes, **changes) -> tuple[bytes, dict]:
    """Weights whose sha256 the metadata agrees with, so the content itself is what is wrong."""
    return blob, _meta(sha256=hashlib.sha256(blob).hexdigest(), **changes)


def _nan_weights() -> bytes:
    state = load_bytes(SOURCE.read_bytes())
    state["1.weight"][0, 0] = float("inf")
    return save_bytes(state)


GOOD = SOURCE.read_bytes()
# name -> (weights file suffix, weights bytes, metadata dict, phrase the error must contain)
CASES = {
    "pickle that runs code": (".pt", pickle.dumps({"1.weight": _Exploit()}), _meta(), "refused"),
    "truncated": (".safetensors", *_with_hash(GOOD[: len(GOOD) // 2]), "not a valid safetensors file"),
    "empty": (".safetensors", *_with_hash(b""), "not a valid safetensors file"),
    "random bytes": (".safetensors", *_with_hash(os.urandom(4096)), "not a valid safetensors file"),
    "wrong format (PNG)": (".safetensors", *_with_hash(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200),
                           "not a valid safetensors file"),
    "NaN/Inf weights": (".safetensors", *_with_hash(_nan_weights()), "NaN or Inf"),
    "weights swapped (hash disagrees)": (".safetensors", GOOD, _meta(sha256="0" * 64), "sha256 does not match"),
    "parameter count disagrees": (".safetensors", GOOD, _meta(num_params=99), "parameters"),
    "classes out of range": (".safetensors", GOOD, _meta(classes=11), "classes=11"),
    "unknown architecture": (".safetensors", GOOD, _meta(arch={"kind": "transformer"}), "transformer"),
    "path-like name": (".safetensors", GOOD, _meta(name="../../cached_models/evil"), "no paths"),
    "absolute path name": (".safetensors", GOOD, _meta(name="/etc/passwd"), "no paths"),
}


def snapshot(*folders):
    return {str(f): sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in f.iterdir())
            for f in folders if f.exists()}


@pytest.fixture
def guarded(tmp_path, monkeypatch):
    """A user models folder of our own; both folders must be unchanged after the test."""
    user = tmp_path / "user_models"
    user.mkdir()
    monkeypatch.setenv("LLC_USER_MODELS", str(user))
    MARKER.unlink(missing_ok=True)
    before = snapshot(CACHE_DIR, user)
    yield tmp_path
    assert snapshot(CACHE_DIR, user) == before
    assert not MARKER.exists(), "a handed-in pickle ran code"


def write_case(folder, name, case):
    suffix, blob, meta, _ = CASES[case]
    weights = folder / f"{name}{suffix}"
    weights.write_bytes(blob)
    weights.with_suffix(".json").write_text(json.dumps(meta))
    return weights


class FakeUpload:
    """What st.file_uploader hands the page: name, size, getvalue()."""

    def __init__(self, name, data, size=None):
        self.name, self._data, self.size = name, data, len(data) if size is None else size

    def getvalue(self):
        return self._data


def test_the_pickle_payload_is_live():
    """Control: plain unpickling of the case really runs the payload, so 'did not run' means something."""
    MARKER.unlink(missing_ok=True)
    pickle.loads(CASES["pickle that runs code"][1])
    assert MARKER.exists()
    MARKER.unlink()


@pytest.mark.parametrize("case", list(CASES))
def test_api_refuses(guarded, case):
    path = write_case(guarded, "case", case)
    with pytest.raises(CheckpointError, match=CASES[case][3]):
        load_checkpoint(path)


@pytest.mark.parametrize("case", list(CASES))
def test_cli_refuses_with_one_line_and_exit_2(guarded, case, capsys):
    path = write_case(guarded, "case", case)
    code = cli.main(["estimate", "--checkpoint", str(path), "--draws", "10", "--json"])
    out = capsys.readouterr()
    assert code == 2 and out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and CASES[case][3] in lines[0]


@pytest.mark.parametrize("case", list(CASES))
def test_upload_refuses(guarded, case):
    suffix, blob, meta, phrase = CASES[case]
    files = [FakeUpload(f"model{suffix}", blob), FakeUpload("model.json", json.dumps(meta).encode())]
    with pytest.raises(InputError) as err:
        uploaded_task(files)
    # the upload takes .safetensors + .json only: a .pt is refused before it is read
    assert (".safetensors and one .json" if suffix == ".pt" else phrase) in str(err.value)


def test_oversized_files_are_refused_before_reading(guarded):
    big = guarded / "big.safetensors"
    with open(big, "wb") as f:
        f.truncate(MAX_WEIGHTS_BYTES + 1)  # sparse: no 50 MB written
    big.with_suffix(".json").write_text(json.dumps(_meta()))
    with pytest.raises(CheckpointError, match="the limit is 52,428,800"):
        load_checkpoint(big)
    files = [FakeUpload("big.safetensors", b"", size=MAX_WEIGHTS_BYTES + 1), FakeUpload("big.json", b"{}")]
    with pytest.raises(InputError, match="the upload limit is 52,428,800"):
        uploaded_task(files)
    assert cli.main(["estimate", "--checkpoint", str(big)]) == 2


def test_oversized_metadata_is_refused(guarded):
    path = write_case(guarded, "case", "truncated")
    path.with_suffix(".json").write_text(json.dumps({**_meta(), "pad": "x" * 300_000}))
    with pytest.raises(CheckpointError, match="metadata"):
        load_checkpoint(path)


def test_a_good_upload_still_works(guarded):
    files = [FakeUpload("m.safetensors", GOOD), FakeUpload("m.json", SOURCE.with_suffix(".json").read_bytes())]
    task = uploaded_task(files)
    assert task.num_params == _meta()["num_params"] and task.n > 0
    assert torch.isfinite(torch.cat([p.flatten() for p in task.model.parameters()])).all()
