"""Calibration: recommend settings from a sweep (`sweep.py`), and auto-calibrate.

`recommend` reads a finished (or partial) sweep and picks (ε, γ, nβ) with the reasons, or says
why it cannot; `auto_calibrate` runs a pilot sweep, recommends and confirms at full length.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from .config import SAMPLERS, SGLDConfig, default_nbeta
from .limits import MAX_BURNIN, MAX_DRAWS, MAX_EPSILON
from .sampler import SGLDRun
from .sweep import Cell, SweepGrid, cell_config, mean_mala, sweep
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
    lo = max(0, min(mid - count // 2, len(ladder) - count))  # near either end: the count nearest it
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
    sampler: str = "sgld"
    config: SGLDConfig | None = None  # the full recommended settings (the run they come from)
    lambda_hat_se: float | None = None
    lambda_range: tuple[float, float] | None = None  # over every run auto-calibrate made
    status: str = "warning"  # "ok" only when confirmed
    warnings: list = field(default_factory=list)  # [{code, message, fix}]
    seconds: float = 0.0
    budget_seconds: float | None = None
    reused: int = 0  # pilot cells taken from cells run before (auto_calibrate's known_cells)

    def to_dict(self, task=None) -> dict:
        """The JSON object of `python -m llc_core calibrate --json`."""
        keys = ("epsilon", "gamma", "nbeta", "sampler", "chains", "draws", "burnin", "thin", "batch_size",
                "noise_scale", "seed", "device")
        settings = dict.fromkeys(keys)  # nothing found: every setting null, none recommended
        if self.config is not None:
            settings = {k: getattr(self.config, k) for k in keys} | {"nbeta": self.nbeta}
        return _finite({
            "found": self.found, "confirmed": self.confirmed, "recommended": settings,
            "lambda_hat": self.lambda_hat, "lambda_hat_se": self.lambda_hat_se, "status": self.status,
            "warnings": self.warnings, "true_lambda": getattr(task, "true_lambda", None),
            "target_lambda": getattr(task, "target_lambda", None), "reasons": self.reasons,
            "lambda_range": list(self.lambda_range) if self.lambda_range else None,
            "runs": [a.to_dict() for a in self.attempts], "seconds": self.seconds,
            "budget_seconds": self.budget_seconds})


def _finite(value):
    """NaN/inf → None, recursively: JSON has no NaN."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _agree(a: float, b: float) -> bool:
    return abs(a - b) <= AGREE_TOL * max(abs(a), abs(b))


def recommend(cells: list[Cell]) -> Recommendation:
    """Pick (ε, γ, nβ) from a sweep's unflagged cells, preferring nβ×1, then the γ whose λ̂ sits on a plateau
    across neighbouring γ, then the largest ε that is stable and unchanged at the next larger ε."""
    usable = [c for c in cells if is_clean(c)]  # never a flagged cell, high_mala included
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
    ok = [is_clean(c) for c in row]
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


# -- auto-calibrate: bracket ε adaptively, then confirm at full length ------------------------
#
# Why the old procedure (a fixed 5 ε × 3 γ pilot around the default, then one confirmation)
# failed on shapes nobody tuned for (issue 10):
# - its grid spanned two decades around the default rule, but a 65k-parameter DLN needs ε a few
#   decades lower (Furman & Lau 2024 used 1e-7 … 5e-9): the right ε was never tried;
# - short pilot chains have not spread out yet, see a flatter landscape and over-rate large steps
#   (dln:5,5,5:r0: pilot MALA 0.96 at ε·nβ = 0.47, full run +24%): pilot λ̂ can only *bracket*;
# - it accepted cells flagged `high_mala` (not "disqualifying"), so it recommended steps too small
#   for the chain to cross the flat directions — the recommendation disqualified itself.
# So: walk the ε ladder up to the stability edge and down as many decades as it takes until two
# neighbouring clean cells agree; confirm at full length; grow the chains when a run is too short,
# step ε down when it is too large; recommend only settings whose own run carried no flag at all.

