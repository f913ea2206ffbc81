"""Streaming multi-chain SG-MCMC localized at w*, and the λ̂ estimate it yields.

    w_{t+1} = w_t − (ε/2)·P·(nβ·∇L_m(w_t) + γ·(w_t − w*)) + N(0, σ²·ε·P)
    λ̂_chain = nβ·(mean of post-burn-in L_m(w_t) − L_n(w*))

All chains live in one (C, d) tensor of flat weights. `SGLDRun` only drives the loop; the pieces
live beside it: gradients (llc_core.gradients), the update rule P (llc_core.update_rules), what
is measured per chain (llc_core.chainstats), traces (llc_core.trace) and the result
(llc_core.results).
"""

from __future__ import annotations

import copy
import os
import time
from typing import Callable, Iterator, Protocol

import numpy as np
import torch

from . import convergence as cv
from . import diagnostics as dg
from . import wstar
from .chainstats import ChainStats
from .config import SGLDConfig, default_nbeta
from .device_step import DeviceStepper
from .devices import device_name, resolve_device
from .gradients import Flat, VmapGrad, choose_grad
from .results import LLCResult, Progress, assemble_result, progress_record  # noqa: F401
from .task import LLCTask, full_loss
from .trace import DIAG_ROWS, RunTraces, RunView, pooled_trace
from .update_rules import Minibatches, make_rule, mala_log_accept

# Live convergence flags (R̂, λ̂ drift) are recomputed at most this often: ArviZ takes ~5 ms on
# 8 × 2000 trace points, which on the 1-parameter toys would be ~5× the SGLD work of a report.
LIVE_CONVERGENCE_SECONDS = 1.0


class CancelToken(Protocol):
    def is_set(self) -> bool: ...


def chain_seeds(seed: int, chains: int) -> list[int]:
    """Independent, non-overlapping 63-bit seeds per chain, spawned from one run seed."""
    children = np.random.SeedSequence(seed).spawn(chains)
    return [int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in children]


