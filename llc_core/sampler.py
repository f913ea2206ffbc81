"""Streaming multi-chain SGLD localized at w*, and the λ̂ estimate it yields.

    w_{t+1} = w_t + (ε/2)·(−nβ·∇L_m(w_t) − γ·(w_t − w*)) + N(0, σ²·ε·I)
    λ̂_chain = nβ·(mean of post-burn-in L_m(w_t) − L_n(w*))

All chains live in one (C, d) tensor of flat weights. Gradients come either from a plain loop
over per-chain model copies whose parameters are views into their row (`LoopGrad`), or from one
vmapped functional call over all rows (`VmapGrad`); the update itself is shared.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

import numpy as np
import torch
from torch.func import functional_call, grad_and_value, vmap

from . import convergence as cv
from . import diagnostics as dg
from .config import ConfigError, SGLDConfig, default_nbeta
from .task import LLCTask, full_loss
from .trace import ThinnedTrace



VMAP_MIN_CHAINS = 8
# Live convergence flags (R̂, λ̂ drift) are recomputed at most this often: ArviZ takes ~5 ms on
# 8 × 2000 trace points, which on the 1-parameter toys would be ~5× the SGLD work of a report.
LIVE_CONVERGENCE_SECONDS = 1.0


class CancelToken(Protocol):
    def is_set(self) -> bool: ...


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
    drift_norm: np.ndarray  # (C,) latest ‖(ε/2)·∇U‖ of one step
    noise_norm: np.ndarray  # (C,) latest ‖σ√ε·ξ‖ of one step
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

    def to_json_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("traces", "config", "warnings")}
        for key in ("rhat", "ess_bulk", "ess_tail", "lambda_hat_mcse"):
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


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} is unavailable: no CUDA GPU here; use cpu or auto")
    return torch.device(name)


def chain_seeds(seed: int, chains: int) -> list[int]:
    """Independent, non-overlapping 63-bit seeds per chain, spawned from one run seed."""
    children = np.random.SeedSequence(seed).spawn(chains)
    return [int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in children]


class Flat:
    """Names, shapes and sizes of a module's parameters, to move between flat and named views."""

    def __init__(self, model: torch.nn.Module):
        named = list(model.named_parameters())
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.numels = [p.numel() for _, p in named]
        self.dim = sum(self.numels)

    def flatten(self, model: torch.nn.Module) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def views(self, flat: torch.Tensor) -> dict:
        parts = torch.split(flat, self.numels, dim=-1)
        lead = flat.shape[:-1]
        return {n: t.view(*lead, *s) for n, t, s in zip(self.names, parts, self.shapes)}


class LoopGrad:
    """One model copy per chain; its parameters and their .grad are views into row c of W
    and of a shared gradient buffer, so backward() writes the flat gradient in place."""

    name = "loop"

    def __init__(self, model, flat: Flat, W: torch.Tensor, loss_fn):
        self.loss_fn = loss_fn
        self.grads = torch.zeros_like(W)  # reused every step; callers consume it before the next
        self.models = []
        for row, grad_row in zip(W, self.grads):
            m = copy.deepcopy(model).eval()
            views, grad_views = flat.views(row).values(), flat.views(grad_row).values()
            for p, view, grad_view in zip(m.parameters(), views, grad_views):
                p.data = view
                p.grad = grad_view  # backward accumulates into it in place
            self.models.append(m)

    def __call__(self, W, xb, yb, alive):
        self.grads.zero_()
        losses = []
        for c, model in enumerate(self.models):
            if not alive[c]:
                losses.append(torch.tensor(math.nan, device=W.device))
                continue
            with torch.enable_grad():
                loss = self.loss_fn(model(xb[c]), yb[c])
                loss.backward()
            losses.append(loss.detach())
        return torch.stack(losses), self.grads


