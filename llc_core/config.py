"""SGLD hyperparameters for one λ̂ estimate, with validation that names the bad value."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace

from .limits import (MAX_BURNIN, MAX_CHAINS, MAX_DRAWS, MAX_EPSILON, MAX_GAMMA, MAX_NBETA, MAX_NOISE_SCALE,
                     MAX_SEED, MAX_THIN, MAX_TRACE_POINTS)

# The SG-MCMC update rules llc_core implements (see llc_core/sampler.py).
SAMPLERS = ("sgld", "rmsprop_sgld")
# How all chains' gradients are taken (llc_core.gradients.choose_grad); every path gives the same maths.
VECTORIZE = ("auto", "batched", "on", "off")

# RMSProp-SGLD preconditioner defaults: devinterp 1.3.2 SGMCMC.rmsprop_sgld (alpha=0.99, eps=0.1).
RMSPROP_ALPHA = 0.99
RMSPROP_EPS = 0.1


class InputError(ValueError):
    """Bad input from a user (value, file, spec): the message names it and what is allowed."""


class ConfigError(InputError):
    """Invalid hyperparameter: the message names the value and the allowed range."""


@dataclass(frozen=True)
class SGLDConfig:
    """The settings of one λ̂ estimate (immutable). A task's calibrated values are `task.defaults`;
    change some with `task.defaults.replace(epsilon=1e-4, draws=2000)`. The meaning of ε, γ, nβ
    and σ: docs/method.md §1; the ranges `validate` enforces: llc_core/limits.py.
    """

    sampler: str = "sgld"  # update rule, one of SAMPLERS
    epsilon: float = 1e-4  # step size ε
    gamma: float = 100.0  # localization strength γ
    nbeta: float | None = None  # inverse temperature nβ; None means n / log n
    chains: int = 4
    draws: int = 1000  # post-burn-in draws per chain
    burnin: int = 200  # SGLD steps discarded before the first draw
    thin: int = 1  # SGLD steps between draws
    batch_size: int = 256
    noise_scale: float = 1.0  # σ; only σ = 1 samples the tempered posterior
    seed: int = 0
    device: str = "auto"  # "auto" (the GPU when there is one), "cpu", "cuda" or "cuda:N"
    vectorize: str = "auto"  # "auto" | "batched" | "on" (vmap) | "off" (a loop): llc_core.gradients
    report_every: int = 20  # steps between progress records
    diag_every: int = 20  # steps between MALA / distance / drift diagnostics; 0 = none
    max_trace_points: int = 2000  # per chain, kept by halving the resolution
    rmsprop_alpha: float = RMSPROP_ALPHA  # rmsprop_sgld: decay α of the running mean of g²
    rmsprop_eps: float = RMSPROP_EPS  # rmsprop_sgld: stability δ in P = 1/(√V + δ)

    @property
    def total_steps(self) -> int:
        return self.burnin + self.draws * self.thin

    def replace(self, **changes) -> "SGLDConfig":
        """A copy with these fields changed (not validated: call .validate(n))."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SGLDConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s) {unknown}; allowed: {sorted(known)}")
        return cls(**data)

    def validate(self, n: int | None = None) -> "SGLDConfig":
        """Raise ConfigError for the first invalid value; n is the training-set size."""
        _positive_float("epsilon", self.epsilon, upper=MAX_EPSILON)
        _float_in("gamma", self.gamma, 0.0, MAX_GAMMA)
        if self.nbeta is not None:
            _positive_float("nbeta", self.nbeta, upper=MAX_NBETA)
        _float_in("noise_scale", self.noise_scale, 0.0, MAX_NOISE_SCALE)
        _int_in("chains", self.chains, 1, MAX_CHAINS)
        _int_in("draws", self.draws, 1, MAX_DRAWS)
        _int_in("burnin", self.burnin, 0, MAX_BURNIN)
        _int_in("thin", self.thin, 1, MAX_THIN)
        _int_in("seed", self.seed, 0, MAX_SEED)
        _int_in("report_every", self.report_every, 1, 1_000_000)
        _int_in("diag_every", self.diag_every, 0, 1_000_000)
        _int_in("max_trace_points", self.max_trace_points, 16, MAX_TRACE_POINTS)
        _int_in("batch_size", self.batch_size, 1, n if n is not None else 10**9)
        _float_in("rmsprop_alpha", self.rmsprop_alpha, 0.0, 0.9999)
        _positive_float("rmsprop_eps", self.rmsprop_eps, upper=1e6)
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler={self.sampler!r} is invalid: use one of {', '.join(SAMPLERS)}")
        if self.vectorize not in VECTORIZE:
            raise ConfigError(f"vectorize={self.vectorize!r} is invalid: use one of {', '.join(VECTORIZE)}")
        check_device(self.device)
        return self


def check_device(name) -> str:
    """auto, cpu, cuda or cuda:N; whether that GPU is present is checked when a run starts."""
    if not isinstance(name, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", name):
        raise ConfigError(f"device={name!r} is invalid: use auto, cpu, cuda or cuda:N")
    return name


def parameters_text(count: int) -> str:
    """'1 parameter', '15,210 parameters': a model's size as the CLI and the pages write it."""
    return f"{count:,} parameter{'' if count == 1 else 's'}"


def default_nbeta(n: int) -> float:
    """nβ = n / log n (β = 1/log n, Watanabe's WBIC temperature) with n the training-set size."""
    if n < 2:
        raise ConfigError(f"n={n} is too small for nβ = n/log n: need at least 2 training points")
    return n / math.log(n)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_float(name: str, value, upper: float) -> None:
    if not _is_real(value) or not math.isfinite(value) or not 0 < value <= upper:
        raise ConfigError(f"{name}={value!r} is invalid: must be a number > 0 and <= {upper:g}")


def _float_in(name: str, value, low: float, high: float) -> None:
    if not _is_real(value) or not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(f"{name}={value!r} is invalid: must be a number in [{low:g}, {high:g}]")


def _int_in(name: str, value, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{name}={value!r} is invalid: must be an integer in [{low}, {high}]")


def parse_nbeta(text: str, n: int) -> tuple[float | None, str]:
    """'auto', 'K×auto' / 'Kx' (a multiple of n/log n) or a number → (nβ or None, description).

    None means "auto" (the sampler's default n/log n)."""
    raw = str(text).strip().lower().replace(" ", "").replace("×", "x").replace("*", "x")
    auto = default_nbeta(n)
    if raw in ("", "auto"):
        return None, f"auto: n/log n = {auto:.4g} (n = {n:,})"
    try:
        if raw.endswith("xauto") or raw.endswith("x"):
            factor = float(raw.removesuffix("auto").removesuffix("x"))
            _positive_float("nbeta multiplier", factor, upper=1e6)
            return factor * auto, f"{factor:g} × n/log n = {factor * auto:.4g} (n = {n:,})"
        value = float(raw)
    except (ValueError, ConfigError):
        raise ConfigError(f"nbeta={text!r} is invalid: use auto, a multiple like 2x, or a number > 0") from None
    _positive_float("nbeta", value, upper=1e12)
    return value, f"explicit: {value:.4g}"