class SGLDRun:
    """Iterate to run the chains (yields Progress); then read `.result`. `view()` between
    iterations gives a picklable snapshot of the traces for a live page.

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
        self.init_loss: float | None = None
        self.step_done, self.last_progress, self.path = 0, None, ""
        self.stopped = False

    @property
    def device_name(self) -> str:
        return device_name(self.device)

    def _setup(self):
        cfg, task, dev = self.cfg, self.task, self.device
        model = copy.deepcopy(task.model).to(dev).eval()
        self.x, self.y = task.x.to(dev), task.y.to(dev)
        self.init_loss = full_loss(model, self.x, self.y, task.loss_fn)
        self.wstar_check, self.wstar_flags = None, []  # checked after the first record (_check_wstar)
        flat = Flat(model)
        self.model, self.flat = model, flat  # w* on the device: the step-bias check's Hessian at the end
        self.w_star = flat.flatten(model).to(dev)
        self.W = self.w_star.repeat(cfg.chains, 1)
        self.noise = torch.empty_like(self.W)
        self.grad = choose_grad(model, flat, self.W, self.x, self.y, task.loss_fn, cfg.vectorize)
        self.path = self.grad.name
        self.rule = make_rule(cfg, self.nbeta, self.w_star)
        self.rule.init_state(self.W)
        self.stats = ChainStats(cfg, self.init_loss, self.nbeta, int(self.w_star.numel()))
        self.traces = RunTraces(cfg.chains, cfg.max_trace_points)
        self.live_convergence, self.live_convergence_at = [], -float("inf")
        self.stepper = None
        if dev.type == "cuda" and isinstance(self.grad, VmapGrad):
            self._setup_device_stepper()
        else:
            self.gens = [torch.Generator(device=dev).manual_seed(s) for s in chain_seeds(cfg.seed, cfg.chains)]
            self.batches = Minibatches(task.n, cfg.batch_size, self.gens)

    def _setup_device_stepper(self):
        """GPU: losses stay on the device between records; the step replays a CUDA graph unless
        LLC_CUDA_GRAPH=0 or the model cannot be captured (then the same step runs eagerly)."""
        self.stepper = DeviceStepper(self, window=self.cfg.report_every + 1)
        self.noise = self.stepper.noise
        mode = self.stepper.try_capture() if os.environ.get("LLC_CUDA_GRAPH", "1") != "0" else "eager"
        self.path = f"{self.grad.name}/{mode}"

    @property
    def chain_weights(self) -> torch.Tensor:
        """Current flat weights of every chain, (C, d); a copy."""
        return self.W.detach().clone()

    def __iter__(self) -> Iterator[Progress]:
        self._setup()
        cfg, stats = self.cfg, self.stats
        start = time.perf_counter()
        window_steps, window_losses = [], []
        step = 0
        for step in range(1, cfg.total_steps + 1):
            if self.cancel is not None and self.cancel.is_set():
                step -= 1
                break
            for done, losses in self._advance(step, diag=cfg.diag_every > 0 and step % cfg.diag_every == 0):
                self._record(done, losses)
                window_steps.append(done)
                window_losses.append(losses)
            if self._reports(step) or not stats.alive.any():
                self.last_progress = progress_record(stats, cfg, step, window_steps, window_losses)
                self._add_live_convergence(self.last_progress)
                yield self.last_progress
                window_steps, window_losses = [], []
                self._check_wstar()
            if not stats.alive.any():
                break
        if self.stepper is not None and self.stepper.slot:  # cancelled between records (GPU)
            window = self.stepper.drain()
            for j in range(window.shape[1]):
                self._record(step - window.shape[1] + 1 + j, window[:, j])
        seconds = time.perf_counter() - start
        # Stopped short by its cancel flag: the result is partial, and Stop should not wait for checks.
        self.stopped = self.cancel is not None and self.cancel.is_set() and step < cfg.total_steps
        if not self.stopped:
            self._check_wstar()  # done after the first record already; this keeps the result's promise
        self.result = assemble_result(self, step, seconds)

    def _check_wstar(self) -> None:
        """Is w* a minimum at all? (llc_core/wstar.py). Done once, right after the first record, not in
        the setup: it is a full-data gradient and curvature (0.32 s of the 0.45 s before the MNIST-1D
        CNN's first record on one core), and a live page should draw the first point without it.
        So the flag shows from the second record on, and always in the result. self.model still
        holds w*: the chains live in self.W."""
        if self.wstar_check is None:
            task = self.task
            self.wstar_check = wstar.check(self.model, self.x, self.y, task.loss_fn, self.nbeta, self.cfg.gamma,
                                           task.info)
            self.wstar_flags = wstar.flags(self.wstar_check)

    def _add_live_convergence(self, progress: Progress) -> None:
        """R̂ and λ̂-drift flags on the trace so far, recomputed at most every
        LIVE_CONVERGENCE_SECONDS (ArviZ takes ~5 ms on 8 × 2000 points)."""
        if time.monotonic() - self.live_convergence_at > LIVE_CONVERGENCE_SECONDS:
            loss = self.traces.loss
            conv = cv.of_trace(loss.steps, loss.values, self.cfg.burnin, self.stats.alive, self.nbeta,
                               self.init_loss)
            self.live_convergence, self.live_convergence_at = cv.flags(conv, final=False), time.monotonic()
        progress.flags = progress.flags + self.live_convergence + self.wstar_flags
        progress.status = dg.status_of(progress.flags)

    def _reports(self, step: int) -> bool:
        # Also after the very first step: a live page then has something to draw at once.
        return step == 1 or step % self.cfg.report_every == 0 or step == self.cfg.total_steps

    def _advance(self, step: int, diag: bool) -> list:
        """Take step `step`; return the (step, losses) pairs now known: this one on the CPU path,
        on the GPU those since the last record, fetched at a record or diagnostics step."""
        if self.stepper is None:
            return [(step, self._step(diag))]
        diagnostics = self.stepper.step(diag)
        if diagnostics is not None:
            self._add_diagnostics(diagnostics)
        if not (diag or self._reports(step)):
            return []
        window = self.stepper.drain()
        first = step - window.shape[1] + 1
        return [(first + j, window[:, j]) for j in range(window.shape[1])]

    def run(self, on_progress: Callable[[Progress], None] | None = None) -> LLCResult:
        for progress in self:
            if on_progress is not None:
                on_progress(progress)
        return self.result

    def _step(self, diag: bool) -> np.ndarray:
        W, rule = self.W, self.rule
        xb, yb = self._minibatch(self.batches.next())
        loss, g = self.grad(W, xb, yb, self.stats.alive)
        for row, gen in zip(self.noise, self.gens):
            row.normal_(generator=gen)  # in place: no allocation of a (C, d) tensor per step
        P = rule.precondition(g)
        if diag:
            drift = rule.grad_potential(W, g)
            W_old, U_old = W.clone(), self._potential(loss, W)
        rule.apply(W, g, self.noise, P)
        losses = loss.cpu().numpy().astype(float)
        if diag:
            self._diagnose(W_old, U_old, drift, P, xb, yb)
        return losses

    def _minibatch(self, idx: torch.Tensor) -> tuple:
        """Rows idx (C, m) of x and y as (C, m, ...) tensors. index_select on the flat indices:
        the same rows as x[idx], ~3× faster on the CPU (advanced indexing's general kernel)."""
        flat = idx.reshape(-1)
        return tuple(t.index_select(0, flat).view(*idx.shape, *t.shape[1:]) for t in (self.x, self.y))

    def _potential(self, loss, W):
        """U(w) = nβ·L_m(w) + γ/2·‖w − w*‖² per chain, in float64."""
        dist2 = ((W - self.w_star) ** 2).sum(dim=1).double()
        return self.nbeta * loss.double() + 0.5 * self.cfg.gamma * dist2

    def _diagnose(self, W_old, U_old, drift_old, P, xb, yb):
        self._add_diagnostics(self.diag_tensors(W_old, U_old, drift_old, P, xb, yb))

    def _add_diagnostics(self, tensors) -> None:
        accept, distance, drift, noise = (t.cpu().numpy() for t in tensors)
        self.stats.add_diagnostics(accept, distance.astype(float), drift.astype(float), noise.astype(float))

    def diag_tensors(self, W_old, U_old, drift_old, P, xb, yb) -> tuple:
        """On the device: MALA acceptance of the step just taken (same minibatch and P at both
        ends), ‖w − w*‖, and the drift ‖(ε/2)·P·∇U‖ and noise ‖σ√ε·P^½·ξ‖ norms of the step."""
        cfg, W = self.cfg, self.W
        loss_new, g_new = self.grad(W, xb, yb, self.stats.alive)
        drift_new = g_new.mul_(self.nbeta).add_(W - self.w_star, alpha=cfg.gamma)
        log_alpha = mala_log_accept(W_old, W, drift_old, drift_new, U_old, self._potential(loss_new, W), cfg, P)
        drift = drift_old if P is None else P * drift_old
        noise = self.noise if P is None else P.sqrt() * self.noise
        return (torch.exp(torch.clamp(log_alpha, max=0.0)), (W - self.w_star).norm(dim=1),
                cfg.epsilon / 2 * drift.norm(dim=1), self.rule.noise_coef * noise.norm(dim=1))

    def _record(self, step: int, losses: np.ndarray):
        stats, traces = self.stats, self.traces
        blown = stats.blown(losses)
        if blown.any():
            stats.mark_diverged(step, blown)
            self.W[torch.as_tensor(blown, device=self.W.device)] = self.w_star
        stats.add_draw(step, losses)
        traces.loss.add(step, stats.masked(losses))
        traces.lam.add(step, stats.lambda_chain)
        if self.cfg.diag_every and step % self.cfg.diag_every == 0:
            traces.diag.add(step, stats.diag_row())

    def view(self) -> RunView:
        """A numpy-only, picklable snapshot of the traces so far; call it between iterations in
        the run's thread (before the first one it is empty)."""
        cfg, C = self.cfg, self.cfg.chains
        started = self.init_loss is not None and hasattr(self, "traces")
        lam = self.traces.lam.values if started else np.zeros((C, 0))
        diag_rows = self.traces.diag_rows() if started else {r: np.zeros((C, 0)) for r in DIAG_ROWS}
        return RunView(
            step=self.last_progress.step if self.last_progress else 0, total_steps=cfg.total_steps,
            burnin=cfg.burnin, chains=C, init_loss=self.init_loss, nbeta=self.nbeta,
            nbeta_rule=self.nbeta_rule, device=self.device_name, sampler=cfg.sampler, path=self.path,
            steps=self.traces.loss.steps if started else np.zeros(0, dtype=np.int64),
            loss=self.traces.loss.values - self.init_loss if started else np.zeros((C, 0)),
            lam=lam, pooled=pooled_trace(lam),
            diag_steps=self.traces.diag.steps if started else np.zeros(0, dtype=np.int64),
            diag=diag_rows, diverged_steps=dict(self.stats.diverged_steps) if started else {},
            progress=self.last_progress,
        )


def estimate_llc(task: LLCTask, config: SGLDConfig | None = None, cancel: CancelToken | None = None,
                 on_progress: Callable[[Progress], None] | None = None) -> LLCResult:
    """Run the chains to the end (or until cancelled) and return the estimate."""
    config = config or task.defaults
    return SGLDRun(task, config, cancel).run(on_progress)
