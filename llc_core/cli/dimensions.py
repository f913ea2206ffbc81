"""`dimensions`: λ̂ beside the Hessian at w* (top eigenvalues, trace, numerical rank) and the
intrinsic dimension d_int90, for a checkpoint or a known-λ toy (llc_core.dimensions). Cached by
weights hash + settings. Ctrl-C stops at the next step and prints what finished (exit 130)."""

from __future__ import annotations

import argparse
import json
import sys

from ..config import parameters_text
from ..limits import (DEFAULT_RANK_RTOL, MAX_CHAINS, MAX_DRAWS, MAX_EIGENVALUES, MAX_PROBES, MAX_SEED,
                      MAX_SUBSPACE_STEPS)
from . import (DEVICE_HELP, EXIT_INTERRUPTED, EXIT_OK, _number, add_command, ctrl_c_cancels, device_arg)
from .estimate import load_source

JSON_KEYS = ("lambda_hat", "lambda_hat_mcse", "hessian_trace", "hessian_trace_se", "top_eigenvalues",
             "numerical_rank", "rank_tolerance", "d_int90", "d_int90_curve", "num_params")


def _d_grid(text: str) -> tuple:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--d-grid={text!r} is invalid: use comma-separated integers ≥ 1, "
                                         f"e.g. 1,4,16,64") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--d-grid={text!r} is invalid: every d must be ≥ 1")
    return values


def register(sub) -> None:
    cmd = add_command(sub, "dimensions", "λ̂ beside the Hessian spectrum, trace, rank and the intrinsic "
                      "dimension d_int90 of one model")
    source = cmd.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="PATH", help="a .safetensors checkpoint with its .json sidecar")
    source.add_argument("--toy", metavar="SPEC", help="a known-λ toy: crossing:P1,... or dln:H0,...,HL:rR")
    cmd.add_argument("--data-dir", metavar="DIR", help="where MNIST / Fashion-MNIST IDX files live")
    cmd.add_argument("--eigenvalues", type=_number("--eigenvalues", int), default=20,
                     help=f"top Hessian eigenvalues to compute, 1..{MAX_EIGENVALUES}")
    cmd.add_argument("--probes", type=_number("--probes", int), default=30,
                     help=f"Hutchinson probes for the trace, 2..{MAX_PROBES}")
    cmd.add_argument("--rank-rtol", type=_number("--rank-rtol"), default=DEFAULT_RANK_RTOL,
                     help="an eigenvalue counts towards the rank when |h| > RTOL·max|h|; in (0, 1)")
    cmd.add_argument("--d-grid", type=_d_grid, default=None, metavar="D1,D2,...",
                     help="coarse grid of subspace dimensions before bisection (default: 1,2,4,…,D)")
    cmd.add_argument("--subspace-steps", type=_number("--subspace-steps", int), default=300,
                     help=f"Adam steps per subspace training, 1..{MAX_SUBSPACE_STEPS}")
    cmd.add_argument("--threshold", type=_number("--threshold"), default=0.9,
                     help="fraction of the full model's performance d_int must reach, in (0, 1]")
    cmd.add_argument("--chains", type=_number("--chains", int), default=None,
                     help=f"SGLD chains for λ̂, 1..{MAX_CHAINS} (default: the model's calibrated setting)")
    cmd.add_argument("--draws", type=_number("--draws", int), default=None,
                     help=f"SGLD draws per chain for λ̂, 1..{MAX_DRAWS:,} (default: the model's)")
    cmd.add_argument("--seed", type=_number("--seed", int), default=0,
                     help=f"seed of the SGLD run, the probes and the projections, 0..{MAX_SEED}")
    cmd.add_argument("--device", default="auto", type=device_arg, help=DEVICE_HELP)
    cmd.add_argument("--no-cache", action="store_true", help="measure again even when a cached result exists")
    cmd.add_argument("--json", action="store_true", help="print one JSON object on stdout (keys: docs/cli.md)")
    cmd.set_defaults(handler=cmd_dimensions)


def settings_from(args):
    from ..config import InputError
    from ..dimensions import DimensionSettings
    from ..intrinsic_dim import SubspaceSettings

    if not 0 <= args.seed <= MAX_SEED:
        raise InputError(f"--seed={args.seed} is invalid: use 0..{MAX_SEED}")
    sub = SubspaceSettings(steps=args.subspace_steps, threshold=args.threshold, grid=args.d_grid)
    return DimensionSettings(eigenvalues=args.eigenvalues, probes=args.probes, rank_rtol=args.rank_rtol,
                             chains=args.chains, draws=args.draws, subspace=sub, seed=args.seed, device=args.device)


def cmd_dimensions(args) -> int:
    from ..dimensions import json_safe, measure_dimensions

    task = load_source(args)
    settings = settings_from(args).validate(task)
    with ctrl_c_cancels() as cancel:
        out = measure_dimensions(task, settings, should_stop=cancel.is_set, use_cache=not args.no_cache,
                                 on_progress=_progress_line)
    print(file=sys.stderr)
    if args.json:
        print(json.dumps(json_safe({key: out.get(key) for key in JSON_KEYS} | out)))
    else:
        print(format_dimensions(out))
    return EXIT_INTERRUPTED if cancel.is_set() else EXIT_OK


def _progress_line(measure: str, fraction: float, text: str) -> None:
    print(f"\r{measure}: {text}".ljust(70)[:100], end="", file=sys.stderr, flush=True)


def _fmt(value, spec=".4g") -> str:
    return "–" if value is None else format(value, spec)


def format_dimensions(out: dict) -> str:
    rank = out.get("numerical_rank")
    rank_text = "–" if rank is None else (f"≥ {rank}" if out.get("rank_is_lower_bound") else str(rank))
    top = out.get("top_eigenvalues") or []
    lines = [f"model            {out['name']}  ({parameters_text(out['num_params'])}, n={out['n']:,})"
             + ("  [cached]" if out.get("cached") else ""),
             f"λ̂                {_fmt(out.get('lambda_hat'))} ± {_fmt(out.get('lambda_hat_mcse'), '.2g')} (MCSE)"
             + ("" if out.get("true_lambda") is None else f"   true λ {out['true_lambda']:.4g}"),
             f"Hessian trace    {_fmt(out.get('hessian_trace'))} ± {_fmt(out.get('hessian_trace_se'), '.2g')}"
             f"  ({out.get('hessian_method', '–')})",
             f"top eigenvalues  {', '.join(f'{v:.4g}' for v in top[:8])}{' …' if len(top) > 8 else ''}",
             f"numerical rank   {rank_text}  (|h| > {_fmt(out.get('rank_tolerance'), 'g')}·max|h|)",
             f"d_int{int(round(100 * out.get('d_int_threshold', 0.9)))}          {_fmt(out.get('d_int90'), 'd')}  "
             f"(full model {out.get('d_int_metric', '')} {_fmt(out.get('full_performance'), '.4g')})",
             f"curve            {', '.join(f'{d}:{p:.3f}' for d, p in out.get('d_int90_curve', []))}"]
    if not out.get("completed"):
        lines.append("status           stopped: partial (the measures above that show – did not finish)")
    return "\n".join(lines)
