"""Streamlit glue shared by the pages: the session's background jobs, cached models, the model
picker and the hyperparameter controls. UI only: the work lives in llc_core."""

from __future__ import annotations

import math
import pathlib

import streamlit as st

from llc_core.checkpoints import (MAX_WEIGHTS_BYTES, CheckpointError, list_checkpoints, load_weights,
                                  parse_metadata, task_from)
from llc_core.checkpoints import load_task as _load_task
from llc_core.config import InputError, SGLDConfig, parse_nbeta
from llc_core.limits import UI_MAX_BURNIN, UI_MAX_CHAINS, UI_MAX_DRAWS, UI_MAX_THIN
from llc_core.jobs import JobSlot
from llc_core.recipes import arch_name
from llc_core.toys import parse_toy, toy_true_lambda


def _leave_pages_directory_mode() -> None:
    """A fresh server treats pages/ as a Streamlit v1 pages folder until app.py first calls
    st.navigation: a deep link (/calibrate) as the first visit would run the page alone, with
    every module of pages/ listed as a page. Switch the flag off and rerun through app.py."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


_leave_pages_directory_mode()

DEFAULT_MODEL = "mnist1d_cnn_k10_s0"
TOYS = ["crossing:1", "crossing:2", "crossing:3", "crossing:1,2", "crossing:1,1", "dln:4,3,4:r1",
        "dln:5,5,5:r0", "dln:10,5,10:r2"]
UPLOAD = "upload"
# Stop waits this long for the worker to finish its step, so the page redraws already stopped
# instead of one poll later.
STOP_WAIT = 2.0
EPS_GRID = [round(m * 10.0**e, 12) for e in range(-7, -1) for m in (1, 1.5, 2, 3, 5, 7)] + [0.1]
GAMMA_GRID = [0.0] + [round(m * 10.0**e, 6) for e in range(-1, 4) for m in (1, 2, 5)] + [1e4]
BATCH_GRID = [16, 32, 64, 128, 256, 512, 1000, 1024, 2048, 4096]
HYPER_KEYS = ("epsilon", "gamma", "nbeta", "chains", "draws", "burnin", "thin", "batch_size",
              "noise_scale", "seed")
# The integer controls' ranges: the widgets use them, and so does the check of values from a URL.
INT_RANGES = {"chains": (1, UI_MAX_CHAINS), "draws": (10, UI_MAX_DRAWS), "burnin": (0, UI_MAX_BURNIN),
              "thin": (1, UI_MAX_THIN), "seed": (0, 2**31 - 1)}
NOISE_RANGE = (0.0, 10.0)


@st.cache_resource(scope="session", on_release=lambda slot: slot.close(), show_spinner=False)
def session_jobs() -> JobSlot:
    """This browser session's background jobs; stopped when the tab closes."""
    return JobSlot()


@st.cache_resource(show_spinner="Loading model and its training data…", max_entries=16)
def cached_task(choice: str):
    """The LLCTask for a model choice (shared read-only; every run copies the weights)."""
    if choice.startswith("toy:"):
        return parse_toy(choice[4:])
    path = next((m["path"] for m in list_checkpoints() if m["name"] == choice), None)
    if path is None:
        raise CheckpointError(f"model {choice!r} is not in cached_models/ or user_models/")
    return _load_task(path)


@st.cache_data(ttl=30, show_spinner=False)
def model_catalogue() -> dict[str, str]:
    """choice -> label, checkpoints first (grouped by dataset, architecture, classes, seed)."""
    rows = sorted(list_checkpoints(), key=lambda m: (m["dataset"], m["arch"]["kind"], m["classes"], m["seed"]))
    labels = {}
    for m in rows:
        kind = arch_name(m["arch"]["kind"])
        labels[m["name"]] = (f"{m['dataset'].upper()} · {kind} · K={m['classes']} · seed {m['seed']} "
                             f"— test {m['test_accuracy']:.1%}, {m['num_params']:,} params")
    for spec in TOYS:
        kind = "normal crossing" if spec.startswith("crossing") else "deep linear net"
        labels[f"toy:{spec}"] = f"Known-λ toy · {kind} {spec.split(':', 1)[1]} (λ = {toy_true_lambda(spec):.4g})"
    labels[UPLOAD] = "Upload a checkpoint (.safetensors + .json)…"
    return labels


