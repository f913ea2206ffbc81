"""Checkpoints: weights in safetensors, metadata in a JSON sidecar; loading never unpickles.

`model.safetensors` + `model.json`. Every mismatch — bad JSON, unknown architecture, missing or
extra tensors, wrong shapes or dtypes, NaN/Inf, a hash that disagrees — raises one
CheckpointError naming it, before any model is returned: nothing half-loads.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import pathlib
import re

import torch
from torch import nn

from .config import InputError
from .data import DATASETS
from .limits import MAX_METADATA_BYTES, MAX_WEIGHTS_BYTES
from .models import ArchError, build_model, count_params
from .paths import cached_models_dir, user_models_dir

FORMAT = "llc-lab-checkpoint/1"
# The shipped checkpoints (read-only); see llc_core.paths for how the folder is found.
CACHE_DIR = cached_models_dir()
MANIFEST = "manifest.json"
SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
REQUIRED = {"format": str, "name": str, "arch": dict, "dataset": str, "classes": int, "same_n": bool,
            "n_train": int, "seed": int, "num_params": int, "sha256": str, "train_accuracy": float,
            "test_accuracy": float, "train_loss": float, "test_loss": float, "train_config": dict}


class CheckpointError(InputError):
    pass


def sidecar(path) -> pathlib.Path:
    return pathlib.Path(path).with_suffix(".json")


def save_checkpoint(out, result, data, convergence_notes: list | None = None) -> dict:
    """Write weights and metadata for a TrainResult (atomically: temp files, then rename). With
    `convergence_notes` (llc_core.training) the metadata says whether training converged
    (`converged`, and why not: `convergence_notes`); Estimate flags a model saved unconverged."""
    from dataclasses import asdict

    from safetensors.torch import save

    out = pathlib.Path(out)
    if out.suffix != ".safetensors":
        raise CheckpointError(f"checkpoint path {str(out)!r} must end in .safetensors")
    if not SAFE_NAME.match(out.stem):
        raise CheckpointError(f"checkpoint name {out.stem!r} may only use letters, digits, _ . -")
    state = {k: v.detach().contiguous().clone() for k, v in result.model.state_dict().items()}
    blob = save(state)
    meta = {
        "format": FORMAT, "name": out.stem, "arch": result.spec, "dataset": data.name,
        "classes": data.classes, "same_n": data.same_n, "n_train": data.n_train,
        "seed": result.config.seed, "num_params": count_params(result.model),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "train_accuracy": result.train_accuracy, "test_accuracy": result.test_accuracy,
        "train_loss": result.train_loss, "test_loss": result.test_loss,
        "train_config": asdict(result.config), "train_seconds": result.seconds,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if convergence_notes is not None:
        meta |= {"converged": not convergence_notes, "convergence_notes": list(convergence_notes)}
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, payload in ((out, blob), (sidecar(out), json.dumps(meta, indent=1).encode())):
        tmp = path.with_name(path.name + ".partial")
        tmp.write_bytes(payload)
        tmp.replace(path)
    return {**meta, "path": str(out)}


def check_sizes(weights_size: int | None, metadata_size: int | None, weights_name: str = "weights",
                metadata_name: str = "metadata", limit: str = "the limit") -> None:
    """Refuse files over MAX_WEIGHTS_BYTES / MAX_METADATA_BYTES before reading them (None: not
    checked here). Used for files on disk and for uploads alike."""
    if weights_size is not None and weights_size > MAX_WEIGHTS_BYTES:
        raise CheckpointError(f"{weights_name} is {weights_size:,} bytes; {limit} is {MAX_WEIGHTS_BYTES:,}")
    if metadata_size is not None and metadata_size > MAX_METADATA_BYTES:
        raise CheckpointError(f"metadata {metadata_name} is {metadata_size:,} bytes; {limit} is "
                              f"{MAX_METADATA_BYTES:,}")


def read_metadata(path) -> dict:
    path = sidecar(path)
    if not path.is_file():
        raise CheckpointError(f"metadata {path.name} not found beside the weights: a checkpoint is "
                              f"NAME.safetensors plus NAME.json")
    check_sizes(None, path.stat().st_size, metadata_name=path.name)
    return parse_metadata(path.read_bytes(), path.name)


def parse_metadata(raw: bytes, label: str = "metadata") -> dict:
    """The sidecar's JSON, every required field checked (type, format, safe name, dataset, classes)."""
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{label} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{label} must be a JSON object, got {type(meta).__name__}")
    for key, kind in REQUIRED.items():
        value = meta.get(key)
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok:
            raise CheckpointError(f"{label}: field {key!r} must be a {kind.__name__}, got {value!r:.60}")
    if meta["format"] != FORMAT:
        raise CheckpointError(f"{label}: format {meta['format']!r:.60} is not {FORMAT!r}")
    if not SAFE_NAME.match(meta["name"]):
        raise CheckpointError(f"{label}: name {meta['name']!r:.60} may only use letters, digits, _ . - "
                              f"(no paths)")
    if meta["dataset"] not in DATASETS:
        raise CheckpointError(f"{label}: dataset {meta['dataset']!r:.60} is unknown: use one of "
                              f"{', '.join(DATASETS)}")
    if not 2 <= meta["classes"] <= 10:
        raise CheckpointError(f"{label}: classes={meta['classes']} must be in [2, 10]")
    if not re.fullmatch(r"[0-9a-f]{64}", meta["sha256"]):
        raise CheckpointError(f"{label}: sha256 must be 64 hex digits")
    _check_convergence_fields(meta, label)
    return meta


