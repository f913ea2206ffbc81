"""The SGLD hyperparameter controls: the sliders' grids, the model's defaults on them, the values
a URL may carry (checked, with the reason shown), and the Run/Stop pair."""

from __future__ import annotations

import math

import streamlit as st

from llc_core.config import SAMPLERS, InputError, SGLDConfig, parse_nbeta
from llc_core.devices import available_devices, describe_devices
from llc_core.limits import UI_MAX_BURNIN, UI_MAX_CHAINS, UI_MAX_DRAWS, UI_MAX_THIN

EPS_GRID = [round(m * 10.0**e, 12) for e in range(-7, -1) for m in (1, 1.5, 2, 3, 5, 7)] + [0.1]
GAMMA_GRID = [0.0] + [round(m * 10.0**e, 6) for e in range(-1, 4) for m in (1, 2, 5)] + [1e4]
BATCH_GRID = [16, 32, 64, 128, 256, 512, 1000, 1024, 2048, 4096]
HYPER_KEYS = ("epsilon", "gamma", "nbeta", "chains", "draws", "burnin", "thin", "batch_size",
              "noise_scale", "seed", "sampler")
DEVICE_KEY = "device"  # one device picker for every page (a machine-wide choice, not per page)
SAMPLER_HELP = {"sgld": "SGLD (Lau et al. 2023)", "rmsprop_sgld": "RMSProp-preconditioned SGLD"}
# The integer controls' ranges: the widgets use them, and so does the check of values from a URL.
INT_RANGES = {"chains": (1, UI_MAX_CHAINS), "draws": (10, UI_MAX_DRAWS), "burnin": (0, UI_MAX_BURNIN),
              "thin": (1, UI_MAX_THIN), "seed": (0, 2**31 - 1)}
NOISE_RANGE = (0.0, 10.0)
# Controls outside the Estimate settings (Calibrate's grid, MLP vs CNN's mode) are mirrored in the URL
# by Streamlit's binding, which leaves out a value equal to the widget's default: the link then means
# "the default". The Estimate settings are written in full instead (see write_url).
BIND = "query-params"


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
    """The model's own SGLD defaults as the widgets hold them (snapped to the sliders' values)."""
    base = task.defaults
    return {
        "epsilon": snap(base.epsilon, eps_options(task)), "gamma": snap(base.gamma, GAMMA_GRID),
        "nbeta": "auto", "chains": min(base.chains, UI_MAX_CHAINS), "draws": base.draws,
        "burnin": base.burnin, "thin": base.thin,
        "batch_size": snap(min(base.batch_size, task.n), batch_options(task.n)),
        "noise_scale": 1.0, "seed": 0, "sampler": base.sampler,
    }


def apply_defaults(task, prefix: str = "", values: dict | None = None) -> None:
    """Set the controls to these values (the model's defaults unless given). Only before the
    widgets are drawn in this run; a button uses reset_button, whose callback runs before them."""
    for key, value in (values or defaults_for(task)).items():
        st.session_state[prefix + key] = value


def reset_button(label: str, values: dict, key: str, prefix: str = "", disabled: bool = False) -> bool:
    """A button that puts widgets back to `values` (widget key without `prefix` -> value). They are set in
    its on_click callback, which Streamlit runs before the next run creates the widgets: setting a
    widget's state after the widget was drawn raises StreamlitWidgetAlreadyInstantiatedError."""
    def reset():
        st.session_state.update({prefix + name: value for name, value in values.items()})

    return st.button(label, key=key, on_click=reset, disabled=disabled)


def init_defaults(task, prefix: str = "", values: dict | None = None) -> None:
    """First visit: fill controls from the URL where it sets them (validly), else from the defaults."""
    for key, value in (values or defaults_for(task)).items():
        if prefix + key in st.session_state:
            continue
        raw = st.query_params.get(prefix + key)
        problem = None if raw is None else url_value_problem(key, raw, task)
        if problem:
            st.session_state.setdefault("url_problems", []).append(
                f"Ignored {prefix + key}={raw[:40]!r} from the link: {problem}. Using {value!r}.")
        st.session_state[prefix + key] = value if raw is None or problem else url_value(key, raw, task)


