"""The dashboard's run history: every finished or stopped estimate kept on disk, per browser.

One folder per browser id under `paths.history_dir()`, one JSON file per run, named by its run id
(a UTC timestamp, so names sort oldest first). Each file holds the model, the settings as the
dashboard's controls hold them (so they load back into Estimate), λ̂ ± MCSE, R̂, ESS, status,
flag codes, and thinned traces (running pooled λ̂ and each chain's L_m − L_n(w*)) to overlay.

- Bounded: saving keeps the newest `HISTORY_MAX_RUNS` runs of that browser and deletes the rest.
- Atomic: a run is written to a temporary file in the same folder and renamed into place, so a
  crash leaves either the old state or the new file, never half a file.
- Robust: a file that is unreadable, not JSON, too big or missing fields is skipped and named in
  the problems `load_runs` returns, never raised.
- Private: the browser id names a folder, so it is checked strictly (`check_browser_id`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import pathlib
import re
import secrets
import tempfile

import numpy as np

from .config import InputError
from .limits import HISTORY_MAX_FILE_BYTES, HISTORY_MAX_RUNS, HISTORY_TRACE_POINTS
from .paths import history_dir
from .trace import pooled_trace

FORMAT = "llc_lab.history/1"
BROWSER_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
RUN_ID = re.compile(r"\d{8}T\d{6}\d{6}-[0-9a-f]{8}")
# The settings a run is loaded back with, as the dashboard's controls hold them (pages/controls.py).
SETTING_KEYS = ("sampler", "epsilon", "gamma", "nbeta", "chains", "draws", "burnin", "thin", "batch_size",
                "noise_scale", "seed")
REQUIRED = ("id", "model", "settings", "lambda_hat", "status", "traces")


def new_browser_id() -> str:
    """A fresh random id for a browser (24 URL-safe characters)."""
    return secrets.token_urlsafe(18)


def check_browser_id(value) -> str:
    """The id itself when it is 16-64 of A-Z a-z 0-9 _ -; else InputError (it names a folder)."""
    if not isinstance(value, str) or not BROWSER_ID.fullmatch(value):
        shown = repr(value)[:40]
        raise InputError(f"browser id {shown} is invalid: use 16 to 64 of the characters A-Z a-z 0-9 _ -")
    return value


def check_run_id(value) -> str:
    if not isinstance(value, str) or not RUN_ID.fullmatch(value):
        raise InputError(f"run id {repr(value)[:40]} is invalid: expected YYYYMMDDTHHMMSSffffff-xxxxxxxx")
    return value


def browser_folder(browser_id: str, root: pathlib.Path | None = None) -> pathlib.Path:
    return (root or history_dir()) / check_browser_id(browser_id)


def _new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f") + "-" + secrets.token_hex(4)


def _number(value) -> float | None:
    value = float(value) if value is not None else math.nan
    return value if math.isfinite(value) else None


def _thin(values: np.ndarray, points: int) -> np.ndarray:
    """Every k-th column so that at most `points` remain, always keeping the last."""
    width = values.shape[-1]
    if width <= points:
        return values
    keep = np.unique(np.linspace(0, width - 1, points).round().astype(int))
    return values[..., keep]


def widget_settings(config, nbeta: float | None = None) -> dict:
    """A run's settings as the Estimate controls hold them; nβ as text ("auto" or the number)."""
    given = config.nbeta if nbeta is None else nbeta
    return {"sampler": config.sampler, "epsilon": float(config.epsilon), "gamma": float(config.gamma),
            "nbeta": "auto" if given is None else repr(float(given)), "chains": int(config.chains),
            "draws": int(config.draws), "burnin": int(config.burnin), "thin": int(config.thin),
            "batch_size": int(config.batch_size), "noise_scale": float(config.noise_scale),
            "seed": int(config.seed)}


def _traces(result) -> dict:
    tr = result.traces
    steps = np.asarray(tr.get("steps", np.zeros(0)))
    loss = np.asarray(tr.get("loss", np.zeros((0, 0)))) - result.init_loss
    pooled = pooled_trace(np.asarray(tr.get("lambda", np.zeros((0, 0)))))
    keep = _thin(np.arange(len(steps)), HISTORY_TRACE_POINTS)
    clean = lambda a: [[_number(v) for v in row] for row in np.atleast_2d(a)]
    return {"steps": [int(s) for s in steps[keep]], "pooled_lambda": clean(pooled[keep])[0] if len(keep) else [],
            "loss": clean(loss[:, keep]) if loss.size else [], "burnin": int(result.config.burnin)}


def run_record(result, model: str, model_name: str, state: str) -> dict:
    """The history entry of one finished (`state` "done") or stopped run."""
    d = result.diagnostics
    return {
        "format": FORMAT, "id": _new_run_id(), "saved_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "model": model, "model_name": model_name, "state": state,
        "settings": widget_settings(result.config), "nbeta": _number(result.nbeta),
        "lambda_hat": _number(result.lambda_hat), "mcse": _number(result.lambda_hat_se),
        "std": _number(result.lambda_hat_std), "rhat": _number(d.get("rhat")),
        "ess_bulk": _number(d.get("ess_bulk")), "ess_tail": _number(d.get("ess_tail")),
        "status": result.status, "flags": [f.code for f in result.warnings],
        "chains_used": int(result.chains_used), "steps_done": int(result.steps_done),
        "completed": bool(result.completed), "true_lambda": _number(result.true_lambda),
        "traces": _traces(result),
    }


