"""Calibration: recommend settings from a sweep (`sweep.py`), and auto-calibrate.

`recommend` reads a finished (or partial) sweep and picks (ε, γ, nβ) with the reasons, or says
why it cannot; `auto_calibrate` runs a pilot sweep, recommends and confirms at full length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .config import SGLDConfig
from .sampler import SGLDRun
from .sweep import DISQUALIFYING, Cell, SweepGrid, mean_mala, sweep
from .task import LLCTask

# Two neighbouring cells "agree" when their λ̂ differ by at most this fraction. Discretisation
# bias grows roughly linearly in ε, so if λ̂(ε) ≈ λ̂(3ε) within 10%, the bias at ε is ≲ 5%.
AGREE_TOL = 0.10
MALA_TARGET = 0.9


def pilot_config(task: LLCTask, base: SGLDConfig | None = None) -> SGLDConfig:
    """Short chains for a sweep: a fifth of the task's default run, at least 100 draws."""
    base = base or task.defaults
    return base.replace(chains=max(2, min(8, base.chains // 4)), draws=max(100, base.draws // 5),
                        burnin=base.burnin // 5)


def half_decades(center: float, count: int) -> tuple[float, ...]:
    """`count` consecutive values of 1, 3, 10, 30, … (×10^k) centred on the one nearest `center`;
    round numbers that a slider grid can hold exactly."""
    ladder = [m * 10.0**e for e in range(-12, 8) for m in (1, 3)]
    mid = min(range(len(ladder)), key=lambda i: abs(math.log(ladder[i] / center)))
    lo = mid - count // 2
    return tuple(float(f"{v:.3g}") for v in ladder[lo : lo + count])


def pilot_grid(task: LLCTask, base: SGLDConfig | None = None) -> SweepGrid:
    """ε over two decades around the task's default in half-decades; γ at 1/10, 1 and 10× its default
    (γ = 0 is never swept: without localization nothing holds the chains near w*)."""
    base = base or task.defaults
    gamma = half_decades(base.gamma, 1)[0] if base.gamma > 0 else 1.0
    return SweepGrid(half_decades(base.epsilon, 5), (gamma / 10, gamma, gamma * 10), (1.0,))


@dataclass
class Recommendation:
    found: bool
    epsilon: float | None = None
    gamma: float | None = None
    nbeta_multiplier: float | None = None
    nbeta: float | None = None
    lambda_hat: float | None = None  # the pilot cell's
    reasons: list[str] = field(default_factory=list)
    attempts: list = field(default_factory=list)  # full-length confirmation runs (Attempt)
    confirmed: bool = False


def _agree(a: float, b: float) -> bool:
    return abs(a - b) <= AGREE_TOL * max(abs(a), abs(b))


def recommend(cells: list[Cell]) -> Recommendation:
    """Pick (ε, γ, nβ) from a sweep, preferring nβ×1, then the γ whose λ̂ sits on a plateau
    across neighbouring γ, then the largest ε that is stable and unchanged at the next larger ε."""
    usable = [c for c in cells if not c.disqualified and c.lambda_hat > 0]
    if not usable:
        worst = sorted({c.verdict for c in cells}) or ["no cells"]
        return Recommendation(False, reasons=[
            f"No stable cell: every cell was {', '.join(worst)}. Widen the ε range downwards, raise γ, "
            f"or check that the model is trained to a minimum (negative λ̂ everywhere means it is not)."])
    mults = sorted({c.nbeta_multiplier for c in usable}, key=lambda m: (abs(math.log(m)), m))
    mult = mults[0]
    layer = [c for c in cells if c.nbeta_multiplier == mult]
    candidates = [_best_epsilon(layer, g) for g in sorted({c.gamma for c in layer})]
    candidates = [c for c in candidates if c is not None]
    by_gamma = {c[0].gamma: c for c in candidates}
    gammas = sorted(by_gamma)
    scored = []
    for i, g in enumerate(gammas):
        cell, plateau = by_gamma[g]
        neighbours = [by_gamma[gammas[j]][0] for j in (i - 1, i + 1) if 0 <= j < len(gammas)]
        agrees = [n for n in neighbours if _agree(n.lambda_hat, cell.lambda_hat)]
        # Plateau in γ first (its centre before its edge), then a plateau in ε, then the
        # larger ε, then MALA nearest 0.9.
        scored.append(((len(agrees), plateau, cell.epsilon, -abs(_mala_or(cell) - MALA_TARGET)),
                       cell, plateau, agrees))
    _, cell, plateau, agrees = max(scored, key=lambda s: s[0])
    return Recommendation(True, cell.epsilon, cell.gamma, cell.nbeta_multiplier, cell.nbeta, cell.lambda_hat,
                          _reasons(cell, plateau, agrees, mult, cells))


def _mala_or(cell: Cell) -> float:
    return MALA_TARGET if math.isnan(cell.mala) else cell.mala


def _best_epsilon(layer: list[Cell], gamma: float):
    """(cell, on_plateau) for one γ: the largest usable ε whose λ̂ the next larger ε (also usable)
    reproduces; else one step below the largest usable ε (λ̂ still rises with ε there, so the
    edge of stability carries discretisation bias: on dln:4,3,4:r1 the edge, MALA 0.89, gave
    +11% and one step below +0.4%). None if no ε is usable at this γ."""
    row = sorted((c for c in layer if c.gamma == gamma), key=lambda c: c.epsilon)
    ok = [not c.disqualified and c.lambda_hat > 0 for c in row]
    plateau = [row[i] for i in range(len(row) - 1)
               if ok[i] and ok[i + 1] and _agree(row[i].lambda_hat, row[i + 1].lambda_hat)]
    if plateau:
        return plateau[-1], True
    usable = [c for c, good in zip(row, ok) if good]
    if not usable:
        return None
    return (usable[-2] if len(usable) > 1 else usable[-1]), False


def _reasons(cell: Cell, plateau: bool, agrees: list[Cell], mult: float, cells: list[Cell]) -> list[str]:
    larger = [c for c in cells if c.gamma == cell.gamma and c.nbeta_multiplier == mult and c.epsilon > cell.epsilon]
    reasons = []
    if plateau:
        reasons.append(f"ε = {cell.epsilon:.3g} is the largest step whose λ̂ ({cell.lambda_hat:.4g}) the next "
                       f"larger ε reproduces within {AGREE_TOL:.0%}: its discretisation bias is small.")
    else:
        reasons.append(f"No two neighbouring ε agreed within {AGREE_TOL:.0%} (λ̂ still changes with ε), so "
                       f"ε = {cell.epsilon:.3g} is one step below the largest stable step: the edge of stability "
                       f"carries discretisation bias.")
    bad_above = sorted({c.verdict for c in larger if c.verdict != "ok"})
    if bad_above:
        reasons.append(f"Larger ε at this γ were {', '.join(bad_above)}.")
    if not math.isnan(cell.mala):
        reasons.append(f"MALA acceptance {cell.mala:.2f} (≈ {MALA_TARGET} is the sweet spot; below "
                       f"0.8 the step is too large).")
    reasons.append("No initial spike, no divergence, trace stationary, λ̂ positive.")
    if agrees:
        other = ", ".join(f"γ = {c.gamma:g} (λ̂ {c.lambda_hat:.4g})" for c in agrees)
        reasons.append(f"γ = {cell.gamma:g} sits on a plateau: λ̂ agrees within {AGREE_TOL:.0%} with {other}.")
    else:
        reasons.append(f"γ = {cell.gamma:g}: no neighbouring γ agreed within {AGREE_TOL:.0%}; λ̂ depends on "
                       f"the localization here, so report γ with the estimate.")
    reasons.append(f"nβ = {cell.nbeta:.4g} ({mult:g} × n/log n)" + (
        ", the standard WBIC temperature." if mult == 1 else ": n/log n itself had no stable cell."))
    return reasons


# A pilot's chains are short, and on slowly mixing posteriors they have not spread out yet:
# they see a flatter landscape than the full run and over-rate large steps (on dln:5,5,5:r0 the
# pilot measured MALA 0.96 at ε·nβ = 0.47, where the full run's λ̂ was 24% high). So the
# recommendation is confirmed with one full-length run, stepping ε down until that run is clean.
CONFIRM_TRIES = 3
CONFIRM_FAILS = DISQUALIFYING + ("high_chain_variance",)


@dataclass
class Attempt:
    epsilon: float
    lambda_hat: float
    lambda_std: float
    status: str
    flags: list[str]
    mala: float
    completed: bool


def full_config(task: LLCTask, rec: Recommendation, epsilon: float) -> SGLDConfig:
    """The task's default run length at the recommended settings."""
    return task.defaults.replace(epsilon=epsilon, gamma=rec.gamma, nbeta=rec.nbeta)


def confirm(task: LLCTask, rec: Recommendation, cells: list[Cell], cancel=None, on_progress=None,
            on_attempt=None) -> Recommendation:
    """Run the recommendation at full length; if flagged, try the next smaller swept ε (same γ)."""
    smaller = sorted({c.epsilon for c in cells if c.gamma == rec.gamma and c.epsilon < rec.epsilon
                      and not c.disqualified and c.lambda_hat > 0}, reverse=True)
    for epsilon in [rec.epsilon, *smaller][:CONFIRM_TRIES]:
        if cancel is not None and cancel.is_set():
            break
        result = SGLDRun(task, full_config(task, rec, epsilon), cancel=cancel).run(on_progress)
        attempt = Attempt(epsilon, result.lambda_hat, result.lambda_hat_std, result.status,
                          [f.code for f in result.warnings], mean_mala(result), result.completed)
        rec.attempts.append(attempt)
        if on_attempt is not None:
            on_attempt(attempt)
        if attempt.completed and not set(attempt.flags) & set(CONFIRM_FAILS) and attempt.lambda_hat > 0:
            if epsilon != rec.epsilon:
                rec.reasons.insert(0, f"The full-length run at the pilot's ε = {rec.epsilon:.3g} was flagged "
                                      f"({', '.join(rec.attempts[0].flags) or rec.attempts[0].status}), so ε was "
                                      f"stepped down to {epsilon:.3g}, where it is clean.")
            rec.epsilon, rec.confirmed = epsilon, True
            rec.reasons.append(f"Confirmed with a full-length run at these settings: λ̂ = {attempt.lambda_hat:.4g} "
                               f"± {attempt.lambda_std:.2g}, status {attempt.status}"
                               + (f", MALA {attempt.mala:.2f}." if not math.isnan(attempt.mala) else "."))
            return rec
    if rec.attempts and not (cancel is not None and cancel.is_set()):
        rec.reasons.append("No full-length run was clean (" + "; ".join(
            f"ε {a.epsilon:.3g}: {', '.join(a.flags) or a.status}" for a in rec.attempts)
            + "): treat these settings as a starting point and sweep smaller ε or larger γ.")
    return rec


def auto_calibrate(task: LLCTask, cancel=None, on_cell=None, on_progress=None, on_attempt=None) -> Recommendation:
    """Pilot sweep around the task's defaults, recommendation, full-length confirmation."""
    cells = []
    for cell in sweep(task, pilot_grid(task), pilot_config(task), cancel, on_progress):
        cells.append(cell)
        if on_cell is not None:
            on_cell(cell)
    if cancel is not None and cancel.is_set():
        return Recommendation(False, reasons=[f"Stopped after {len(cells)} pilot cells: no recommendation."])
    rec = recommend(cells)
    return confirm(task, rec, cells, cancel, on_progress, on_attempt) if rec.found else rec