def url_text(key: str, value) -> str:
    """A control's value as the URL carries it; url_value reads it back to the identical value."""
    if key == "epsilon":
        return fmt_eps(value)
    if key == "gamma":
        return f"{value:g}"
    if key == "noise_scale":
        return repr(float(value))  # shortest text that reads back to the same float
    return str(value)


def url_value(key: str, raw: str, task):
    """The control's value for a URL text that url_value_problem accepted (ε and γ: the exact
    slider value whose text it is, so a link runs bit for bit what was on screen)."""
    if key == "epsilon":
        return next(v for v in eps_options(task) if fmt_eps(v) == raw)
    if key == "gamma":
        return next(v for v in GAMMA_GRID if f"{v:g}" == raw)
    if key == "noise_scale":
        return float(raw)
    if key in INT_RANGES or key == "batch_size":
        return int(raw)
    return raw  # sampler, nβ (checked where it is parsed), device


def write_url(prefix: str = "", keys=HYPER_KEYS + (DEVICE_KEY,)) -> None:
    """Put every control's value in the URL (all of them, not only those that differ from a default),
    so the address bar is always a link that reproduces what is on screen."""
    for key in keys:
        name = key if key == DEVICE_KEY else prefix + key
        if name in st.session_state:
            text = url_text(key, st.session_state[name])
            if st.query_params.get(name) != text:
                st.query_params[name] = text


def _number_between(raw: str, low: float, high: float, kind=int) -> bool:
    try:
        return low <= kind(raw) <= high
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
        return None if _number_between(raw, low, high, float) else f"σ must be a number in [{low:g}, {high:g}]"
    if key == "sampler":
        return None if raw in SAMPLERS else f"sampler must be one of {', '.join(SAMPLERS)}"
    if key == DEVICE_KEY:
        found = ["auto"] + available_devices()
        return None if raw in found else f"device must be one this machine has: {', '.join(found)}"
    if key in INT_RANGES and not _number_between(raw, *INT_RANGES[key]):
        return f"{key} must be an integer in [{INT_RANGES[key][0]}, {INT_RANGES[key][1]:,}]"
    return None  # nβ is parsed, and its errors shown, by the controls themselves


def show_url_problems() -> None:
    for message in st.session_state.pop("url_problems", []):
        st.warning(message, icon="🔗")


def device_picker(disabled: bool = False) -> str:
    """The sidebar's device picker (key `device`, in the URL): auto or what this machine has."""
    if DEVICE_KEY not in st.session_state:
        raw = st.query_params.get(DEVICE_KEY)
        problem = None if raw is None else url_value_problem(DEVICE_KEY, raw, None)
        if problem:  # shown here: the page has shown the other URL problems before this picker
            st.warning(f"Ignored device={raw[:40]!r} from the link: {problem}. Using 'auto'.", icon="🔗")
        st.session_state[DEVICE_KEY] = "auto" if raw is None or problem else raw
    st.selectbox("Device", ["auto"] + available_devices(), key=DEVICE_KEY, disabled=disabled,
                 help="auto = the first GPU when there is one, else the CPU.")
    st.caption(describe_devices())
    return st.session_state[DEVICE_KEY]


