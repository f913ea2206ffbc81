"""Truth suite: random known-λ shapes nobody tuned for, defaults vs auto-calibrate.

Draws random deep linear networks (2–6 layers, widths up to the device's cap, teacher rank 0…min
width) and normal crossings, skipping shapes whose multiplicity m > 1 (their estimator carries a
known −(m−1)/log nβ term, reported separately as `skipped`). For each case: one run at the toy's
defaults and one auto-calibration; one row per case, then a summary (share within 10%, worst error,
silent misses = more than 10% off while the status says `ok`, time). Cases are independent units of
work on llc_core's executor: `--workers N` runs them in N processes, `--ray ADDRESS` on Ray.

    .venv/bin/python bench/truth_suite.py --count 30 --seed 0 [--device cuda] [--max-params P]
        [--workers N | --ray ADDRESS] [--budget-seconds B] [--crossings K]
"""

from __future__ import annotations

import argparse
import math
import pathlib
import random
import sys
import time
from dataclasses import dataclass

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from llc_core.limits import DLN_CAPS  # noqa: E402

BAR = 0.10  # the estimator's accuracy bar (DESIGN.md §3)
MIN_LAYERS, MAX_LAYERS = 2, 6
GPU_MIN_PARAMS = 10_000  # the GPU suite's shapes run from 10k parameters up (issue 10)
CPU_MIN_PARAMS = 20
MIN_WIDTH = 2  # a 1-wide layer turns the net into a scalar product: the crossings cover that
CROSSING_POWERS = (1, 2, 3)  # single-power n defaults (toys._SINGLE_N) keep their targets within 3% of λ