def _check_convergence_fields(meta: dict, label: str) -> None:
    """The optional training verdict Train writes: `converged` (bool) and `convergence_notes` (strings)."""
    if "converged" in meta and not isinstance(meta["converged"], bool):
        raise CheckpointError(f"{label}: field 'converged' must be true or false, got {meta['converged']!r:.60}")
    notes = meta.get("convergence_notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise CheckpointError(f"{label}: field 'convergence_notes' must be a list of strings, got {notes!r:.60}")


def load_weights(blob: bytes, meta: dict, label: str = "weights") -> nn.Module:
    """Build the model from meta['arch'] and fill it from safetensors bytes, checking everything."""
    from safetensors.torch import load

    check_sizes(len(blob), None, weights_name=label)
    if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
        raise CheckpointError(f"{label}: sha256 does not match the metadata (corrupted or swapped file)")
    try:
        state = load(blob)
    except Exception as exc:  # safetensors raises its own error types for malformed files
        raise CheckpointError(f"{label} is not a valid safetensors file: {exc}") from None
    return _model_from_state(meta, state, label)


def _model_from_state(meta: dict, state: dict, label: str) -> nn.Module:
    """Build meta['arch'] and fill it, after checking the tensors and the parameter count."""
    try:
        model = build_model(meta["arch"])
    except ArchError as exc:
        raise CheckpointError(f"{label}: {exc}") from None
    _check_state(model, state, label)
    if count_params(model) != meta["num_params"]:
        raise CheckpointError(f"{label}: metadata says {meta['num_params']:,} parameters, the "
                              f"architecture has {count_params(model):,}")
    model.load_state_dict(state, strict=True)
    return model.eval()


def _check_state(model: nn.Module, state: dict, label: str) -> None:
    expected = model.state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{label}: tensors do not match the architecture (missing {missing[:5]}, "
                              f"unexpected {extra[:5]})")
    for key, ref in expected.items():
        got = state[key]
        if got.shape != ref.shape:
            raise CheckpointError(f"{label}: tensor {key!r} has shape {tuple(got.shape)}, the "
                                  f"architecture needs {tuple(ref.shape)}")
        if got.dtype != ref.dtype:
            raise CheckpointError(f"{label}: tensor {key!r} is {got.dtype}, expected {ref.dtype}")
        if not torch.isfinite(got).all():
            raise CheckpointError(f"{label}: tensor {key!r} contains NaN or Inf")


def load_checkpoint(path) -> tuple[nn.Module, dict]:
    """(model in eval mode, metadata) from NAME.safetensors + NAME.json, or a legacy .pt."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} not found")
    meta = read_metadata(path)
    check_sizes(path.stat().st_size, None, weights_name=path.name)
    if path.suffix == ".pt":
        return _load_legacy(path, meta), {**meta, "path": str(path)}
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path.name}: use a .safetensors file (or a legacy .pt state dict)")
    return load_weights(path.read_bytes(), meta, path.name), {**meta, "path": str(path)}


def load_checkpoint_bytes(weights: bytes, metadata: bytes, weights_name: str = "weights.safetensors",
                          metadata_name: str = "metadata.json") -> tuple[nn.Module, dict]:
    """(model in eval mode, metadata) from the bytes of a .safetensors file and its JSON sidecar,
    e.g. an upload: the same size limits and validation as load_checkpoint."""
    check_sizes(len(weights), len(metadata), weights_name, metadata_name)
    meta = parse_metadata(metadata, metadata_name)
    return load_weights(weights, meta, weights_name), meta


def _load_legacy(path: pathlib.Path, meta: dict) -> nn.Module:
    """A .pt state dict, read with weights_only=True: pickled code is refused, never run."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path.name} was refused: not a plain tensor state dict "
                              f"({str(exc).splitlines()[0][:200]})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path.name} must hold a dict of tensors (a state_dict)")
    return _model_from_state(meta, state, path.name)


