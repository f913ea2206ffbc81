"""Convergence of the chains, judged the way MCMC practice does, with ArviZ doing the statistics.

ArviZ's statistics library, `arviz-stats`, through its NumPy-only array interface
(`arviz_stats.base.array_stats`): the same code and the same numbers as `arviz.rhat/ess/mcse`
(bit for bit, checked against arviz 0.23.4 in tests/test_convergence.py), without the xarray,
pandas and matplotlib imports that made `import arviz` cost ~2 s in every worker process.

Input everywhere: a (C, N) array of post-burn-in loss draws, one row per chain. In a run these
come from the sampler's bounded loss trace (`ThinnedTrace`): its post-burn-in points are an
evenly thinned subsample of the chain, so R̂ is unbiased and ESS/MCSE computed from it are
conservative (the ESS of a thinned subsample is at most that of all draws).

- R̂: rank-normalised split R̂ (Vehtari et al. 2021), `rhat(method="rank")`.
- ESS: bulk and tail, `ess(method="bulk" | "tail")`; tail at the 5% and 95% quantiles, ArviZ's default.
- MCSE of λ̂ = nβ·(mean draw − L_n(w*)): nβ times `mcse(method="mean")` of the draws.
- Drift: λ̂ of the first half of the draws vs the second half, in units of their MCSE.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .diagnostics import Flag

# Thresholds (measurements with bench/silent_misses.py; tables in docs/diagnostics.md):
# - R̂: Vehtari et al. (2021) recommend 1.01, but healthy runs at our toys' defaults reach
#   1.011 (dln:5,5,5:r0, −2.1%) and 1.042 (dln:9,7,4,5,2:r0, +3.0%) on the thinned trace; runs
#   that are far off give 1.08–1.17 (dln:12,5,10,9:r0, dln:8,12,10,8:r4, dln:10,20,20,10:r1).
RHAT_MAX = 1.05
# - Bulk/tail ESS: Vehtari et al. ask for ≥ 100 before R̂ and the MCSE are themselves reliable;
#   the same three far-off runs have bulk ESS 32–59, the lowest healthy one 137.
ESS_MIN = 100.0
# - Drift: |λ̂(second half) − λ̂(first half)| beyond 4 combined MCSEs. crossing:1 at its defaults
#   (healthy: +1.6% from λ, R̂ 1.003, ESS 8358) shows −3.2 MCSE (−11%) between the halves: each
#   loss draw carries white minibatch noise that hides the slow part of the autocorrelation
#   from ArviZ's truncated estimate, so the halves' MCSEs are somewhat optimistic; 4 leaves room.
#   (crossing:2: −3.4; the silent misses dln:3,4,5,3:r0 −10% and dln:3,10,9:r3 +16%: +4.9, +12.9.)
DRIFT_Z = 4.0
# ... and only when it also exceeds 5% of λ̂: with tens of thousands of effective draws the
# MCSE becomes so small that a harmless 1–2% settling would fire; 5% is half the accuracy bar.
DRIFT_MIN_REL = 0.05
# Fewer post-burn-in trace points per chain than this: ESS and R̂ are not computed (ArviZ
# needs at least 4 per split half; 20 leaves the autocorrelation estimate some room).
MIN_POINTS = 20


@dataclass(frozen=True)
class Convergence:
    rhat: float  # rank-normalised split R̂ of the loss draws
    ess_bulk: float
    ess_tail: float
    lambda_mcse: float  # Monte-Carlo standard error of λ̂, nβ·MCSE(mean draw)
    lambda_first_half: float  # λ̂ from the first half of the draws
    lambda_second_half: float
    drift_mcse: float  # MCSE of (second − first): the two halves' MCSEs in quadrature
    chains: int
    points: int  # draws per chain the numbers were computed from

    def to_dict(self) -> dict:
        return asdict(self)


# The tail ESS's quantiles: arviz-stats' array function has no default, classic ArviZ used these.
TAIL_PROB = (0.05, 0.95)


def _az():
    # Imported on first use (it brings scipy), so a CLI call that never estimates does not pay it.
    from arviz_stats.base import array_stats

    return array_stats


def _usable(draws: np.ndarray) -> np.ndarray:
    """The finite rows (chains that did not diverge) of a (C, N) array, as float64."""
    draws = np.asarray(draws, dtype=float)
    if draws.ndim != 2:
        raise ValueError(f"draws must be a (chains, draws) array, got shape {draws.shape}")
    return draws[np.all(np.isfinite(draws), axis=1)]


def rhat(draws: np.ndarray) -> float:
    """Rank-normalised split R̂ (ArviZ); NaN with fewer than MIN_POINTS draws per chain."""
    d = _usable(draws)
    return float(_az().rhat(d, method="rank")) if d.shape[1] >= MIN_POINTS and len(d) else math.nan


def ess(draws: np.ndarray, method: str = "bulk") -> float:
    """Bulk or tail effective sample size over all chains (ArviZ)."""
    d = _usable(draws)
    if d.shape[1] < MIN_POINTS or not len(d):
        return math.nan
    return float(_az().ess(d, method=method, prob=TAIL_PROB if method == "tail" else None))


def mean_mcse(draws: np.ndarray) -> float:
    """Monte-Carlo standard error of the mean of all draws, from their ESS (ArviZ)."""
    d = _usable(draws)
    return float(_az().mcse(d, method="mean")) if d.shape[1] >= MIN_POINTS and len(d) else math.nan


def convergence(draws: np.ndarray, nbeta: float, init_loss: float) -> Convergence:
    """All numbers at once for λ̂ = nβ·(mean draw − L_n(w*))."""
    d = _usable(draws)
    half = d.shape[1] // 2
    first, second = d[:, :half], d[:, half : 2 * half]
    lam = lambda part: nbeta * (float(part.mean()) - init_loss) if part.size else math.nan
    se1, se2 = nbeta * mean_mcse(first), nbeta * mean_mcse(second)
    return Convergence(
        rhat=rhat(d), ess_bulk=ess(d, "bulk"), ess_tail=ess(d, "tail"),
        lambda_mcse=nbeta * mean_mcse(d), lambda_first_half=lam(first), lambda_second_half=lam(second),
        drift_mcse=math.hypot(se1, se2), chains=len(d), points=d.shape[1],
    )


def post_burnin(steps: np.ndarray, values: np.ndarray, burnin: int, alive: np.ndarray) -> np.ndarray:
    """The (live chains, points) part of a thinned loss trace that lies after burn-in."""
    return values[np.asarray(alive, dtype=bool)][:, np.asarray(steps) > burnin]


def of_trace(steps, values, burnin: int, alive, nbeta: float, init_loss: float) -> Convergence:
    """Convergence of a run from its thinned loss trace (steps (P,), values (C, P))."""
    return convergence(post_burnin(steps, values, burnin, alive), nbeta, init_loss)


def flags(conv: Convergence, final: bool = True) -> list[Flag]:
    """The convergence flags this state raises (none while there are too few points). Live
    (final=False) only R̂ and drift are judged: a low ESS part-way through is expected."""
    out = []
    if conv.rhat > RHAT_MAX:
        out.append(Flag(
            "high_rhat",
            f"R̂ = {conv.rhat:.3f} > {RHAT_MAX}: the chains' loss draws disagree (rank-normalised "
            f"split R̂), so they have not mixed and λ̂ depends on where each chain happened to be.",
            "Use more draws (longer chains); if it persists raise ε or try another sampler.",
        ))
    low = min(conv.ess_bulk, conv.ess_tail)
    if final and low < ESS_MIN:
        out.append(Flag(
            "low_ess",
            f"Effective sample size {low:.0f} (bulk {conv.ess_bulk:.0f}, tail {conv.ess_tail:.0f}) "
            f"< {ESS_MIN:.0f}: too few independent draws for λ̂ or its error bar to be reliable.",
            "Use more draws, more chains, or a larger ε (check MALA stays ≥ 0.8).",
        ))
    drift = conv.lambda_second_half - conv.lambda_first_half
    scale = max(abs(conv.lambda_first_half), abs(conv.lambda_second_half))
    if abs(drift) > DRIFT_Z * conv.drift_mcse and abs(drift) > DRIFT_MIN_REL * scale:
        out.append(Flag(
            "lambda_drift",
            f"λ̂ is still moving: {conv.lambda_first_half:.4g} from the first half of the draws, "
            f"{conv.lambda_second_half:.4g} from the second ({drift / conv.drift_mcse:+.1f} MCSE): "
            f"the chains have not reached equilibrium.",
            "Use more draws (or more burn-in); if it keeps moving, raise ε.",
        ))
    return out