def snap(value: float, grid: list[float]) -> float:
    """Nearest grid value, in log space (0 only matches 0)."""
    if value <= 0:
        return grid[0]
    positive = [g for g in grid if g > 0]
    return min(positive, key=lambda g: abs(math.log(g) - math.log(value)))


def eps_options(task) -> list[float]:
    """The ε slider's values: the grid plus the model's own calibrated ε, so the dashboard runs
    exactly what the CLI and API run by default."""
    own = task.defaults.epsilon
    extra = {float(own)} if own and EPS_GRID[0] <= own <= EPS_GRID[-1] else set()
    return sorted(set(EPS_GRID) | extra)


def batch_options(n: int) -> list[int]:
    """Batch sizes the slider offers for a training set of n examples."""
    return [b for b in BATCH_GRID if b <= n] or [n]


def fmt_eps(value: float) -> str:
    return f"{value:.1e}" if value in EPS_GRID else f"{value:.3e}"


def defaults_for(task) -> dict:
    base = task.defaults
    return {
        "epsilon": snap(base.epsilon, eps_options(task)), "gamma": snap(base.gamma, GAMMA_GRID),
        "nbeta": "auto", "chains": min(base.chains, UI_MAX_CHAINS), "draws": base.draws,
        "burnin": base.burnin, "thin": base.thin,
        "batch_size": snap(min(base.batch_size, task.n), batch_options(task.n)),
        "noise_scale": 1.0, "seed": 0,
    }


def apply_defaults(task, prefix: str = "", values: dict | None = None) -> None:
    for key, value in (values or defaults_for(task)).items():
        st.session_state[prefix + key] = value


def init_defaults(task, prefix: str = "", values: dict | None = None) -> None:
    """First visit: fill controls from the model's defaults unless the URL set them (validly)."""
    for key, value in (values or defaults_for(task)).items():
        if prefix + key in st.session_state:
            continue
        raw = st.query_params.get(prefix + key)
        problem = None if raw is None else url_value_problem(key, raw, task)
        if problem:
            # A bound widget would silently fall back to its minimum; say so and use the default.
            st.session_state.setdefault("url_problems", []).append(
                f"Ignored {prefix + key}={raw[:40]!r} from the link: {problem}. Using {value!r}.")
        if raw is None or problem:
            st.session_state[prefix + key] = value


def _int_between(raw: str, low: int, high: int) -> bool:
    try:
        return low <= int(raw) <= high
    except ValueError:
        return False


def url_value_problem(key: str, raw: str, task) -> str | None:
    """Why a hyperparameter value from the URL is unusable (the text says what is allowed), or None."""
    if key == "epsilon":
        return None if raw in {fmt_eps(v) for v in eps_options(task)} else \
            f"ε must be one of the slider's values, {EPS_GRID[0]:.0e} to {EPS_GRID[-1]:g}"
    if key == "gamma":
        return None if raw in {f"{v:g}" for v in GAMMA_GRID} else \
            f"γ must be one of the slider's values, 0 to {GAMMA_GRID[-1]:g}"
    if key == "batch_size":
        sizes = batch_options(task.n)
        return None if raw in {str(b) for b in sizes} else f"batch size must be one of {sizes}"
    if key == "noise_scale":
        low, high = NOISE_RANGE
        try:
            return None if low <= float(raw) <= high else f"σ must be a number in [{low:g}, {high:g}]"
        except ValueError:
            return f"σ must be a number in [{low:g}, {high:g}]"
    if key in INT_RANGES and not _int_between(raw, *INT_RANGES[key]):
        return f"{key} must be an integer in [{INT_RANGES[key][0]}, {INT_RANGES[key][1]:,}]"
    return None  # nβ is parsed, and its errors shown, by the controls themselves