def save_run(browser_id: str, record: dict, root: pathlib.Path | None = None,
             keep: int = HISTORY_MAX_RUNS) -> pathlib.Path:
    """Write `record` atomically, then delete this browser's oldest runs beyond `keep`."""
    folder = browser_folder(browser_id, root)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{check_run_id(record['id'])}.json"
    handle, temp = tempfile.mkstemp(dir=folder, prefix=".saving-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(record, out, allow_nan=False)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        pathlib.Path(temp).unlink(missing_ok=True)
        raise
    for old in sorted(folder.glob("*.json"))[:-keep]:
        old.unlink(missing_ok=True)
    return path


def _read(path: pathlib.Path) -> dict:
    """One run file, or ValueError/OSError saying why it cannot be used."""
    size = path.stat().st_size
    if size > HISTORY_MAX_FILE_BYTES:
        raise ValueError(f"{size:,} bytes, more than the {HISTORY_MAX_FILE_BYTES:,} a run file may have")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise ValueError(f"missing field(s) {missing}")
    if record["id"] != path.stem or not isinstance(record["settings"], dict):
        raise ValueError("its id does not match its file name, or its settings are not an object")
    return record


def load_runs(browser_id: str, root: pathlib.Path | None = None) -> tuple[list[dict], list[str]]:
    """This browser's runs, newest first, and one message per file that was skipped."""
    folder = browser_folder(browser_id, root)
    runs, problems = [], []
    for path in sorted(folder.glob("*.json"), reverse=True) if folder.is_dir() else []:
        try:
            runs.append(_read(path))
        except (OSError, ValueError) as exc:
            problems.append(f"Skipped the history file {path.name}: {exc}.")
    return runs, problems


def delete_run(browser_id: str, run_id: str, root: pathlib.Path | None = None) -> bool:
    """Delete one run; False when it was not there."""
    path = browser_folder(browser_id, root) / f"{check_run_id(run_id)}.json"
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def clear_runs(browser_id: str, root: pathlib.Path | None = None) -> int:
    """Delete every run of this browser; how many there were."""
    folder = browser_folder(browser_id, root)
    paths = list(folder.glob("*.json")) if folder.is_dir() else []
    for path in paths:
        path.unlink(missing_ok=True)
    return len(paths)


def settings_diff(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """(setting, value in a, value in b) for the model and every setting that differs."""
    rows = [("model", a.get("model"), b.get("model"))] if a.get("model") != b.get("model") else []
    sa, sb = a.get("settings", {}), b.get("settings", {})
    keys = [k for k in SETTING_KEYS if k in sa or k in sb] + sorted((set(sa) | set(sb)) - set(SETTING_KEYS))
    return rows + [(k, sa.get(k), sb.get(k)) for k in keys if sa.get(k) != sb.get(k)]


def run_label(record: dict) -> str:
    """One line naming a run: when, model, ε, γ, λ̂."""
    s = record.get("settings", {})
    when = str(record.get("saved_at", ""))[:19].replace("T", " ")
    return (f"{when} · {record.get('model_name') or record.get('model')} · ε {_short(s.get('epsilon'))} · "
            f"γ {_short(s.get('gamma'))} · λ̂ {_short(record.get('lambda_hat'), '.4g')} ({record.get('status')})")


def _short(value, spec: str = ".3g") -> str:
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"


def runs_table(runs: list[dict]) -> list[dict]:
    """One row per run for the History page's table: settings, λ̂ ± MCSE, R̂, ESS, status, flags."""
    rows = []
    for r in runs:
        s = r.get("settings", {})
        rows.append({
            "saved (UTC)": str(r.get("saved_at", ""))[:19].replace("T", " "),
            "model": r.get("model_name") or r.get("model"), "λ̂": r.get("lambda_hat"), "± MCSE": r.get("mcse"),
            "R̂": r.get("rhat"), "ESS bulk": r.get("ess_bulk"), "ESS tail": r.get("ess_tail"),
            "status": r.get("status"), "flags": ", ".join(r.get("flags", [])),
            "sampler": s.get("sampler"), "ε": s.get("epsilon"), "γ": s.get("gamma"), "nβ": r.get("nbeta"),
            "chains": s.get("chains"), "draws": s.get("draws"), "burn-in": s.get("burnin"),
            "batch": s.get("batch_size"), "seed": s.get("seed"),
            "run": _ending(r),
        })
    return rows


def _ending(record: dict) -> str:
    if record.get("completed"):
        return "finished"
    how = "stopped" if record.get("state") == "stopped" else "ended early"
    return f"{how} at step {record.get('steps_done', 0):,}"
