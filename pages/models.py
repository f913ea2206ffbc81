"""The model picker: the catalogue of checkpoints and toys, the cached tasks, and uploads (read
and checked by the library's own checkpoint loading)."""

from __future__ import annotations

import pathlib

import streamlit as st

from llc_core.checkpoints import CACHE_DIR, CheckpointError, check_sizes, list_checkpoints, load_task, task_from_bytes
from llc_core.config import InputError, parameters_text
from llc_core.recipes import arch_name
from llc_core.toys import parse_toy, toy_true_lambda
from pages.controls import apply_defaults, init_defaults

DEFAULT_MODEL = "mnist1d_cnn_k10_s0"
TOYS = ["crossing:1", "crossing:2", "crossing:3", "crossing:1,2", "crossing:1,1", "dln:4,3,4:r1",
        "dln:5,5,5:r0", "dln:10,5,10:r2"]
UPLOAD = "upload"


@st.cache_resource(show_spinner="Loading model and its training data…", max_entries=16)
def cached_task(choice: str):
    """The LLCTask for a model choice (shared read-only; every run copies the weights)."""
    if choice.startswith("toy:"):
        return parse_toy(choice[4:])
    path = next((m["path"] for m in list_checkpoints() if m["name"] == choice), None)
    if path is None:
        raise CheckpointError(f"model {choice!r} is not in cached_models/ or the user models folder")
    return load_task(path)


@st.cache_data(ttl=30, show_spinner=False)
def model_catalogue() -> dict[str, str]:
    """choice -> label, checkpoints first (grouped by dataset, architecture, classes, seed)."""
    rows = sorted(list_checkpoints(), key=lambda m: (m["dataset"], m["arch"]["kind"], m["classes"], m["seed"]))
    labels = {}
    for m in rows:
        kind = arch_name(m["arch"]["kind"])
        mine = "" if pathlib.Path(m["path"]).parent == CACHE_DIR else f"{m['name']} · "  # trained here: by name
        unconverged = " · ⚠ not converged" if m.get("converged") is False else ""
        labels[m["name"]] = (f"{mine}{m['dataset'].upper()} · {kind} · K={m['classes']} · seed {m['seed']} "
                             f"— test {m['test_accuracy']:.1%}, {m['num_params']:,} params{unconverged}")
    for spec in TOYS:
        kind = "normal crossing" if spec.startswith("crossing") else "deep linear net"
        labels[f"toy:{spec}"] = f"Known-λ toy · {kind} {spec.split(':', 1)[1]} (λ = {toy_true_lambda(spec):.4g})"
    labels[UPLOAD] = "Upload a checkpoint (.safetensors + .json)…"
    return labels


def uploaded_task(files):
    """An LLCTask from an uploaded .safetensors + .json pair; InputError on anything wrong. Sizes are
    checked (by the library) before either file is read."""
    by_suffix = {pathlib.Path(f.name).suffix: f for f in files or []}
    if set(by_suffix) != {".safetensors", ".json"} or len(files) != 2:
        names = ", ".join(f.name for f in files or []) or "nothing"
        raise CheckpointError(f"upload exactly one .safetensors and one .json file (got {names})")
    weights, meta = by_suffix[".safetensors"], by_suffix[".json"]
    check_sizes(weights.size, meta.size, weights.name, meta.name, limit="the upload limit")
    return _task_from_upload(weights.getvalue(), meta.getvalue(), weights.name, meta.name)


@st.cache_resource(show_spinner="Checking the uploaded model and rebuilding its training data…", max_entries=2)
def _task_from_upload(weights: bytes, metadata: bytes, weights_name: str, metadata_name: str):
    """The checked task of an upload, built once per upload rather than on every rerun of the page
    (keyed by the files' bytes: only the same files give the same task)."""
    task = task_from_bytes(weights, metadata, weights_name, metadata_name)
    task.info["upload_file"] = weights_name  # shown as its name: "upload" says nothing
    return task


def model_identity(choice: str, task) -> str:
    """What the controls were filled for: the choice, or for an upload its file name and weights hash
    (a new upload is a new model and gets its own defaults)."""
    if choice != UPLOAD:
        return choice
    return f"{UPLOAD}:{task.info.get('upload_file', '')}:{task.info.get('sha256', '')[:16]}"


def model_label(choice: str, task) -> str:
    """The model's name for run records and downloads: the choice, or upload:FILE for an upload."""
    return f"{UPLOAD}:{task.info.get('upload_file', task.name)}" if choice == UPLOAD else choice


def _initial_choice(key: str, choices: list[str]) -> str:
    """A shared link's model first, then the model open on Estimate, then the default."""
    wanted = [st.query_params.get(key), st.session_state.get("model"), DEFAULT_MODEL]
    if wanted[0] == UPLOAD and UPLOAD in choices:
        st.info("This link was made with an uploaded model. An upload lives only in the browser session that "
                "made it, so a link cannot carry it: upload the .safetensors and .json files again (the link's "
                "settings are then applied to them).", icon="🔗")
    if wanted[0] is not None and wanted[0] not in choices:
        st.warning(f"Ignored {key}={wanted[0][:60]!r} from the link: not a model in cached_models/, "
                   f"the user models folder or the toys. Pick one from the list.", icon="🔗")
    return next((c for c in wanted if c in choices), choices[0])


def _picked_task(choice: str, key: str):
    """The task for the picked model (the uploader for an upload), or None with the error shown."""
    try:
        if choice == UPLOAD:
            files = st.file_uploader("Weights (.safetensors) and metadata (.json)", type=["safetensors", "json"],
                                     accept_multiple_files=True, key=f"{key}_upload_files")
            return uploaded_task(files) if files else None
        return cached_task(choice)
    except InputError as exc:
        st.error(f"Cannot use this model: {exc}")
    except Exception as exc:  # a broken file must not take the page down
        st.error(f"Cannot use this model ({type(exc).__name__}): {exc}")
    return None


def size_caption(task) -> str:
    """'1 parameter · n = 10,000 training points': the model's size as every page states it."""
    return f"{parameters_text(task.num_params)} · n = {task.n:,} training points"


def model_picker(disabled: bool = False, key: str = "model", allow_upload: bool = True,
                 label: str = "Model") -> tuple[str, object]:
    """The model selectbox (its choice written to the URL) and the loaded task, or None with the error
    shown."""
    catalogue = model_catalogue()
    choices = [c for c in catalogue if allow_upload or c != UPLOAD]
    if st.session_state.get(key) not in choices:
        st.session_state[key] = _initial_choice(key, choices)
    # A new model's own defaults are applied by the page (fill_controls), once its task is loaded:
    # an upload's task exists only after its files arrive.
    st.selectbox(label, choices, key=key, format_func=catalogue.get, disabled=disabled, persist_state="session")
    choice = st.session_state[key]
    # Set by hand, not bind="query-params": a bound selectbox writes its formatted label into the
    # URL, which does not parse back on another page. The raw name makes a link that does.
    if st.query_params.get(key) != choice:
        st.query_params[key] = choice
    return choice, _picked_task(choice, key)


def fill_controls(choice: str, task, key: str = "controls_for") -> None:
    """Before the controls are drawn: on the first visit fill them from the URL (else the model's
    defaults); whenever the model changes (an upload included), from the new model's own defaults."""
    identity, filled_for = model_identity(choice, task), st.session_state.get(key)
    if filled_for is None:
        init_defaults(task)
    elif filled_for != identity:
        apply_defaults(task)
    st.session_state[key] = identity
