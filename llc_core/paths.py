"""Where llc_core reads and writes files, in one place.

Read-only, shipped with the package:
  cached_models_dir()  the project's trained checkpoints. `$LLC_CACHED_MODELS` overrides; else
                       `llc_core/cached_models/` of an installed package (package data copied
                       from the repository's top-level `cached_models/`); else that top-level
                       folder of a checkout (running from the repository, or `pip install -e .`).
Written per user, never inside the installation (XDG base directories when set):
  user_models_dir()    models trained in the dashboard or by `llc train` without a path:
                       `$LLC_USER_MODELS`, else `$XDG_DATA_HOME/llc_lab/user_models`
                       (default `~/.local/share/llc_lab/user_models`).
  data_dir()           generated / downloaded datasets: `$LLC_DATA_DIR`, else
                       `$XDG_CACHE_HOME/llc_lab/data` (default `~/.cache/llc_lab/data`).
  runs_cache_dir()     cached estimates of the task-variability experiment: `$LLC_CACHE_DIR/runs`,
                       else `$XDG_CACHE_HOME/llc_lab/runs` (default `~/.cache/llc_lab/runs`).
  history_dir()        the dashboard's run history, one folder per browser: `$LLC_CACHE_DIR/history`,
                       else `$XDG_CACHE_HOME/llc_lab/history` (bounded and deletable, so a cache).
Every function reads the environment when called, so a changed variable takes effect at once.
"""

from __future__ import annotations

import os
import pathlib

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
APP_NAME = "llc_lab"


def _env_path(name: str) -> pathlib.Path | None:
    value = os.environ.get(name)
    return pathlib.Path(value).expanduser() if value else None


def _xdg(variable: str, fallback: str) -> pathlib.Path:
    """An XDG base directory: $variable when set to an absolute path (as the spec asks), else ~/fallback."""
    value = os.environ.get(variable)
    base = pathlib.Path(value) if value and os.path.isabs(value) else pathlib.Path.home() / fallback
    return base / APP_NAME


def cached_models_dir() -> pathlib.Path:
    """The shipped checkpoints (read-only)."""
    installed = PACKAGE_DIR / "cached_models"
    return _env_path("LLC_CACHED_MODELS") or (installed if installed.is_dir() else PACKAGE_DIR.parent / "cached_models")


def user_models_dir() -> pathlib.Path:
    """Where trained models are saved (never the shipped folder)."""
    return _env_path("LLC_USER_MODELS") or _xdg("XDG_DATA_HOME", ".local/share") / "user_models"


def data_dir() -> pathlib.Path:
    """Where datasets are generated or downloaded to."""
    return _env_path("LLC_DATA_DIR") or _xdg("XDG_CACHE_HOME", ".cache") / "data"


def runs_cache_dir() -> pathlib.Path:
    """Where cached estimate results go."""
    base = _env_path("LLC_CACHE_DIR")
    return (base if base else _xdg("XDG_CACHE_HOME", ".cache")) / "runs"


def history_dir() -> pathlib.Path:
    """Where the dashboard keeps each browser's recent runs (llc_core/history.py)."""
    base = _env_path("LLC_CACHE_DIR")
    return (base if base else _xdg("XDG_CACHE_HOME", ".cache")) / "history"