def dln_multiplicity(widths: list[int], rank: int) -> int:
    """Aoyagi's multiplicity m for a DLN: 1 in the regular case and when a = ℓ, else 2 (the a(ℓ−a)/4ℓ
    term is non-zero exactly when m = 2; for three widths this is the odd M+H+N+r case of
    reduced-rank regression, Aoyagi & Watanabe 2005)."""
    M = sorted(h - rank for h in widths)
    for k in range(1, len(M) + 1):
        inside, outside = M[:k], M[k:]
        ell, S = k - 1, sum(inside)
        if (outside and not max(inside) < min(outside)) or not S >= ell * max(inside) or \
                (outside and not S < ell * min(outside)):
            continue
        if ell == 0:
            return 1
        a = S - (-(-S // ell) - 1) * ell
        return 1 if a == ell else 2
    raise ValueError(f"no admissible set for {widths} r{rank}")


def params_of(widths: list[int]) -> int:
    return sum(a * b for a, b in zip(widths[:-1], widths[1:]))


def _draw_widths(rng: random.Random, max_width: int, low: int, high: int) -> list[int]:
    """Widths for a random depth whose parameter count lands in [low, high] (log-uniform target)."""
    for _ in range(1000):
        layers = rng.randint(MIN_LAYERS, MAX_LAYERS)
        target = math.exp(rng.uniform(math.log(max(low, 2)), math.log(high)))
        scale = max(MIN_WIDTH, min(max_width, int(math.sqrt(target / layers))))
        widths = [max(MIN_WIDTH, min(max_width, int(scale * rng.uniform(0.5, 1.5)))) for _ in range(layers + 1)]
        if low <= params_of(widths) <= high:
            return widths
    raise ValueError(f"no shape with {low}…{high} parameters under width {max_width}")


def draw_cases(count: int, seed: int, device: str, max_params: int, crossings: int) -> tuple[list[str], list[str]]:
    """(specs to run, specs skipped for m > 1): `count` DLNs then `crossings` single-power crossings."""
    rng = random.Random(seed)
    max_width, cap = DLN_CAPS["cuda" if device.startswith("cuda") else "cpu"]
    high = min(cap, max_params)
    low = min(GPU_MIN_PARAMS if device.startswith("cuda") else CPU_MIN_PARAMS, high)
    if not 0 <= crossings <= len(CROSSING_POWERS):
        raise ValueError(f"crossings={crossings}: there are {len(CROSSING_POWERS)} distinct single-power "
                         f"crossings ({', '.join(map(str, CROSSING_POWERS))}); use 0 to {len(CROSSING_POWERS)}")
    # Distinct cases: a shape drawn twice would count twice in the share within 10% (seed 14 drew
    # dln:2,2,2,2,2,2,2:r2 and crossing:2 twice each before this rule).
    specs, skipped = [], []
    for _ in range(1000 * max(count, 1)):
        if len(specs) == count:
            break
        widths = _draw_widths(rng, max_width, low, high)
        rank = rng.randint(0, min(widths))
        spec = f"dln:{','.join(map(str, widths))}:r{rank}"
        if spec not in specs and spec not in skipped:
            (specs if dln_multiplicity(widths, rank) == 1 else skipped).append(spec)
    else:
        raise ValueError(f"only {len(specs)} distinct shapes with {low}…{high} parameters: ask for fewer than {count}")
    specs.sort(key=lambda spec: params_of([int(w) for w in spec.split(":")[1].split(",")]))  # small first:
    # a time-limited run reports the most cases
    specs += [f"crossing:{power}" for power in rng.sample(CROSSING_POWERS, crossings)]
    return specs, skipped


@dataclass
class Row:
    spec: str
    params: int
    true_lambda: float
    target: float  # exact finite-n target where known, else λ
    default_lambda: float
    default_status: str
    auto_lambda: float | None
    auto_status: str
    confirmed: bool
    auto_range: tuple | None
    seconds: float
    default_flags: tuple = ()  # the defaults run's warning codes: what its status rests on
    default_mala: float = math.nan  # its mean MALA acceptance (the discretisation check)
    auto_setting: str = "–"  # the recommended ε × draws and its run's MALA acceptance

    def error(self, value: float | None) -> float | None:
        return None if value is None or not math.isfinite(value) else value / self.target - 1

    def silent(self, value: float | None, status: str) -> bool:
        err = self.error(value)
        return status == "ok" and (err is None or abs(err) > BAR)


def run_case(spec: str, device: str, budget: float, seed: int) -> Row:
    import torch

    from llc_core.calibrate import auto_calibrate
    from llc_core.sampler import SGLDRun
    from llc_core.sweep import mean_mala
    from llc_core.toys import parse_toy

    torch.set_num_threads(1)  # one core per case: cases are the unit of parallelism
    start = time.perf_counter()
    task = parse_toy(spec, device=device)
    target = task.target_lambda if task.target_lambda is not None else task.true_lambda
    default = SGLDRun(task, task.defaults.replace(seed=seed, device=device)).run()
    rec = auto_calibrate(task, budget_seconds=budget, seed=seed, device=device)
    return Row(spec, task.num_params, task.true_lambda, target, default.lambda_hat, default.status,
               rec.lambda_hat if rec.found else None, rec.status, rec.confirmed, rec.lambda_range,
               time.perf_counter() - start, tuple(f.code for f in default.warnings), mean_mala(default),
               _setting(rec))


def _setting(rec) -> str:
    """'ε × draws, MALA' of the recommended run (a full-length run or, unconfirmed, a pilot cell)."""
    if not rec.found:
        return "–"
    mala = next((a.mala for a in rec.attempts if a.config == rec.config), math.nan)
    return f"{rec.epsilon:.3g} × {rec.config.draws}" + (f", {mala:.3f}" if math.isfinite(mala) else "")


HEADER = ("| case | params | λ | target | defaults λ̂ | err | status | flags | MALA | auto λ̂ | err | status "
          "| confirmed | auto ε × draws, MALA | auto λ̂ range | seconds |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def _pct(err: float | None) -> str:
    return "–" if err is None else f"{err:+.1%}"


def format_row(r: Row) -> str:
    auto = "–" if r.auto_lambda is None else f"{r.auto_lambda:.4g}"
    span = "–" if not r.auto_range else f"{r.auto_range[0]:.4g} … {r.auto_range[1]:.4g}"
    miss = lambda v, s: " SILENT" if r.silent(v, s) else ""  # noqa: E731
    return (f"| {r.spec} | {r.params:,} | {r.true_lambda:.4g} | {r.target:.4g} | {r.default_lambda:.4g} | "
            f"{_pct(r.error(r.default_lambda))} | {r.default_status}{miss(r.default_lambda, r.default_status)} | "
            f"{', '.join(r.default_flags) or '–'} | {r.default_mala:.3f} | "
            f"{auto} | {_pct(r.error(r.auto_lambda))} | {r.auto_status}{miss(r.auto_lambda, r.auto_status)} | "
            f"{'yes' if r.confirmed else 'no'} | {r.auto_setting} | {span} | {r.seconds:.0f} |")


def summary(rows: list[Row], wall: float) -> str:
    lines = []
    for name, value, status in (("defaults", lambda r: r.default_lambda, lambda r: r.default_status),
                                ("auto-calibrate", lambda r: r.auto_lambda, lambda r: r.auto_status)):
        errs = [r.error(value(r)) for r in rows]
        within = sum(1 for e in errs if e is not None and abs(e) <= BAR)
        worst = max((abs(e) for e in errs if e is not None), default=math.nan)
        silent = [r.spec for r in rows if r.silent(value(r), status(r))]
        lines.append(f"{name}: {within}/{len(rows)} within {BAR:.0%} ({within / max(1, len(rows)):.0%}), "
                     f"worst error {worst:.1%}, silent misses {len(silent)}" + (f" ({', '.join(silent)})" if silent else ""))
    confirmed = sum(r.confirmed for r in rows)
    lines.append(f"auto-calibrate confirmed {confirmed}/{len(rows)}; wall time {wall:.0f} s")
    return "\n".join(lines)


def case_unit(item: tuple, cancel) -> Row:
    """One case as a unit of llc_core's executor: (spec, device, budget, seed)."""
    return run_case(*item)


def run_all(specs: list[str], device: str, budget: float, seed: int, workers: int, ray: str | None = None):
    """Rows in finishing order (printed as they come): each case is a unit on llc_core's executor —
    in this process (workers 1), a local pool of `workers` processes, or Ray (`ray` an address).
    A case whose unit failed is printed with its error and yields no row."""
    from llc_core.executor import UnitFailed, make_executor

    items = [(spec, device, budget, seed) for spec in specs]
    with make_executor(workers=None if ray else workers, ray=ray, device=device) as executor:
        for index, outcome in executor.map_unordered(case_unit, items):
            if isinstance(outcome, UnitFailed):
                print(f"| {specs[index]} | failed: {outcome.error} |", flush=True)
            else:
                yield outcome


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=30, help="random DLN shapes (m = 1 only)")
    p.add_argument("--crossings", type=int, default=0, help="random single-power normal crossings")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-params", type=int, default=None, help="cap below the device's DLN_CAPS")
    p.add_argument("--workers", type=int, default=1, help="cases at once, one process each")
    p.add_argument("--ray", default=None, help="run the cases on Ray: local, auto or a cluster address")
    p.add_argument("--budget-seconds", type=float, default=600.0, help="auto-calibrate's budget per case")
    return p.parse_args(argv)


def main(argv=None) -> list[Row]:
    args = parse_args(argv)
    cap = DLN_CAPS["cuda" if args.device.startswith("cuda") else "cpu"][1]
    try:
        specs, skipped = draw_cases(args.count, args.seed, args.device, args.max_params or cap, args.crossings)
    except ValueError as exc:
        raise SystemExit(f"truth_suite: {exc}") from None
    print(f"truth suite: seed {args.seed}, device {args.device}, {len(specs)} cases, auto-calibrate budget "
          f"{args.budget_seconds:g} s/case; skipped (m > 1): {', '.join(skipped) or 'none'}", flush=True)
    print(HEADER, flush=True)
    start, rows = time.perf_counter(), []
    for row in run_all(specs, args.device, args.budget_seconds, args.seed, args.workers, args.ray):
        rows.append(row)
        print(format_row(row), flush=True)
    print(summary(rows, time.perf_counter() - start), flush=True)
    if len(rows) < len(specs):
        print(f"failed: {len(specs) - len(rows)} of {len(specs)} cases (their rows above say why)", flush=True)
    return rows


if __name__ == "__main__":
    main()