def _step_controls(task, disabled: bool, prefix: str) -> tuple[float, str] | None:
    """Sampler, ε, γ and nβ; (nβ, how it was chosen), or None with nβ's error shown."""
    st.selectbox("Sampler", SAMPLERS, key=prefix + "sampler", disabled=disabled,
                 help="The SG-MCMC update rule: " + "; ".join(f"{k} = {v}" for k, v in SAMPLER_HELP.items())
                      + ". RMSProp-SGLD rescales each parameter's step by its gradient history.")
    st.select_slider("Step size ε", eps_options(task), key=prefix + "epsilon", format_func=fmt_eps,
                     help="SGLD step size. Too large → divergence; too small → chains barely move.",
                     disabled=disabled, persist_state="session")
    st.select_slider("Localization γ", GAMMA_GRID, key=prefix + "gamma", format_func=lambda v: f"{v:g}",
                     help="Pull towards w*. Larger γ keeps chains near w* (guards against negative λ̂).",
                     disabled=disabled, persist_state="session")
    st.text_input("Inverse temperature nβ", key=prefix + "nbeta", disabled=disabled,
                  help="auto = n/log n; '2x' = twice that; or a number.")
    try:
        nbeta, nbeta_text = parse_nbeta(st.session_state.get(prefix + "nbeta", "auto"), task.n)
    except InputError as exc:
        st.error(str(exc))
        return None
    st.caption(f"nβ {nbeta_text}")
    return nbeta, nbeta_text


def _length_controls(task, disabled: bool, prefix: str) -> None:
    """Chains, draws, burn-in, batch size, and (under Advanced) thinning, σ and the seed."""
    ss, common = st.session_state, {"disabled": disabled, "persist_state": "session"}
    st.slider("Chains", *INT_RANGES["chains"], key=prefix + "chains", **common)
    st.number_input("Draws per chain", *INT_RANGES["draws"], step=100, key=prefix + "draws", **common)
    st.number_input("Burn-in steps", *INT_RANGES["burnin"], step=100, key=prefix + "burnin", **common)
    batches = batch_options(task.n)
    if ss.get(prefix + "batch_size") not in batches:
        ss[prefix + "batch_size"] = snap(ss.get(prefix + "batch_size") or 256, batches)
    st.select_slider("Batch size", batches, key=prefix + "batch_size", **common)
    with st.expander("Advanced"):
        st.number_input("Steps between draws", *INT_RANGES["thin"], key=prefix + "thin", **common)
        st.number_input("Noise scale σ (1 = valid posterior)", *NOISE_RANGE, step=0.1, key=prefix + "noise_scale",
                        **common)
        st.number_input("Seed", *INT_RANGES["seed"], key=prefix + "seed", **common)


def hyperparameter_controls(task, disabled: bool = False, prefix: str = "") -> tuple[SGLDConfig | None, str]:
    """The sidebar controls (keys HYPER_KEYS; `prefix` gives another page its own set). Every value, a bad
    nβ included, is written to the URL on every run. Returns (config or None if invalid, description of nβ)."""
    device = device_picker(disabled)
    step = _step_controls(task, disabled, prefix)
    _length_controls(task, disabled, prefix)
    write_url(prefix)
    if step is None:
        return None, ""
    nbeta, nbeta_text = step
    ss = st.session_state
    ints = {k: int(ss[prefix + k]) for k in ("chains", "draws", "burnin", "thin", "seed", "batch_size")}
    try:
        config = task.defaults.replace(epsilon=ss[prefix + "epsilon"], gamma=ss[prefix + "gamma"], nbeta=nbeta,
                                       noise_scale=float(ss[prefix + "noise_scale"]), sampler=ss[prefix + "sampler"],
                                       device=device, **ints).validate(task.n)
    except InputError as exc:
        st.error(str(exc))
        return None, nbeta_text
    return config, nbeta_text


def run_stop_buttons(prefix: str, busy: bool, ready: bool, label: str = "Run") -> tuple[bool, bool]:
    """The sidebar's Run and Stop pair (keys PREFIXrun, PREFIXstop): Run while idle and ready,
    Stop while busy. Returns (run clicked, stop clicked); Run is already disabled on the run of its
    own press (`PageJobs.busy`), so pages ask `PageJobs.pressed` for it instead."""
    left, right = st.columns(2)
    run = left.button(label, key=f"{prefix}run", type="primary", disabled=busy or not ready, width="stretch")
    stop = right.button("Stop", key=f"{prefix}stop", disabled=not busy, width="stretch")
    return run, stop
