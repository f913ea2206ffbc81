"""What is measured about the chains while they run: draw statistics (running λ̂, block means,
draws below L_n(w*)), divergence, and the latest MALA / distance / drift / noise readings.
All numpy, per chain; the sampler feeds it one step's losses at a time."""

from __future__ import annotations

import numpy as np

from . import diagnostics as dg
from .config import SGLDConfig


class ChainStats:
    def __init__(self, cfg: SGLDConfig, init_loss: float, nbeta: float, num_params: int):
        C, nb = cfg.chains, dg.NUM_BLOCKS
        self.cfg, self.init_loss, self.nbeta, self.num_params = cfg, init_loss, nbeta, num_params
        self.alive = np.ones(C, dtype=bool)
        self.all_alive = True
        self.diverged_at: list[int] = []  # step of each divergence, in the order they happened
        self.diverged_steps: dict[int, int] = {}  # chain -> step it blew up
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
        self.diverge_limit = init_loss + dg.DIVERGENCE_LOSS_FACTOR * (1 + abs(init_loss))

    def blown(self, losses: np.ndarray) -> np.ndarray:
        """Chains still alive whose loss this step is non-finite or past the divergence limit."""
        healthy = np.isfinite(losses) & (losses < self.diverge_limit)
        return ~healthy & self.alive

    def mark_diverged(self, step: int, blown: np.ndarray) -> None:
        self.alive &= ~blown
        self.all_alive = False
        self.diverged_at += [step] * int(blown.sum())
        for c in np.flatnonzero(blown):
            self.diverged_steps[int(c)] = step

    def add_draw(self, step: int, losses: np.ndarray) -> None:
        """Count the step's losses as a draw when it is one (past burn-in, on the thinning grid)."""
        cfg = self.cfg
        draw = step - cfg.burnin
        if draw <= 0 or draw % cfg.thin:
            return
        # index with `live` only when a chain has died: masked numpy ops cost ~10 µs each
        live = slice(None) if self.all_alive else self.alive
        value = losses[live]
        block = min(dg.NUM_BLOCKS - 1, (draw // cfg.thin - 1) * dg.NUM_BLOCKS // cfg.draws)
        self.draw_sum[live] += value
        self.draws_done[live] += 1
        self.block_sums[live, block] += value
        self.block_counts[live, block] += 1
        self.below[live] += value < self.init_loss

    def masked(self, losses: np.ndarray) -> np.ndarray:
        return losses if self.all_alive else np.where(self.alive, losses, np.nan)

    def add_diagnostics(self, accept, distance, drift_norm, noise_norm) -> None:
        ok = self.alive & np.isfinite(accept)
        self.mala_sum[ok] += accept[ok]
        self.mala_count[ok] += 1
        self.distance, self.drift_norm, self.noise_norm = distance, drift_norm, noise_norm

    def diag_row(self) -> np.ndarray:
        """Current values in trace.DIAG_ROWS order, stacked chain-major per row."""
        return np.concatenate([self.mala(), self.distance, self.drift_norm, self.noise_norm])

    def lambda_chain(self) -> np.ndarray:
        lam = np.full(len(self.alive), np.nan)
        ok = self.alive & (self.draws_done > 0)
        lam[ok] = self.nbeta * (self.draw_sum[ok] / self.draws_done[ok] - self.init_loss)
        return lam

    def mala(self) -> np.ndarray:
        mala = np.full(len(self.alive), np.nan)
        ok = self.mala_count > 0
        mala[ok] = self.mala_sum[ok] / self.mala_count[ok]
        return mala

    def state(self) -> dg.RunState:
        return dg.RunState(
            init_loss=self.init_loss, nbeta=self.nbeta, noise_scale=self.cfg.noise_scale,
            draws_total=self.cfg.draws, draws_done=self.draws_done, lambda_chain=self.lambda_chain(),
            alive=self.alive.copy(), diverged_at=list(self.diverged_at), block_sums=self.block_sums,
            block_counts=self.block_counts, below_init=self.below, mala=self.mala(),
            num_params=self.num_params,
        )