# -- catalogue -----------------------------------------------------------------------------

def user_dir() -> pathlib.Path:
    """Where trained models are saved (never cached_models/): $LLC_USER_MODELS, else a per-user
    folder (llc_core.paths.user_models_dir)."""
    return user_models_dir()


def list_checkpoints(*dirs) -> list[dict]:
    """Metadata (plus 'path') of every readable checkpoint in the cache and user folders."""
    dirs = dirs or (CACHE_DIR, user_dir())
    rows = []
    for folder in dirs:
        for path in sorted(pathlib.Path(folder).glob("*.safetensors")):
            try:
                rows.append({**read_metadata(path), "path": str(path)})
            except CheckpointError:
                continue  # a broken file is reported when it is opened, not in the listing
    return rows


def write_manifest(folder) -> pathlib.Path:
    folder = pathlib.Path(folder)
    entries = [{k: v for k, v in meta.items() if k != "path"} | {"file": pathlib.Path(meta["path"]).name}
               for meta in list_checkpoints(folder)]
    path = folder / MANIFEST
    path.write_text(json.dumps({"format": FORMAT, "checkpoints": entries}, indent=1))
    return path


# -- estimation tasks ----------------------------------------------------------------------

def task_from(model: nn.Module, meta: dict, data_dir=None):
    """The LLCTask of a loaded checkpoint: its training set rebuilt from the metadata, its SGLD defaults."""
    from .data import load_dataset
    from .recipes import sgld_defaults
    from .task import LLCTask

    data = load_dataset(meta["dataset"], classes=meta["classes"], same_n=meta["same_n"], data_dir=data_dir)
    if data.n_train != meta["n_train"]:
        raise CheckpointError(f"{meta['name']}: trained on {meta['n_train']} examples but the rebuilt "
                              f"dataset has {data.n_train}")
    return LLCTask(model=model, x=data.x_train, y=data.y_train, loss_fn=nn.functional.cross_entropy,
                   name=meta["name"], defaults=sgld_defaults(meta), info=meta)


def load_task(path, data_dir=None):
    """An LLCTask from NAME.safetensors + NAME.json: the model, its rebuilt training data, its
    calibrated SGLD defaults. CheckpointError (an InputError) names whatever is wrong."""
    model, meta = load_checkpoint(path)
    return task_from(model, meta, data_dir)


def task_from_bytes(weights: bytes, metadata: bytes, weights_name: str = "weights.safetensors",
                    metadata_name: str = "metadata.json", data_dir=None):
    """load_task for bytes in memory (the dashboard's upload)."""
    return task_from(*load_checkpoint_bytes(weights, metadata, weights_name, metadata_name), data_dir)