class VmapGrad:
    """All chains in one call: vmap over functional_call of a single model copy."""

    name = "vmap"

    def __init__(self, model, flat: Flat, loss_fn):
        model = copy.deepcopy(model).eval()
        buffers = dict(model.named_buffers())

        def loss_at(w, xb, yb):
            out = functional_call(model, {**flat.views(w), **buffers}, (xb,))
            return loss_fn(out, yb)

        self._fn = vmap(grad_and_value(loss_at))

    def __call__(self, W, xb, yb, alive):
        with torch.enable_grad():
            grads, losses = self._fn(W, xb, yb)
        return losses.detach(), grads.detach()


class Minibatches:
    """Per-chain epochs of shuffled indices, each chain from its own generator."""

    def __init__(self, n: int, batch_size: int, generators: list):
        self.n, self.m, self.gens = n, batch_size, generators
        self.perms = [None] * len(generators)
        self.pos = [n] * len(generators)

    def next(self) -> torch.Tensor:
        rows = []
        for c, g in enumerate(self.gens):
            if self.pos[c] + self.m > self.n:
                self.perms[c] = torch.randperm(self.n, generator=g, device=g.device)
                self.pos[c] = 0
            rows.append(self.perms[c][self.pos[c] : self.pos[c] + self.m])
            self.pos[c] += self.m
        return torch.stack(rows)


