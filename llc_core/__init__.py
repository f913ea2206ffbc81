"""llc_core: estimate the local learning coefficient λ̂ of a neural network with SGLD.

λ̂ (Lau et al. 2023) measures the effective complexity of a trained model at its parameters w*:
SGLD chains sample a tempered posterior localized at w*, and λ̂ = nβ·(E[L_m(w)] − L_n(w*)).
The method, nβ and the finite-n bias: docs/method.md. Flags: docs/flags.md. CLI: docs/cli.md.

Your own model, in three steps::

    import torch
    from llc_core import LLCTask, estimate_llc

    task = LLCTask(model, x_train, y_train, torch.nn.functional.cross_entropy)  # model at w*
    result = estimate_llc(task, task.defaults.replace(epsilon=1e-4, gamma=100.0, chains=4, draws=1000))
    print(result.lambda_hat, "±", result.lambda_hat_se, result.status, [f.code for f in result.warnings])

The public surface:

- LLCTask(model, x, y, loss_fn, name=..., defaults=SGLDConfig(...)): what λ̂ is estimated
  for — any torch module at w*, its training tensors (x[i], y[i] one example; collect a
  DataLoader with torch.cat) and a mean-reduced loss. The model is never modified.
- SGLDConfig: the SGLD settings (epsilon, gamma, nbeta (None = n/log n), chains, draws,
  burnin, thin, batch_size, noise_scale, seed, device, ...). `.replace(**changes)` copies,
  `.validate(n)` raises ConfigError naming the first bad value.
- estimate_llc(task, config=None, cancel=None, on_progress=None) -> LLCResult: run the chains
  (config defaults to task.defaults); `cancel` is any object with is_set() (a threading.Event)
  and ends the run early with a partial result.
- SGLDRun(task, config, cancel=None): the same run as an iterator of Progress records (for live
  displays); read `.result` afterwards.
- LLCResult: lambda_hat, lambda_hat_std, lambda_hat_se, lambda_hat_per_chain, chains_used,
  init_loss (L_n(w*)), nbeta and nbeta_rule, status ("ok", "warning", "negative",
  "diverged"), warnings (flags with .code, .message, .fix), true_lambda / target_lambda (toys),
  completed, steps_done, diagnostics (MALA acceptance, split R-hat, …), traces_frame() (a
  pandas table of the thinned loss and running-λ̂ traces), to_json_dict().
- load_task(path): an LLCTask from a checkpoint NAME.safetensors + NAME.json (docs/formats.md).
- parse_toy(spec): a model with known λ, "crossing:1,2" or "dln:4,3,4:r1" (docs/method.md §3).
- InputError (every bad input; ConfigError and CheckpointError are kinds of it).

Plots of a result: llc_core.plots (Plotly figures, e.g. loss_figure). Never imports streamlit:
the dashboard in pages/ is a thin UI over this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .config import ConfigError, InputError, SGLDConfig

__version__ = "0.1.0"  # the one place the version lives (pyproject.toml reads it)

# The names that need torch are imported on first use (PEP 562), not with the package: the `llc`
# command imports llc_core, and `llc --help` or a bad flag should answer in a fraction of a second,
# not after torch's ~2.5 s import.
_LAZY = {"CheckpointError": "checkpoints", "load_task": "checkpoints", "LLCResult": "sampler",
         "Progress": "sampler", "SGLDRun": "sampler", "estimate_llc": "sampler", "LLCTask": "task",
         "parse_toy": "toys"}

if TYPE_CHECKING:  # for type checkers and editors, which do not run __getattr__
    from .checkpoints import CheckpointError, load_task
    from .sampler import LLCResult, Progress, SGLDRun, estimate_llc
    from .task import LLCTask
    from .toys import parse_toy


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'llc_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # found directly next time
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CheckpointError", "ConfigError", "InputError", "LLCResult", "LLCTask", "Progress", "SGLDConfig",
    "SGLDRun", "__version__", "estimate_llc", "load_task", "parse_toy",
]