DEFAULT_BUDGET_SECONDS = 600.0
# The ε ladder runs in half decades (1, 3, 10, …): λ̂'s discretisation bias is ~linear in ε, so a
# factor ~3 between neighbours makes "they agree within 10%" mean "the bias at the smaller is ≲ 5%".
# It stops at MAX_EPSILON: a rung above it would be refused by the config's validation.
LADDER = tuple(v for e in range(-14, 2) for m in (1, 3) if (v := float(f"{m * 10.0**e:.3g}")) <= MAX_EPSILON)
MAX_UP_STEPS = 4  # the default rules sit ≤ 1 decade below the edge on every toy measured (DLN: ε·nβ 0.15 vs ~1)
MAX_DOWN_DECADES = 6  # 65k-param DLNs need ~3.5 decades below the default (1.7e-5 → 5e-9); 6 leaves room
MAX_PILOT_CELLS = 16
# Pilot chains double (up to 4× pilot_config's fifth of the run) while a cell is too short to judge.
MAX_PILOT_SCALE = 4
# A pilot pair counts as a plateau only where MALA is in this band: below it the step is too large
# (diagnostics.LOW_MALA = 0.8 flags it; 0.85 keeps a margin because short chains over-rate MALA).
MALA_BAND_LOW = 0.85
# Flags that say "ε is too large": step ε down. The others (not_stationary, high_mala,
# high_chain_variance, and any new convergence flag) say "the chains are too short for this ε".
# step_bias is the step's own bias on λ̂ (∝ ε): longer chains never remove it.
TOO_LARGE = ("diverged", "negative", "init_spike", "low_mala", "loss_below_init", "step_bias")
# Full-length runs one rung apart whose λ̂ differ by less than 2 combined standard errors cannot be
# told apart by their own precision (two-sided ~95%).
AGREE_Z = 2.0
MAX_LENGTH_FACTOR = 8  # chains grow ×2 per try up to 8× the task's default length
# The pilot bracket starts no cell after this share of the budget left when it began: the rest is for
# the full-length runs, and a confirmation needs at least four run lengths' worth (L, 2L and the rung
# below at L). Without it, on a 2-core machine where one default-length run of a 24–70-parameter DLN
# took 60–133 s, pilot cells (doubling in length while too short to judge) used all of a 240 s budget
# and not one full-length run started (truth suite, seed 13, 2026-12-07: 4 of 4 cases). It does not stop a
# walk whose cells all said 'ε too large' (`_only_too_large`): there is nothing yet to run at full length.
PILOT_SHARE = 1 / 3
MAX_FULL_RUNS = 8


@dataclass
class Attempt:
    epsilon: float
    lambda_hat: float
    lambda_std: float
    status: str
    flags: list[str]
    mala: float
    completed: bool
    lambda_se: float = math.nan
    config: SGLDConfig | None = None
    warnings: list = field(default_factory=list)  # [{code, message, fix}]
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"epsilon": self.epsilon, "sampler": self.config.sampler if self.config else None,
                "draws": self.config.draws if self.config else None, "lambda_hat": self.lambda_hat,
                "lambda_hat_se": self.lambda_se, "status": self.status, "flags": self.flags,
                "mala": self.mala, "seconds": self.seconds}

    @property
    def clean(self) -> bool:
        return self.completed and self.status == "ok" and not self.flags and self.lambda_hat > 0


# A pilot cell's chains are a fifth of the full length, so their spread across chains is large
# whatever ε is (crossing:1, 8 chains × 400 draws at its default ε: high_chain_variance): for
# *bracketing* only, that flag is tolerated. A recommendation still needs a run with no flag at all.
PILOT_TOLERATED = ("high_chain_variance",)


def brackets(cell: Cell) -> bool:
    """Good enough to bracket ε with: completed, λ̂ > 0, no flag beyond PILOT_TOLERATED."""
    return (cell.completed and cell.status in ("ok", "warning") and cell.lambda_hat > 0
            and set(cell.flags) <= set(PILOT_TOLERATED))


def is_clean(cell: Cell) -> bool:
    """A cell with no flag at all: the only kind auto-calibrate may build a recommendation on."""
    return cell.completed and cell.status == "ok" and not cell.flags and cell.lambda_hat > 0