def show_url_problems() -> None:
    for message in st.session_state.pop("url_problems", []):
        st.warning(message, icon="🔗")


def uploaded_task(files):
    """An LLCTask from an uploaded .safetensors + .json pair; InputError on anything wrong."""
    by_suffix = {pathlib.Path(f.name).suffix: f for f in files or []}
    if set(by_suffix) != {".safetensors", ".json"} or len(files) != 2:
        names = ", ".join(f.name for f in files or []) or "nothing"
        raise CheckpointError(f"upload exactly one .safetensors and one .json file (got {names})")
    weights, meta_file = by_suffix[".safetensors"], by_suffix[".json"]
    if weights.size > MAX_WEIGHTS_BYTES:
        raise CheckpointError(f"{weights.name} is {weights.size:,} bytes; the upload limit is "
                              f"{MAX_WEIGHTS_BYTES:,}")
    meta = parse_metadata(meta_file.getvalue(), meta_file.name)
    model = load_weights(weights.getvalue(), meta, weights.name)
    return task_from(model, meta)


def model_picker(disabled: bool = False, key: str = "model", allow_upload: bool = True,
                 label: str = "Model") -> tuple[str, object]:
    """The model selectbox (its choice written to the URL) and the loaded task, or None with the error
    shown."""
    catalogue = model_catalogue()
    choices = [c for c in catalogue if allow_upload or c != UPLOAD]
    if st.session_state.get(key) not in choices:
        # A shared link's model first, then the model open on Estimate, then the default.
        wanted = [st.query_params.get(key), st.session_state.get("model"), DEFAULT_MODEL]
        if wanted[0] is not None and wanted[0] not in choices:
            st.warning(f"Ignored {key}={wanted[0][:60]!r} from the link: not a model in cached_models/, "
                       f"user_models/ or the toys. Pick one from the list.", icon="🔗")
        st.session_state[key] = next((c for c in wanted if c in choices), choices[0])

    def on_change():
        if st.session_state[key] != UPLOAD and key == "model":
            try:
                apply_defaults(cached_task(st.session_state[key]))
            except InputError:
                pass  # reported below, where the task is loaded again

    st.selectbox(label, choices, key=key, format_func=catalogue.get, on_change=on_change, disabled=disabled,
                 persist_state="session")
    choice = st.session_state[key]
    # Set by hand, not bind="query-params": a bound selectbox writes its formatted label into the
    # URL, which does not parse back on another page. The raw name makes a link that does.
    if st.query_params.get(key) != choice:
        st.query_params[key] = choice
    try:
        if choice == UPLOAD:
            files = st.file_uploader("Weights (.safetensors) and metadata (.json)", type=["safetensors", "json"],
                                     accept_multiple_files=True, key=f"{key}_upload_files")
            return choice, uploaded_task(files) if files else None
        return choice, cached_task(choice)
    except InputError as exc:
        st.error(f"Cannot use this model: {exc}")
    except Exception as exc:  # a broken file must not take the page down
        st.error(f"Cannot use this model ({type(exc).__name__}): {exc}")
    return choice, None