class SGLDRun:
    """Iterate to run the chains (yields Progress); then read `.result`.

    Cancellation: pass any object with `is_set()` (e.g. threading.Event); it is checked
    every step, and the result then covers the steps done, with `completed=False`.
    """

    def __init__(self, task: LLCTask, config: SGLDConfig, cancel: CancelToken | None = None):
        config.validate(task.n)
        self.task, self.cfg, self.cancel = task, config, cancel
        self.device = resolve_device(config.device)
        self.nbeta = config.nbeta if config.nbeta is not None else default_nbeta(task.n)
        self.nbeta_rule = (
            f"explicit ({config.nbeta:g})" if config.nbeta is not None
            else f"n/log n with n={task.n} training points"
        )
        self.result: LLCResult | None = None

    # -- setup -------------------------------------------------------------------------
    def _setup(self):
        cfg, task, dev = self.cfg, self.task, self.device
        model = copy.deepcopy(task.model).to(dev).eval()
        self.x, self.y = task.x.to(dev), task.y.to(dev)
        self.init_loss = full_loss(model, self.x, self.y, task.loss_fn)
        flat = Flat(model)
        self.w_star = flat.flatten(model).to(dev)
        self.W = self.w_star.repeat(cfg.chains, 1)
        self.noise = torch.empty_like(self.W)
        self.noise_coef = cfg.noise_scale * math.sqrt(cfg.epsilon)
        self.grad = self._choose_grad(model, flat)
        seeds = chain_seeds(cfg.seed, cfg.chains)
        self.gens = [torch.Generator(device=dev).manual_seed(s) for s in seeds]
        self.batches = Minibatches(task.n, cfg.batch_size, self.gens)
        C, nb = cfg.chains, dg.NUM_BLOCKS
        self.alive = np.ones(C, dtype=bool)
        self.all_alive = True
        self.diverged_at: list[int] = []
        self.draw_sum = np.zeros(C)
        self.draws_done = np.zeros(C, dtype=np.int64)
        self.block_sums = np.zeros((C, nb))
        self.block_counts = np.zeros((C, nb), dtype=np.int64)
        self.below = np.zeros(C, dtype=np.int64)
        self.mala_sum = np.zeros(C)
        self.mala_count = np.zeros(C, dtype=np.int64)
        self.distance = np.zeros(C)
        self.drift_norm = np.zeros(C)
        self.noise_norm = np.zeros(C)
        self.loss_trace = ThinnedTrace(C, cfg.max_trace_points)
        self.lambda_trace = ThinnedTrace(C, cfg.max_trace_points)
        self.diag_trace = ThinnedTrace(4 * C, cfg.max_trace_points)
        self.diverge_limit = self.init_loss + dg.DIVERGENCE_LOSS_FACTOR * (1 + abs(self.init_loss))
        self.live_convergence, self.live_convergence_at = [], -math.inf

    def _choose_grad(self, model, flat: Flat):
        cfg = self.cfg
        # bench/throughput.py on CPU: from 8 chains vmap beats the loop (×1.1–1.6, 369 to 118k
        # parameters); at 4 chains the loop is as fast or faster.
        use_vmap = cfg.vectorize == "on" or (cfg.vectorize == "auto" and cfg.chains >= VMAP_MIN_CHAINS)
        if use_vmap:
            try:
                grad = VmapGrad(model, flat, self.task.loss_fn)
                idx = torch.zeros((cfg.chains, 1), dtype=torch.long, device=self.device)
                grad(self.W, self.x[idx], self.y[idx], np.ones(cfg.chains, dtype=bool))
                return grad
            except Exception as exc:  # models vmap cannot trace fall back to the plain loop
                if cfg.vectorize == "on":
                    raise ConfigError(f"vectorize='on' failed for this model: {exc}") from exc
        return LoopGrad(model, flat, self.W, self.task.loss_fn)

    @property
    def chain_weights(self) -> torch.Tensor:
        """Current flat weights of every chain, (C, d); a copy."""
        return self.W.detach().clone()

    # -- the loop ----------------------------------------------------------------------
    def __iter__(self) -> Iterator[Progress]:
        self._setup()
        cfg = self.cfg
        start = time.perf_counter()
        window_steps, window_losses = [], []
        step = 0
        for step in range(1, cfg.total_steps + 1):
            if self.cancel is not None and self.cancel.is_set():
                step -= 1
                break
            losses = self._step(diag=cfg.diag_every > 0 and step % cfg.diag_every == 0)
            self._record(step, losses)
            window_steps.append(step)
            window_losses.append(losses)
            # Also after the very first step: a live page then has something to draw at once.
            if step == 1 or step % cfg.report_every == 0 or step == cfg.total_steps or not self.alive.any():
                yield self._progress(step, window_steps, window_losses)
                window_steps, window_losses = [], []
            if not self.alive.any():
                break
        self.result = self._finish(step, time.perf_counter() - start)

    def run(self, on_progress: Callable[[Progress], None] | None = None) -> LLCResult:
        for progress in self:
            if on_progress is not None:
                on_progress(progress)
        return self.result

    def _step(self, diag: bool) -> np.ndarray:
        cfg, W = self.cfg, self.W
        idx = self.batches.next()
        xb, yb = self.x[idx], self.y[idx]
        loss, g = self.grad(W, xb, yb, self.alive)
        for row, gen in zip(self.noise, self.gens):
            row.normal_(generator=gen)  # in place: no allocation of a (C, d) tensor per step
        if diag:
            drift = g * self.nbeta + (W - self.w_star) * cfg.gamma
            W_old, U_old = W.clone(), self._potential(loss, W)
        # w + (ε/2)(−nβ·g − γ(w − w*)) + σ√ε·ξ, as three in-place passes over W
        if cfg.gamma:
            W.lerp_(self.w_star, cfg.epsilon * cfg.gamma / 2)
        W.add_(g, alpha=-cfg.epsilon * self.nbeta / 2)
        W.add_(self.noise, alpha=self.noise_coef)
        losses = loss.cpu().numpy().astype(float)
        if diag:
            self._diagnose(W_old, U_old, drift, xb, yb)
        return losses

    def _potential(self, loss, W):
        """U(w) = nβ·L_m(w) + γ/2·‖w − w*‖² per chain, in float64."""
        dist2 = ((W - self.w_star) ** 2).sum(dim=1).double()
        return self.nbeta * loss.double() + 0.5 * self.cfg.gamma * dist2

    def _diagnose(self, W_old, U_old, drift_old, xb, yb):
        """MALA acceptance of the step just taken (same minibatch at both ends), ‖w − w*‖,
        and the drift and noise norms of the step."""
        cfg, W = self.cfg, self.W
        loss_new, g_new = self.grad(W, xb, yb, self.alive)
        drift_new = g_new.mul_(self.nbeta).add_(W - self.w_star, alpha=cfg.gamma)
        U_new = self._potential(loss_new, W)
        var = 2 * cfg.epsilon * max(cfg.noise_scale, 1e-12) ** 2
        fwd = ((W - W_old + cfg.epsilon / 2 * drift_old) ** 2).sum(dim=1).double()
        bwd = ((W_old - W + cfg.epsilon / 2 * drift_new) ** 2).sum(dim=1).double()
        log_alpha = (U_old - U_new) + (fwd - bwd) / var
        accept = torch.exp(torch.clamp(log_alpha, max=0.0)).cpu().numpy()
        ok = self.alive & np.isfinite(accept)
        self.mala_sum[ok] += accept[ok]
        self.mala_count[ok] += 1
        self.distance = (W - self.w_star).norm(dim=1).cpu().numpy().astype(float)
        self.drift_norm = (cfg.epsilon / 2 * drift_old.norm(dim=1)).cpu().numpy().astype(float)
        self.noise_norm = (self.noise_coef * self.noise.norm(dim=1)).cpu().numpy().astype(float)

    def _record(self, step: int, losses: np.ndarray):
        cfg = self.cfg
        healthy = np.isfinite(losses) & (losses < self.diverge_limit)
        if not healthy.all():
            self._mark_diverged(step, ~healthy)
        draw = step - cfg.burnin
        if draw > 0 and draw % cfg.thin == 0:
            # index with `live` only when a chain has died: masked numpy ops cost ~10 µs each
            live = slice(None) if self.all_alive else self.alive
            value = losses[live]
            block = min(dg.NUM_BLOCKS - 1, (draw // cfg.thin - 1) * dg.NUM_BLOCKS // cfg.draws)
            self.draw_sum[live] += value
            self.draws_done[live] += 1
            self.block_sums[live, block] += value
            self.block_counts[live, block] += 1
            self.below[live] += value < self.init_loss
        self.loss_trace.add(step, losses if self.all_alive else np.where(self.alive, losses, np.nan))
        self.lambda_trace.add(step, self._lambda_chain)
        if cfg.diag_every and step % cfg.diag_every == 0:
            diag = np.concatenate([self._mala(), self.distance, self.drift_norm, self.noise_norm])
            self.diag_trace.add(step, diag)

    def _mark_diverged(self, step: int, blown: np.ndarray):
        blown &= self.alive
        self.alive &= ~blown
        self.all_alive = False
        self.diverged_at += [step] * int(blown.sum())
        self.W[torch.as_tensor(blown, device=self.W.device)] = self.w_star

    def _lambda_chain(self) -> np.ndarray:
        lam = np.full(len(self.alive), np.nan)
        ok = self.alive & (self.draws_done > 0)
        lam[ok] = self.nbeta * (self.draw_sum[ok] / self.draws_done[ok] - self.init_loss)
        return lam

    def _mala(self) -> np.ndarray:
        mala = np.full(len(self.alive), np.nan)
        ok = self.mala_count > 0
        mala[ok] = self.mala_sum[ok] / self.mala_count[ok]
        return mala

    def _state(self) -> dg.RunState:
        return dg.RunState(
            init_loss=self.init_loss, nbeta=self.nbeta, noise_scale=self.cfg.noise_scale,
            draws_total=self.cfg.draws, draws_done=self.draws_done, lambda_chain=self._lambda_chain(),
            alive=self.alive.copy(), diverged_at=list(self.diverged_at), block_sums=self.block_sums,
            block_counts=self.block_counts, below_init=self.below, mala=self._mala(),
            num_params=int(self.w_star.numel()),
        )

    def _progress(self, step, window_steps, window_losses) -> Progress:
        lam_chain = self._lambda_chain()
        lam, std, _, used = dg.pooled_lambda(lam_chain, self.alive)
        flags = dg.assess(self._state(), final=False) + self._live_convergence_flags()
        return Progress(
            step=step, total_steps=self.cfg.total_steps,
            phase="burnin" if step <= self.cfg.burnin else "sampling",
            window_steps=np.asarray(window_steps), window_losses=np.stack(window_losses, axis=1),
            lambda_chain=lam_chain, lambda_hat=lam, lambda_std=std, chains_used=used,
            alive=self.alive.copy(), mala=self._mala(), distance=self.distance.copy(),
            drift_norm=self.drift_norm.copy(), noise_norm=self.noise_norm.copy(),
            flags=flags, status=dg.status_of(flags),
        )

    def _convergence(self) -> cv.Convergence:
        draws = cv.post_burnin(self.loss_trace.steps, self.loss_trace.values, self.cfg.burnin, self.alive)
        return cv.convergence(draws, self.nbeta, self.init_loss)

    def _live_convergence_flags(self) -> list:
        if time.monotonic() - self.live_convergence_at > LIVE_CONVERGENCE_SECONDS:
            self.live_convergence = cv.flags(self._convergence(), final=False)
            self.live_convergence_at = time.monotonic()
        return self.live_convergence

    def _finish(self, steps_done: int, seconds: float) -> LLCResult:
        cfg = self.cfg
        state = self._state()
        lam_chain = state.lambda_chain
        lam, std, _, used = dg.pooled_lambda(lam_chain, self.alive)
        conv = self._convergence()
        flags = dg.assess(state, final=True) + cv.flags(conv, final=True)
        se = conv.lambda_mcse
        losses = self.loss_trace.values
        diag = self.diag_trace.values.reshape(4, cfg.chains, -1)
        return LLCResult(
            lambda_hat=lam, lambda_hat_std=std, lambda_hat_se=se,
            lambda_hat_per_chain=lam_chain.tolist(), chains_used=used, init_loss=self.init_loss,
            nbeta=self.nbeta, nbeta_rule=self.nbeta_rule, status=dg.status_of(flags), warnings=flags,
            true_lambda=self.task.true_lambda, target_lambda=self.task.target_lambda,
            steps_per_second=steps_done * cfg.chains / seconds if seconds > 0 else math.nan,
            wall_seconds=seconds, completed=steps_done == cfg.total_steps, steps_done=steps_done,
            path=self.grad.name, config=cfg, num_params=int(self.w_star.numel()), n=self.task.n,
            diagnostics={
                "mala_acceptance": self._mala().tolist(),
                "distance_final": self.distance.tolist(),
                "drift_norm": self.drift_norm.tolist(),
                "noise_norm": self.noise_norm.tolist(),
                "fraction_below_init": (self.below / np.maximum(self.draws_done, 1)).tolist(),
                "draws_per_chain": self.draws_done.tolist(),
                "rhat": conv.rhat, "ess_bulk": conv.ess_bulk, "ess_tail": conv.ess_tail,
                "lambda_hat_mcse": conv.lambda_mcse, "convergence": conv.to_dict(),
            },
            traces={
                "steps": self.loss_trace.steps, "loss": losses, "lambda": self.lambda_trace.values,
                "diag_steps": self.diag_trace.steps, "mala": diag[0], "distance": diag[1],
                "drift_norm": diag[2], "noise_norm": diag[3],
            },
        )


def estimate_llc(task: LLCTask, config: SGLDConfig | None = None, cancel: CancelToken | None = None,
                 on_progress: Callable[[Progress], None] | None = None) -> LLCResult:
    """Run the chains to the end (or until cancelled) and return the estimate."""
    config = config or task.defaults
    return SGLDRun(task, config, cancel).run(on_progress)
