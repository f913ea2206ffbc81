"""What a run hands out: `Progress` records while it runs and the final `LLCResult`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import convergence as cv
from . import diagnostics as dg
from .chainstats import ChainStats
from .config import SGLDConfig


@dataclass
class Progress:
    """A record handed out every `report_every` steps while the chains run."""

    step: int  # SGLD steps done per chain
    total_steps: int
    phase: str  # "burnin" or "sampling"
    window_steps: np.ndarray  # (k,) steps covered since the previous record
    window_losses: np.ndarray  # (C, k) minibatch loss L_m(w_t) per chain at those steps
    lambda_chain: np.ndarray  # (C,) running λ̂ per chain (NaN in burn-in or diverged)
    lambda_hat: float
    lambda_std: float
    chains_used: int
    alive: np.ndarray  # (C,) bool
    mala: np.ndarray  # (C,) running mean MALA acceptance
    distance: np.ndarray  # (C,) latest ‖w − w*‖
    drift_norm: np.ndarray  # (C,) latest ‖(ε/2)·P·∇U‖ of one step (P = I for plain SGLD)
    noise_norm: np.ndarray  # (C,) latest ‖σ√ε·P^½·ξ‖ of one step
    flags: list
    status: str


@dataclass
class LLCResult:
    lambda_hat: float
    lambda_hat_std: float
    lambda_hat_se: float
    lambda_hat_per_chain: list
    chains_used: int
    init_loss: float
    nbeta: float
    nbeta_rule: str
    status: str
    warnings: list
    true_lambda: float | None
    target_lambda: float | None
    steps_per_second: float  # SGLD steps summed over chains, per wall second of sampling
    wall_seconds: float
    completed: bool  # False when cancelled: the numbers cover the steps done so far
    steps_done: int
    path: str  # "vmap" or "loop"
    config: SGLDConfig
    diagnostics: dict
    num_params: int
    n: int
    traces: dict = field(repr=False, default_factory=dict)
    device: str = "cpu"  # the device the chains ran on, resolved ("cpu", "cuda:0")
    sampler: str = "sgld"  # the update rule, config.sampler

    def to_json_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("traces", "config", "warnings")}
        for key in ("rhat", "ess_bulk", "ess_tail", "lambda_hat_mcse"):  # ArviZ, llc_core/convergence.py
            out[key] = self.diagnostics.get(key, math.nan)
        out["config"] = self.config.to_dict()
        out["warnings"] = [f.to_dict() for f in self.warnings]
        return _json_safe(out)

    def traces_frame(self):
        """Thinned loss and running-λ̂ traces as a long pandas table (one row per chain-step)."""
        import pandas as pd

        steps, loss, lam = self.traces["steps"], self.traces["loss"], self.traces["lambda"]
        rows = [
            pd.DataFrame({"chain": c, "step": steps, "loss": loss[c], "lambda_hat": lam[c]})
            for c in range(loss.shape[0])
        ]
        return pd.concat(rows, ignore_index=True)


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def progress_record(stats: ChainStats, cfg: SGLDConfig, step: int, window_steps, window_losses) -> Progress:
    lam_chain = stats.lambda_chain()
    lam, std, _, used = dg.pooled_lambda(lam_chain, stats.alive)
    flags = dg.assess(stats.state(), final=False)
    return Progress(
        step=step, total_steps=cfg.total_steps, phase="burnin" if step <= cfg.burnin else "sampling",
        window_steps=np.asarray(window_steps), window_losses=np.stack(window_losses, axis=1),
        lambda_chain=lam_chain, lambda_hat=lam, lambda_std=std, chains_used=used,
        alive=stats.alive.copy(), mala=stats.mala(), distance=stats.distance.copy(),
        drift_norm=stats.drift_norm.copy(), noise_norm=stats.noise_norm.copy(),
        flags=flags, status=dg.status_of(flags),
    )


def final_diagnostics(stats: ChainStats) -> dict:
    return {
        "mala_acceptance": stats.mala().tolist(),
        "distance_final": stats.distance.tolist(),
        "drift_norm": stats.drift_norm.tolist(),
        "noise_norm": stats.noise_norm.tolist(),
        "fraction_below_init": (stats.below / np.maximum(stats.draws_done, 1)).tolist(),
        "draws_per_chain": stats.draws_done.tolist(),
    }


def assemble_result(run, steps_done: int, seconds: float) -> LLCResult:
    """The LLCResult of an SGLDRun after `steps_done` steps per chain in `seconds` of sampling."""
    cfg, stats, task = run.cfg, run.stats, run.task
    state = stats.state()
    lam, std, _, used = dg.pooled_lambda(state.lambda_chain, stats.alive)
    conv = cv.of_trace(run.traces.loss.steps, run.traces.loss.values, cfg.burnin, stats.alive, run.nbeta,
                       run.init_loss)
    flags = dg.assess(state, final=True) + cv.flags(conv, final=True) + getattr(run, "wstar_flags", [])
    se = conv.lambda_mcse  # from the ESS, not std/√chains
    diagnostics = final_diagnostics(stats) | {
        "rhat": conv.rhat, "ess_bulk": conv.ess_bulk, "ess_tail": conv.ess_tail,
        "lambda_hat_mcse": conv.lambda_mcse, "convergence": conv.to_dict(),
        "wstar": run.wstar_check.to_dict() if getattr(run, "wstar_check", None) is not None else None}
    return LLCResult(
        lambda_hat=lam, lambda_hat_std=std, lambda_hat_se=se,
        lambda_hat_per_chain=state.lambda_chain.tolist(), chains_used=used, init_loss=run.init_loss,
        nbeta=run.nbeta, nbeta_rule=run.nbeta_rule, status=dg.status_of(flags), warnings=flags,
        true_lambda=task.true_lambda, target_lambda=task.target_lambda,
        steps_per_second=steps_done * cfg.chains / seconds if seconds > 0 else math.nan,
        wall_seconds=seconds, completed=steps_done == cfg.total_steps, steps_done=steps_done,
        path=run.path, config=cfg, num_params=stats.num_params, n=task.n,
        diagnostics=diagnostics,
        traces=run.traces.as_dict(), device=run.device_name, sampler=cfg.sampler,
    )