def hyperparameter_controls(task, disabled: bool = False, prefix: str = "") -> tuple[SGLDConfig | None, str]:
    """The sidebar controls (widget keys of DESIGN.md §5, bound to the URL; `prefix` gives another
    page its own set). Returns (config or None if invalid, description of nβ)."""
    bind, ss = "query-params", st.session_state
    st.select_slider("Step size ε", eps_options(task), key=prefix + "epsilon", format_func=fmt_eps,
                     help="SGLD step size. Too large → divergence; too small → chains barely move.",
                     disabled=disabled, bind=bind, persist_state="session")
    st.select_slider("Localization γ", GAMMA_GRID, key=prefix + "gamma", format_func=lambda v: f"{v:g}",
                     help="Pull towards w*. Larger γ keeps chains near w* (guards against negative λ̂).",
                     disabled=disabled, bind=bind, persist_state="session")
    st.text_input("Inverse temperature nβ", key=prefix + "nbeta", disabled=disabled, bind=bind,
                  help="auto = n/log n; '2x' = twice that; or a number.")
    try:
        nbeta, nbeta_text = parse_nbeta(ss.get(prefix + "nbeta", "auto"), task.n)
        st.caption(f"nβ {nbeta_text}")
    except InputError as exc:
        st.error(str(exc))
        return None, ""
    st.slider("Chains", *INT_RANGES["chains"], key=prefix + "chains", disabled=disabled, bind=bind,
              persist_state="session")
    st.number_input("Draws per chain", *INT_RANGES["draws"], step=100, key=prefix + "draws",
                    disabled=disabled, bind=bind, persist_state="session")
    st.number_input("Burn-in steps", *INT_RANGES["burnin"], step=100, key=prefix + "burnin", disabled=disabled,
                    bind=bind, persist_state="session")
    batches = batch_options(task.n)
    if ss.get(prefix + "batch_size") not in batches:
        ss[prefix + "batch_size"] = snap(ss.get(prefix + "batch_size") or 256, batches)
    st.select_slider("Batch size", batches, key=prefix + "batch_size", disabled=disabled, bind=bind,
                     persist_state="session")
    with st.expander("Advanced"):
        st.number_input("Steps between draws", *INT_RANGES["thin"], key=prefix + "thin", disabled=disabled, bind=bind,
                        persist_state="session")
        st.number_input("Noise scale σ (1 = valid posterior)", *NOISE_RANGE, step=0.1, key=prefix + "noise_scale",
                        disabled=disabled, bind=bind, persist_state="session")
        st.number_input("Seed", *INT_RANGES["seed"], key=prefix + "seed", disabled=disabled, bind=bind,
                        persist_state="session")
    values = {k: ss[prefix + k] for k in HYPER_KEYS if k != "nbeta"}
    try:
        config = task.defaults.replace(**{**values, "nbeta": nbeta,
                                          "chains": int(values["chains"]), "draws": int(values["draws"]),
                                          "burnin": int(values["burnin"]), "thin": int(values["thin"]),
                                          "seed": int(values["seed"]), "noise_scale": float(values["noise_scale"]),
                                          "batch_size": int(values["batch_size"])}).validate(task.n)
    except InputError as exc:
        st.error(str(exc))
        return None, nbeta_text
    return config, nbeta_text


def run_stop_buttons(prefix: str, running: bool, ready: bool, label: str = "Run") -> tuple[bool, bool]:
    """The sidebar's Run and Stop pair (keys PREFIXrun, PREFIXstop): Run while idle and ready,
    Stop while running. Returns (run clicked, stop clicked)."""
    left, right = st.columns(2)
    run = left.button(label, key=f"{prefix}run", type="primary", disabled=running or not ready, width="stretch")
    stop = right.button("Stop", key=f"{prefix}stop", disabled=not running, width="stretch")
    return run, stop


def send_to_estimate(model: str, settings: dict, note: str = "Settings loaded from Calibrate.") -> None:
    """Open Estimate with this model and these settings (the rest from the model's defaults); values as
    the widgets hold them (nβ as text: "auto" or "2x")."""
    st.session_state["load_settings"] = {"model": model, "settings": settings, "note": note}
    # query_params={} rather than the default clear(), which refuses while widgets are URL-bound
    st.switch_page("pages/estimate.py", query_params={})


def take_sent_settings() -> None:
    """On Estimate, before its widgets: apply what another page sent with send_to_estimate."""
    sent = st.session_state.pop("load_settings", None)
    if not sent:
        return
    st.session_state["model"] = sent["model"]
    try:
        task = cached_task(sent["model"])
    except InputError:
        return  # the picker reports the model's problem
    apply_defaults(task)
    for key, value in sent["settings"].items():
        if key == "epsilon":
            value = snap(value, eps_options(task))
        elif key == "gamma":
            value = snap(value, GAMMA_GRID)
        st.session_state[key] = value
    st.session_state["sent_note"] = sent["note"]
