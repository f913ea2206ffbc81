"""What a run hands out: `Progress` records while it runs and the final `LLCResult`."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from . import convergence as cv
from . import diagnostics as dg
from . import step_bias as sb
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
    path: str  # how the gradients ran: "batched", "vmap" or "loop" (llc_core.gradients)
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
        out["step_bias"] = (self.diagnostics.get("step_bias") or {}).get("bias", math.nan)  # llc_core/step_bias.py
        # nβ as the run used it: config.nbeta None means "auto", resolved at the start (see
        # nbeta_rule); the resolved value keeps the config reproducible with SGLDConfig.from_dict.
        out["config"] = self.config.to_dict() | {"nbeta": self.nbeta}
        out["warnings"] = [f.to_dict() for f in self.warnings]
        return _json_safe(out)

    def traces_frame(self):
        """Thinned loss and running-λ̂ traces as a long pandas table (one row per chain-step):
        `loss` is the minibatch loss L_m(w_t), `loss_minus_init` is L_m(w_t) − L_n(w*) (what the
        loss plot shows), `lambda_hat` the chain's running λ̂."""
        import pandas as pd

        steps, loss, lam = self.traces["steps"], self.traces["loss"], self.traces["lambda"]
        rows = [
            pd.DataFrame({"chain": c, "step": steps, "loss": loss[c], "loss_minus_init": loss[c] - self.init_loss,
                          "lambda_hat": lam[c]})
            for c in range(loss.shape[0])
        ]
        return pd.concat(rows, ignore_index=True)

    def settings_columns(self, model: str) -> dict:
        """The model and the settings that produced this run, one value each (for a CSV's columns)."""
        c = self.config
        return {"model": model, "sampler": c.sampler, "epsilon": c.epsilon, "gamma": c.gamma, "nbeta": self.nbeta,
                "chains": c.chains, "draws": c.draws, "burnin": c.burnin, "thin": c.thin,
                "batch_size": c.batch_size, "noise_scale": c.noise_scale, "seed": c.seed}

    def download_frame(self, model: str):
        """The traces CSV of the dashboard: model and setting columns first, then per chain-step the
        loss the plot shows (L_m(w_t) − L_n(w*)), the raw minibatch loss and the running λ̂."""
        frame = self.traces_frame().rename(columns={
            "loss_minus_init": "loss_minus_init_loss", "loss": "minibatch_loss", "lambda_hat": "running_lambda_hat"})
        frame = frame[["chain", "step", "loss_minus_init_loss", "minibatch_loss", "running_lambda_hat"]]
        frame.insert(2, "init_loss", self.init_loss)
        for i, (key, value) in enumerate(self.settings_columns(model).items()):
            frame.insert(i, key, value)
        return frame

    def file_stem(self, model: str) -> str:
        """A download's file name without extension, after the model and the settings:
        llc_<model>_<sampler>_eps1e-04_g100_nb1.2e+03_4x1000_b200_seed0 (only [A-Za-z0-9._+-])."""
        c = self.config
        text = (f"llc_{model}_{c.sampler}_eps{c.epsilon:.3g}_g{c.gamma:g}_nb{self.nbeta:.4g}_"
                f"{c.chains}x{c.draws}_b{c.burnin}_seed{c.seed}")
        return re.sub(r"[^A-Za-z0-9._+-]+", "-", text)[:150]


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
    # Trend flags (early spike, still climbing) live too: they read the 50 block means of the
    # draws so far, which costs microseconds, and wait until 10 blocks (20% of the draws) are in.
    flags = dg.assess(stats.state(), final=True)
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


def _step_bias(run, stats: ChainStats):
    """The step's own bias on λ̂ where the chains ended (llc_core/step_bias.py); None before any draw
    and for a stopped run: its Hessian costs up to a second (MNIST-1D CNN), which Stop would wait
    for, and a stopped run's partial λ̂ is not a result to judge."""
    if getattr(run, "model", None) is None or not stats.draws_done.any():
        return None
    cfg = run.cfg
    return sb.estimate(run.model, run.flat, run.W, stats.alive, run.x, run.y, run.task.loss_fn, cfg.epsilon,
                       run.nbeta, cfg.noise_scale, run.rule.precond_sqrt(), seed=cfg.seed)


def assemble_result(run, steps_done: int, seconds: float) -> LLCResult:
    """The LLCResult of an SGLDRun after `steps_done` steps per chain in `seconds` of sampling."""
    cfg, stats, task = run.cfg, run.stats, run.task
    state = stats.state()
    lam, std, _, used = dg.pooled_lambda(state.lambda_chain, stats.alive)
    conv = cv.of_trace(run.traces.loss.steps, run.traces.loss.values, cfg.burnin, stats.alive, run.nbeta,
                       run.init_loss)
    step = None if getattr(run, "stopped", False) else _step_bias(run, stats)
    flags = (dg.assess(state, final=True) + cv.flags(conv, final=True) + getattr(run, "wstar_flags", [])
             + (sb.flags(step, lam) if step is not None else []))
    se = conv.lambda_mcse  # from the ESS, not std/√chains
    diagnostics = final_diagnostics(stats) | {
        "rhat": conv.rhat, "ess_bulk": conv.ess_bulk, "ess_tail": conv.ess_tail,
        "lambda_hat_mcse": conv.lambda_mcse, "convergence": conv.to_dict(),
        "wstar": run.wstar_check.to_dict() if getattr(run, "wstar_check", None) is not None else None,
        "step_bias": step.to_dict() if step is not None else None}
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