class Budget:
    """Wall-clock budget, and the chain-steps per second measured so far to predict a run's cost."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds
        self.rate: float | None = None  # chain-steps per second

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def expired(self) -> bool:
        return self.left() <= 0

    def measure(self, chains: int, steps: int, seconds: float) -> None:
        """`steps` SGLD steps of each of `chains` chains took `seconds` (burn-in and thinned-out steps
        included: `steps` counts steps, not draws)."""
        if steps > 0 and seconds > 0:
            self.rate = chains * steps / seconds

    def allows(self, config: SGLDConfig) -> bool:
        if self.rate is None:
            return self.left() > 0
        return config.chains * config.total_steps / self.rate <= self.left()


def ladder_index(epsilon: float) -> int:
    return min(range(len(LADDER)), key=lambda i: abs(math.log(LADDER[i] / epsilon)))


class _StopOrDeadline:
    """A cancel token for auto-calibrate's runs: set when the user stops or the budget's deadline
    passes. The rate forecast (`Budget.allows`) only decides whether to start a run; on a machine
    whose load changes mid-run the forecast is wrong, and this cuts the run at the deadline."""

    def __init__(self, cancel, budget: Budget):
        self.cancel, self.budget = cancel, budget

    def is_set(self) -> bool:
        return (self.cancel is not None and self.cancel.is_set()) or self.budget.expired()


@dataclass
class _Search:
    """What one auto-calibration carries between its phases."""
    task: LLCTask
    base: SGLDConfig  # the task's defaults at the chosen sampler, seed and device
    budget: Budget
    cancel: object = None
    on_cell: object = None
    on_progress: object = None
    on_attempt: object = None
    pilot_scale: int = 1  # pilot length as a multiple of pilot_config's, doubled when too short
    cells: list = field(default_factory=list)  # this sampler's pilot cells
    pilots: list = field(default_factory=list)  # (config, Cell) for every pilot cell, all samplers
    attempts: list = field(default_factory=list)  # every full-length run
    known: list = field(default_factory=list)  # (config, Cell) already run elsewhere (a sweep): reused
    pilot_until: float = math.inf  # time.monotonic() after which the bracket starts no new cell
    pilot_cut: bool = False  # the bracket stopped there (PILOT_SHARE)
    reused: int = 0  # pilot cells taken from `known` instead of being run
    cut: str | None = None  # the full-length run the deadline cut, if one was

    def stopped(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def run_token(self) -> _StopOrDeadline:
        return _StopOrDeadline(self.cancel, self.budget)


def _runs_agree(a: Attempt, b: Attempt) -> bool:
    """Two full-length runs agree when their λ̂ differ by at most AGREE_TOL, or by at most
    AGREE_Z combined standard errors (then the difference is noise, not a dependence on ε)."""
    noise = AGREE_Z * math.hypot(a.lambda_se, b.lambda_se) if math.isfinite(a.lambda_se + b.lambda_se) else 0.0
    return _agree(a.lambda_hat, b.lambda_hat) or abs(a.lambda_hat - b.lambda_hat) <= noise


def _pilot_cell(s: _Search, index: int) -> Cell | None:
    """One ε of the ladder at the current pilot length, through `sweep` (same seed for every cell).
    A cell whose chains were too short to judge (`_too_short`) is rerun with twice the length, and
    the longer pilot is kept for the cells after it."""
    while True:
        cell = _one_cell(s, index)
        if cell is None or not _too_short(cell) or s.pilot_scale >= MAX_PILOT_SCALE:
            return cell
        s.pilot_scale *= 2


def _one_cell(s: _Search, index: int) -> Cell | None:
    base = pilot_config(s.task, s.base)
    pilot = base.replace(draws=min(s.base.draws, base.draws * s.pilot_scale),
                         burnin=min(s.base.burnin, base.burnin * s.pilot_scale))
    if time.monotonic() > s.pilot_until and not s.stopped() and not _only_too_large(s.cells):
        s.pilot_cut = True
        return None
    if s.stopped() or not s.budget.allows(pilot) or len(s.cells) >= MAX_PILOT_CELLS:
        return None
    config = cell_config(pilot, LADDER[index], s.base.gamma, 1.0, s.task.n)
    cell = known_cell(s.known, config)
    if cell is not None:
        s.reused += 1
    else:
        grid = SweepGrid((LADDER[index],), (s.base.gamma,), (1.0,))
        cell = next(iter(sweep(s.task, grid, pilot, s.run_token(), s.on_progress)), None)
        if cell is None:
            return None
        if cell.completed:  # a cell that stopped early (every chain diverged) ran fewer steps than booked
            s.budget.measure(pilot.chains, pilot.total_steps, cell.seconds)
    s.cells.append(cell)
    s.pilots.append((config, cell))
    if s.on_cell is not None:
        s.on_cell(cell)
    return cell


def _same_number(a, b) -> bool:
    return a == b or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9))


def known_cell(known: list, config: SGLDConfig) -> Cell | None:
    """A completed cell of `known` ((config, Cell) pairs) whose run had exactly this config (ε, γ and nβ
    compared to 1e-9, every other setting equal): running it again would give the same numbers."""
    for other, cell in known:
        same = all(_same_number(getattr(other, k), getattr(config, k)) for k in ("epsilon", "gamma", "nbeta"))
        if same and cell.completed and other.replace(epsilon=config.epsilon, gamma=config.gamma,
                                                      nbeta=config.nbeta) == config:
            return cell
    return None


def _only_too_large(cells: list[Cell]) -> bool:
    """Every cell so far says 'ε too large' (or diverged): nothing in the bracket could be run at full
    length, so PILOT_SHARE does not stop the walk down. Large models need ε decades below the default
    rule (issue 10: a 65k-parameter DLN needed ~3.5 decades), and a walk cut at the share there ended
    with budget left and nothing to confirm."""
    return bool(cells) and all(_says_too_large(c) for c in cells)


def _says_too_large(run) -> bool:
    """A pilot cell or full-length run whose flags or status say 'ε too large' (step ε down)."""
    return bool(set(run.flags) & set(TOO_LARGE)) or run.status in ("diverged", "negative")


def _too_short(cell: Cell) -> bool:
    """Flagged, but by no 'ε too large' flag: the chains were too short to judge this ε."""
    return not brackets(cell) and not _says_too_large(cell)


def _plateau(cells: list[Cell]) -> Cell | None:
    """The smaller ε of the largest neighbouring pair of bracketing cells (MALA in band) whose λ̂
    agree: where the bracket's walk down stops (λ̂ no longer changes with ε at pilot length). The
    full-length runs do not start there (`first_candidate`)."""
    row = sorted((c for c in cells if brackets(c) and _mala_or(c) >= MALA_BAND_LOW), key=lambda c: c.epsilon)
    pairs = [(a, b) for a, b in zip(row, row[1:])
             if ladder_index(b.epsilon) - ladder_index(a.epsilon) == 1 and _agree(a.lambda_hat, b.lambda_hat)]
    return pairs[-1][0] if pairs else None


def bracket(s: _Search) -> list[Cell]:
    """Walk the ε ladder from the default: up while cells bracket (to the stability edge), then down
    until two neighbouring cells agree, or a cell is still too short at the longest pilot (smaller
    steps only mix slower), or MAX_DOWN_DECADES. 'ε too large' flags keep the walk going down."""
    start = ladder_index(s.base.epsilon)
    up = start
    while up - start < MAX_UP_STEPS and up < len(LADDER):
        cell = _pilot_cell(s, up)
        if cell is None or not brackets(cell):
            break
        up += 1
    down = start - 1
    while down >= max(0, start - 2 * MAX_DOWN_DECADES) and _plateau(s.cells) is None:
        cell = _pilot_cell(s, down)
        if cell is None or _too_short(cell):
            break
        down -= 1
    return s.cells


def first_candidate(cells: list[Cell]) -> float | None:
    """The ε to confirm first: the next usable ε below the largest usable one (usually one rung
    below; higher when that rung was flagged), or the only usable ε when there is one. Usable: the
    cell brackets with MALA in band; when none is, any bracketing cell.

    Not the smaller ε of an agreeing pair (the rule until 2026-12-07): short pilot chains at small ε
    sit low by about the same amount, so two of them "agree" on a false plateau. dln:5,6,3,4:r2
    (λ = 8), pilots 1e-5 7.94, 3e-6 7.01, 1e-6 7.27: the pair 3e-6/1e-6 agreed and the full run at
    1e-6 gave 7.40 (−7.5%); all ten auto-calibrate misses of the seed-14 truth suite were low. Not
    the largest usable cell either: that is the edge, whose step bias short chains under-rate —
    crossing:2's full runs at its 1e-3 said lambda_drift, then step_bias, and its confirmation no
    longer fitted a 240 s budget. Seed 15 (ten fresh cases, 240 s): within 10% 5/10 (plateau rule),
    6/10 (largest), 6/10 (this rule, and the only one to keep crossing:2's confirmation)."""
    for usable in (lambda c: brackets(c) and _mala_or(c) >= MALA_BAND_LOW, brackets):
        epsilons = sorted({c.epsilon for c in cells if usable(c)})
        if epsilons:
            return epsilons[-2] if len(epsilons) > 1 else epsilons[-1]
    return None


def short_candidate(cells: list[Cell]) -> float | None:
    """When no pilot cell brackets: the largest ε whose cell was only too short (completed, no 'ε too
    large' flag, not negative). Its full-length runs start there and confirm_loop doubles their length
    while they stay too short. Without it the search gave up with budget left: dln:10,20,20,10:r1 at a
    400 s budget stopped after 241 s with nothing recommended (its default ε has low_mala, the rung
    below was still not_stationary at 4× the pilot length). Only each ε's latest cell counts:
    dln:10,20,20,10:r1's 1e-5 was too short at the first pilot length and step-biased at twice it, so
    its full runs start at 3e-6 (too short at 4×), not at 1e-5 (a 150 s full run flagged low_mala)."""
    latest = {c.epsilon: c for c in cells}  # a longer pilot at the same ε comes later and has the last word
    short = [c.epsilon for c in latest.values() if c.completed and _too_short(c)]
    return max(short, default=None)


def full_config(task: LLCTask, base: SGLDConfig, epsilon: float, length: int = 1) -> SGLDConfig:
    """The task's default run length (× `length`) at ε, with the search's sampler, seed and device."""
    return base.replace(epsilon=float(epsilon), draws=min(MAX_DRAWS, base.draws * length),
                        burnin=min(MAX_BURNIN, base.burnin * length))


def _full_run(s: _Search, epsilon: float, length: int) -> Attempt | None:
    config = full_config(s.task, s.base, epsilon, length)
    if s.stopped() or not s.budget.allows(config):
        return None
    result = SGLDRun(s.task, config, cancel=s.run_token()).run(s.on_progress)
    s.budget.measure(config.chains, result.steps_done, result.wall_seconds)
    if not result.completed and s.run_token().is_set():  # cut by Stop or the deadline: not a result
        s.cut = s.cut or (None if s.stopped() else f"ε {config.epsilon:.3g} × {config.draws} draws")
        return None
    attempt = Attempt(epsilon, result.lambda_hat, result.lambda_hat_std, result.status,
                      [f.code for f in result.warnings], mean_mala(result), result.completed,
                      float(result.lambda_hat_se), config, [f.to_dict() for f in result.warnings], result.wall_seconds)
    s.attempts.append(attempt)
    if s.on_attempt is not None:
        s.on_attempt(attempt)
    return attempt


def _next_step(attempt: Attempt, index: int, length: int) -> tuple[int, int]:
    """(ladder index, length factor) to try after a flagged run at (index, length): one ε step down
    for an 'ε too large' flag, twice the chains for any other (too short for this ε)."""
    if _says_too_large(attempt):
        return index - 1, length
    return index, length * 2


def confirm_loop(s: _Search, epsilon: float) -> Attempt | None:
    """Full-length runs from `epsilon` until one setting is confirmed; returns the confirming run,
    else None (budget, MAX_FULL_RUNS or MAX_LENGTH_FACTOR reached). A setting (ε, L) is confirmed
    when three clean runs agree (within AGREE_TOL or AGREE_Z standard errors):
    - (ε, L) itself;
    - (ε, 2L): λ̂ no longer changes with the chain length (exploration) — the run returned;
    - (ε one rung lower, L): λ̂ no longer changes with the step (discretisation).
    The length check is what the rung check cannot see: a smaller ε also explores the flat directions
    more slowly, so on deep rank-1 DLNs (truth suite, seed 12) the rung below agreed while both sat
    13–21% low. dln:2,3,5,2,3:r1 (λ = 2.5) at ε = 3e-6: 2.17 at the default length, 2.48 twice as
    long, 2.49 four times as long. It runs before the rung check so that a budget that stops between
    them leaves the longer run as the (unconfirmed) recommendation.
    A setting that fails a check hands over to the next candidate: a rung lower when λ̂ changes with ε
    or a run says ε is too large, twice the length when λ̂ changes with length or a run is too short."""
    runs: dict[tuple[int, int], Attempt | None] = {}

    def run(i: int, length: int) -> Attempt | None:
        if (i, length) not in runs:
            ok = i >= 0 and length <= MAX_LENGTH_FACTOR and len(runs) < MAX_FULL_RUNS and not _capped(s, i, length)
            runs[(i, length)] = _full_run(s, LADDER[i], length) if ok else None
        return runs[(i, length)]

    index, length = ladder_index(epsilon), 1
    while (here := run(index, length)) is not None:
        if not here.clean:
            index, length = _next_step(here, index, length)
        elif (longer := run(index, length * 2)) is None:
            return None
        elif not longer.clean:  # too short even at 2L, or ε too large where longer chains go
            index, length = _next_step(longer, index, length * 2)
        elif not _runs_agree(here, longer):  # λ̂ still changes with length: 2L is the candidate
            length *= 2
        elif (below := run(index - 1, length)) is None:
            return None
        elif not below.clean:  # too short at the smaller step (slower mixing), or a borderline 'too large' flag
            # there that the clean runs at ε contradict: either way, the rung check again at twice the length
            length *= 2
        elif not _runs_agree(here, below):  # λ̂ still changes with ε: the rung below is the candidate
            index -= 1
        else:
            return longer
    return None


def _capped(s: _Search, index: int, length: int) -> bool:
    """At MAX_DRAWS and MAX_BURNIN, `length` gives the same run as half of it (same config, same seed):
    a length check against it would compare a run with itself."""
    return length > 1 and (full_config(s.task, s.base, LADDER[index], length)
                           == full_config(s.task, s.base, LADDER[index], length // 2))


def samplers_to_try(base: SGLDConfig) -> list[str]:
    """The task's sampler first; RMSProp-preconditioned SGLD next where llc_core has it (it mixes
    along flat directions that plain SGLD's single step size crosses too slowly)."""
    order = [base.sampler] + [name for name in ("rmsprop_sgld",) if name != base.sampler]
    return [name for name in order if name in SAMPLERS]


def auto_calibrate(task: LLCTask, budget_seconds: float = DEFAULT_BUDGET_SECONDS, seed: int = 0,
                   cancel=None, on_cell=None, on_progress=None, on_attempt=None,
                   device: str | None = None, base: SGLDConfig | None = None,
                   known_cells: list | None = None) -> Recommendation:
    """Bracket ε on the ladder, confirm at full length (growing the chains when they are too short),
    switch sampler if plain SGLD finds nothing clean; all within `budget_seconds` of wall time.
    `base` is where the search starts (default: the task's calibrated defaults); its chains, draws
    and burn-in set the full run length, and the pilot cells are a fifth of it. `known_cells`:
    (config, Cell) pairs already run (a sweep's cells, `cell_config` of each); a pilot cell with the
    very same config is taken from them instead of being run again (`Recommendation.reused`)."""
    start = time.monotonic()
    base = (base or task.defaults).replace(seed=seed, **({"device": device} if device else {}))
    s = _Search(task, base, Budget(budget_seconds), cancel, on_cell, on_progress, on_attempt,
                known=list(known_cells or []))
    confirmed = None
    for sampler in samplers_to_try(base):
        s.base, s.cells, s.pilot_scale = base.replace(sampler=sampler), [], 1
        s.pilot_until = time.monotonic() + PILOT_SHARE * max(0.0, s.budget.left())
        cells = bracket(s)
        candidate = first_candidate(cells) or short_candidate(cells)
        if candidate is not None and not s.stopped():
            confirmed = confirm_loop(s, candidate)
        if confirmed is not None or s.stopped() or s.budget.expired():
            break
    rec = final_recommendation(s.pilots, s.attempts, confirmed, task)
    rec.seconds = time.monotonic() - start
    rec.budget_seconds = budget_seconds
    rec.reused = s.reused
    if s.cut:
        rec.reasons.append(f"The {budget_seconds:g} s budget ran out during the full-length run at {s.cut}: "
                           "it was cut and is not used.")
    if s.pilot_cut:
        rec.reasons.append(f"The pilot bracket stopped after {PILOT_SHARE:.0%} of the budget to leave the rest "
                           "to full-length runs.")
    if s.reused:
        rec.reasons.append(f"{s.reused} pilot cell(s) reused from the sweep already run (same settings), not rerun.")
    if s.stopped():
        rec.reasons.insert(0, "Stopped before the end: this is a partial result.")
    return rec


def _attempt_from_cell(cell: Cell, config: SGLDConfig) -> Attempt:
    return Attempt(cell.epsilon, cell.lambda_hat, cell.lambda_std, cell.status, list(cell.flags), cell.mala,
                   cell.completed, _cell_se(cell, config), config, [], cell.seconds)


def _cell_se(cell: Cell, config: SGLDConfig) -> float:
    """The cell's ESS-based standard error where its run computed one, else std/√chains."""
    return cell.lambda_se if math.isfinite(cell.lambda_se) else cell.lambda_std / math.sqrt(max(1, config.chains))


def _pilot_fallback(pilots: list) -> Attempt | None:
    """The pilot cell `first_candidate` would start from if it carries no flag at all (else the
    largest-ε unflagged one), as an Attempt, or None. One sampler's cells at a time, the last sampler
    tried first: ε means a different step under a preconditioner, so cells of two samplers are never
    neighbours on one ladder."""
    samplers = list(dict.fromkeys(cfg.sampler for cfg, _ in pilots))
    for sampler in reversed(samplers):
        mine = [(cfg, c) for cfg, c in pilots if cfg.sampler == sampler]
        epsilon = first_candidate([c for _, c in mine])
        clean = sorted(((cfg, c) for cfg, c in mine if is_clean(c)), key=lambda p: (p[1].epsilon == epsilon, p[1].epsilon))
        if clean:
            return _attempt_from_cell(clean[-1][1], clean[-1][0])
    return None


def final_recommendation(pilots: list, attempts: list[Attempt], confirmed: Attempt | None,
                         task: LLCTask) -> Recommendation:
    """The recommendation, built only on a run that carried no flag: the confirmed full-length run,
    else the last clean full-length run (unconfirmed), else the clean pilot cell (unconfirmed)."""
    clean_full = [a for a in attempts if a.clean]
    # unconfirmed: the longest clean run (the latest of those): λ̂ rises with length while the chains
    # still explore (the length check), and ε is lowered only on a flag or a disagreement
    longest = max(reversed(clean_full), key=lambda a: a.config.draws, default=None)  # ties: the latest
    chosen = confirmed or longest or _pilot_fallback(pilots)
    runs = [a for a in attempts] + [_attempt_from_cell(c, cfg) for cfg, c in pilots]
    values = [a.lambda_hat for a in runs if a.completed and math.isfinite(a.lambda_hat) and a.status != "diverged"]
    lam_range = (min(values), max(values)) if values else None
    reasons = _search_reasons(pilots, attempts)
    if chosen is None:
        why = ("No run was clean (every pilot cell and full-length run carried a flag), so nothing is recommended: "
               "train w* to a minimum, or give a larger --budget-seconds for longer chains." if pilots or attempts
               else "Nothing ran, so nothing is recommended: give a larger --budget-seconds.")
        return Recommendation(False, reasons=reasons + [why],
            attempts=attempts, lambda_range=lam_range, status="warning",
            warnings=[_warning("no_clean_run", "No clean run: no settings can be recommended.",
                               "Give auto-calibrate a larger budget or check that w* is a minimum.")])
    config = chosen.config
    nbeta = config.nbeta if config.nbeta is not None else default_nbeta(task.n)
    rec = Recommendation(True, chosen.epsilon, config.gamma, 1.0, nbeta, chosen.lambda_hat, reasons,
                         attempts, confirmed is not None, sampler=config.sampler, config=config,
                         lambda_hat_se=chosen.lambda_se, lambda_range=lam_range)
    rec.status = "ok" if rec.confirmed else "warning"
    rec.warnings = list(chosen.warnings) + ([] if rec.confirmed else [_warning(
        "not_confirmed", "Auto-calibrate could not confirm these settings (see its reasons).",
        "Run longer chains at this ε and one step below; trust λ̂ only if they agree.")])
    rec.reasons += _verdict_reasons(chosen, attempts, clean_full, rec.confirmed)
    return rec


def _warning(code: str, message: str, fix: str) -> dict:
    return {"code": code, "message": message, "fix": fix}


def _search_reasons(pilots: list, attempts: list[Attempt]) -> list[str]:
    if not pilots:
        return ["No pilot cell ran (budget or stop)."]
    eps = sorted(c.epsilon for _, c in pilots)
    bad = sorted({f"{c.epsilon:.3g}: {', '.join(c.flags) or c.status}" for _, c in pilots if not is_clean(c)})
    text = [f"Pilot bracket: {len(pilots)} short-chain cells over ε = {eps[0]:.3g} … {eps[-1]:.3g} on a half-decade "
            f"ladder" + (f"; flagged: {'; '.join(bad)}." if bad else "; all clean.")]
    if attempts:
        text.append("Full-length runs: " + "; ".join(
            f"ε {a.epsilon:.3g} × {a.config.draws} draws ({a.config.sampler}): λ̂ {a.lambda_hat:.4g}, "
            f"{', '.join(a.flags) or a.status}" for a in attempts) + ".")
    return text


def _verdict_reasons(chosen: Attempt, attempts: list[Attempt], clean_full: list[Attempt], confirmed: bool) -> list[str]:
    mala = f", MALA {chosen.mala:.2f}" if not math.isnan(chosen.mala) else ""
    if confirmed:
        shorter, below = _confirming_runs(chosen, attempts)
        if shorter is None or below is None:  # a caller's own list without the runs confirm_loop compared
            return [f"Confirmed: the full-length run at ε = {chosen.epsilon:.3g} × {chosen.config.draws} draws is clean "
                    f"(λ̂ = {chosen.lambda_hat:.4g} ± {chosen.lambda_se:.2g}{mala})."]
        return [f"Confirmed: the full-length run at ε = {chosen.epsilon:.3g} × {chosen.config.draws} draws is clean "
                f"(λ̂ = {chosen.lambda_hat:.4g} ± {chosen.lambda_se:.2g}{mala}); half as long it gave "
                f"{shorter.lambda_hat:.4g} (λ̂ no longer changes with chain length), and one step lower "
                f"(ε = {below.epsilon:.3g}, {below.config.draws} draws) {below.lambda_hat:.4g} (λ̂ no longer changes "
                f"with ε), each agreeing within {AGREE_TOL:.0%} or {AGREE_Z:g} standard errors."]
    if clean_full:
        return [f"Not confirmed: the full-length run at ε = {chosen.epsilon:.3g} is clean (λ̂ = {chosen.lambda_hat:.4g}"
                f"{mala}), but within the budget and the search's limits (at most {MAX_FULL_RUNS} full-length runs, "
                f"up to {MAX_LENGTH_FACTOR}× the default length) a clean run one ε step lower and a clean run twice "
                f"as long did not both agree with it within {AGREE_TOL:.0%}: λ̂ may still depend on ε or on chain length."]
    return [f"Not confirmed: no full-length run was clean; these are the short pilot chains' settings "
            f"(ε = {chosen.epsilon:.3g}, {chosen.config.draws} draws), whose own run was clean. Pilot chains "
            f"over-rate large steps and hide slow mixing: do not trust λ̂ = {chosen.lambda_hat:.4g} without a longer run."]


def _confirming_runs(chosen: Attempt, attempts: list[Attempt]) -> tuple[Attempt | None, Attempt | None]:
    """The two runs confirm_loop compared the confirmed run with: the clean one half as long at the same
    ε and the clean one a rung lower at that half length, both with the same sampler (a search that
    switched samplers holds the first sampler's runs too)."""
    same = [a for a in attempts if a.clean and a.config.sampler == chosen.config.sampler]
    shorter = max((a for a in same if a.epsilon == chosen.epsilon and a.config.draws < chosen.config.draws),
                  key=lambda a: a.config.draws, default=None)
    if shorter is None:
        return None, None
    rung = ladder_index(chosen.epsilon) - 1
    below = next((a for a in same if ladder_index(a.epsilon) == rung and a.config.draws == shorter.config.draws), None)
    return shorter, below
