"""The SG-MCMC update rules (config.SAMPLERS), apart from everything that is measured.

With U(w) = nβ·L_m(w) + γ/2·‖w − w*‖² (so ∇U = nβ·∇L_m + γ(w − w*)), every rule is

    w ← w − (ε/2)·P·∇U(w) + σ·√ε·P^½·ξ,    ξ ~ N(0, I)

with a diagonal preconditioner P: P = I for "sgld" (Lau et al. 2023), and for "rmsprop_sgld"
(devinterp's SGMCMC.rmsprop_sgld; Hitchcock & Hoogland 2025) P = 1/(√V + δ), V the running
average V ← αV + (1−α)·(∇L_m)² of the squared minibatch loss gradient, updated before the step.
"""

from __future__ import annotations

import math

import torch

from .config import SGLDConfig


class SGLDRule:
    """Plain SGLD: P = I."""

    name = "sgld"

    def __init__(self, cfg: SGLDConfig, nbeta: float, w_star: torch.Tensor):
        self.cfg, self.nbeta, self.w_star = cfg, nbeta, w_star
        self.noise_coef = cfg.noise_scale * math.sqrt(cfg.epsilon)

    def init_state(self, W: torch.Tensor) -> None:
        """Allocate the rule's running state (before any step, so a CUDA graph can capture it)."""

    def precondition(self, g: torch.Tensor) -> torch.Tensor | None:
        """The step's P from this step's loss gradient; None means the identity."""
        return None

    def precond_sqrt(self) -> torch.Tensor | None:
        """P^½ per chain as it stands now, (C, d); None for the identity."""
        return None

    def grad_potential(self, W: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """∇U(w) = nβ·∇L_m + γ(w − w*) per chain (a new tensor)."""
        return g * self.nbeta + (W - self.w_star) * self.cfg.gamma

    def apply(self, W: torch.Tensor, g: torch.Tensor, noise: torch.Tensor, P) -> None:
        """w + (ε/2)(−nβ·g − γ(w − w*)) + σ√ε·ξ, as three in-place passes over W."""
        cfg = self.cfg
        if cfg.gamma:
            W.lerp_(self.w_star, cfg.epsilon * cfg.gamma / 2)
        W.add_(g, alpha=-cfg.epsilon * self.nbeta / 2)
        W.add_(noise, alpha=self.noise_coef)


class RMSPropSGLDRule(SGLDRule):
    """SGLD preconditioned by RMSProp's running average of squared gradients."""

    name = "rmsprop_sgld"

    def __init__(self, cfg: SGLDConfig, nbeta: float, w_star: torch.Tensor):
        super().__init__(cfg, nbeta, w_star)
        self.square_avg = None  # V, (C, d); starts at 0 like devinterp's, so step 1 has V = (1−α)g²

    def init_state(self, W: torch.Tensor) -> None:
        self.square_avg = torch.zeros_like(W)

    def precondition(self, g: torch.Tensor) -> torch.Tensor:
        alpha = self.cfg.rmsprop_alpha
        self.square_avg.mul_(alpha).addcmul_(g, g, value=1 - alpha)
        return 1.0 / (self.square_avg.sqrt() + self.cfg.rmsprop_eps)

    def precond_sqrt(self) -> torch.Tensor | None:
        return None if self.square_avg is None else (self.square_avg.sqrt() + self.cfg.rmsprop_eps).rsqrt()

    def apply(self, W: torch.Tensor, g: torch.Tensor, noise: torch.Tensor, P) -> None:
        step = self.grad_potential(W, g).mul_(P).mul_(-self.cfg.epsilon / 2)
        W.add_(step).addcmul_(P.sqrt(), noise, value=self.noise_coef)


RULES = {rule.name: rule for rule in (SGLDRule, RMSPropSGLDRule)}


def make_rule(cfg: SGLDConfig, nbeta: float, w_star: torch.Tensor) -> SGLDRule:
    return RULES[cfg.sampler](cfg, nbeta, w_star)


def mala_log_accept(W_old, W_new, drift_old, drift_new, U_old, U_new, cfg: SGLDConfig, P) -> torch.Tensor:
    """log of the Metropolis–Hastings acceptance of the step W_old → W_new, per chain (float64).

    The proposal is q(w'|w) = N(w − (ε/2)·P·∇U(w), σ²·ε·P). P is held fixed across the step
    (the P the step used, for the reverse move too): RMSProp's P changes slowly and the reverse
    move's P would need the unobserved next V. With P fixed, the log-determinants cancel and
    log q(w'|w) = −‖w' − w + (ε/2)P∇U(w)‖²_{P⁻¹} / (2σ²ε) + const."""
    var = 2 * cfg.epsilon * max(cfg.noise_scale, 1e-12) ** 2
    fwd = (W_new - W_old + cfg.epsilon / 2 * (drift_old if P is None else P * drift_old)) ** 2
    bwd = (W_old - W_new + cfg.epsilon / 2 * (drift_new if P is None else P * drift_new)) ** 2
    if P is not None:
        fwd, bwd = fwd / P, bwd / P
    return (U_old - U_new) + (fwd.sum(dim=1).double() - bwd.sum(dim=1).double()) / var


class Minibatches:
    """Per-chain epochs of shuffled indices, each chain from its own generator. Every chain draws
    m indices per step, so all of them reach the end of an epoch together: one (C, n) tensor of
    permutations and one position serve them all."""

    def __init__(self, n: int, batch_size: int, generators: list):
        self.n, self.m, self.gens = n, batch_size, generators
        self.perms: torch.Tensor | None = None
        self.pos = n

    def next(self) -> torch.Tensor:
        """(C, m) indices into the training set."""
        if self.pos + self.m > self.n:
            self.perms = torch.stack([torch.randperm(self.n, generator=g, device=g.device) for g in self.gens])
            self.pos = 0
        rows = self.perms[:, self.pos : self.pos + self.m]
        self.pos += self.m
        return rows
