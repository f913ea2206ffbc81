"""`sweep`: λ̂ over an ε × γ (× nβ multiplier) grid, cells spread over local workers or Ray.

Cells are printed as they finish (completion order). Exit 0 when every cell ran, 1 when some
cell's unit failed (status "error"), 130 when interrupted (what finished is printed and the
run is labelled partial on stderr, and on stdout unless --json).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

from . import DEVICE_HELP, HYPER_FLAGS, _number, check_flags, config_for, device_arg

EXIT_UNIT_FAILED = 1
EXIT_INTERRUPTED = 130
ESTIMATE_FLAGS = ("--nbeta", "--chains", "--draws", "--burnin", "--thin", "--batch-size", "--seed")
COLUMNS = ("epsilon", "gamma", "nbeta_multiplier", "nbeta", "lambda_hat", "lambda_hat_se", "lambda_std",
           "status", "warnings", "mala", "seconds", "error")


def number_list(flag: str):
    """'1e-5,3e-5' -> (1e-05, 3e-05); each item converted (and reported) like a single value."""
    one = _number(flag)

    def convert(text: str):
        items = [t.strip() for t in text.split(",")]
        if not all(items):
            raise argparse.ArgumentTypeError(f"{flag}={text!r} is invalid: use comma-separated numbers, e.g. 1,10")
        return tuple(one(t) for t in items)
    return convert


def register(sub) -> None:
    sw = sub.add_parser("sweep", help="λ̂ over an ε × γ grid, cells in parallel (local workers or Ray)",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    source = sw.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="path to a .safetensors checkpoint (JSON sidecar beside it)")
    source.add_argument("--toy", help="crossing:P1,P2,... or dln:H0,...,HL:rR")
    sw.add_argument("--data-dir", help="where MNIST / Fashion-MNIST files live (checkpoints trained on them)")
    sw.add_argument("--epsilon", dest="epsilons", type=number_list("--epsilon"), required=True,
                    help="step sizes ε, comma-separated (required)")
    sw.add_argument("--gamma", dest="gammas", type=number_list("--gamma"), required=True,
                    help="localization strengths γ, comma-separated (required)")
    sw.add_argument("--nbeta-multiplier", dest="multipliers", type=number_list("--nbeta-multiplier"),
                    default=(1.0,), help="multiples of nβ (of --nbeta, or n/log n), comma-separated")
    for flag in ESTIMATE_FLAGS:
        sw.add_argument(flag, type=HYPER_FLAGS[flag][1], default=argparse.SUPPRESS,
                        help=f"{HYPER_FLAGS[flag][0]} for every cell (default: the model's calibrated setting)")
    sw.add_argument("--device", default="auto", type=device_arg, help=DEVICE_HELP)
    add_executor_flags(sw, "cells")
    out = sw.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object per cell per line on stdout")
    out.add_argument("--csv", action="store_true", help="CSV with a header line on stdout")
    sw.set_defaults(handler=cmd_sweep)


def add_executor_flags(parser, units: str) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_number("--workers", int), default=None,
                       help=f"local worker processes running {units} in parallel (default: one per core; "
                            "1 = in this process)")
    where.add_argument("--ray", metavar="ADDRESS", default=None,
                       help=f"run {units} on Ray: local (start a runtime here), auto (the running cluster) "
                            "or HOST:PORT / ray://HOST:PORT (default: $LLC_RAY_ADDRESS, else local workers)")


def task_source(args) -> dict:
    import pathlib

    if args.toy is not None:
        return {"toy": args.toy}
    return {"checkpoint": str(pathlib.Path(args.checkpoint).resolve()), "data_dir": args.data_dir}


def cmd_sweep(args) -> int:
    check_flags(args)  # before anything imports torch: a bad flag is answered at once
    from ..executor import cached_task, make_executor
    from ..sweep import SweepGrid, sweep

    source = task_source(args)
    task = cached_task(source)  # forked workers inherit it built
    pilot = config_for(task, args)
    grid = SweepGrid(args.epsilons, args.gammas, args.multipliers).validate(pilot, task.n)
    total = len(grid.points())
    from ..devices import resolve_device

    device = str(resolve_device(pilot.device))  # fork/spawn and GPU placement depend on the real device
    with make_executor(workers=args.workers, ray=args.ray, device=device) as executor:
        cells = sweep(task, grid, pilot, executor=executor, source=source)
        done, interrupted = _print_cells(cells, total, args)
    failed = sum(cell.status == "error" for cell in done)
    return report_end(len(done), total, interrupted, args.json, "cells") or (EXIT_UNIT_FAILED if failed else 0)


def _print_cells(cells, total: int, args) -> tuple[list, bool]:
    from tqdm import tqdm

    done: list = []
    start = time.perf_counter()
    if args.csv:
        print(",".join(COLUMNS), flush=True)
    elif not args.json:
        print(f"{'ε':>9} {'γ':>8} {'nβ×':>5} {'λ̂':>9} {'s.e.':>8} {'status':>9} {'s':>6}  warnings", flush=True)
    try:
        with tqdm(total=total, file=sys.stderr, unit="cell", mininterval=0.5) as bar:
            for cell in cells:
                done.append(cell)
                print(format_cell(cell_row(cell), args), flush=True)
                bar.update(1)
                bar.set_postfix_str(f"ε={cell.epsilon:g} γ={cell.gamma:g} λ̂={cell.lambda_hat:.4g} {cell.status}")
    except KeyboardInterrupt:
        return done, True
    print(f"{len(done)} cells in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return done, False


def report_end(done: int, total: int, interrupted: bool, as_json: bool, what: str) -> int:
    """Label an interrupted run partial (stderr; stdout too unless it is JSON lines) → exit 130."""
    if not interrupted:
        return 0
    line = f"partial: interrupted after {done} of {total} {what}"
    print(line, file=sys.stderr)
    if not as_json:
        print(f"# {line}", flush=True)
    return EXIT_INTERRUPTED


def cell_row(cell) -> dict:
    row = {"epsilon": cell.epsilon, "gamma": cell.gamma, "nbeta_multiplier": cell.nbeta_multiplier,
           "nbeta": cell.nbeta, "lambda_hat": cell.lambda_hat, "lambda_hat_se": cell.lambda_se,
           "lambda_std": cell.lambda_std, "status": cell.status, "warnings": list(cell.flags),
           "mala": cell.mala, "seconds": round(cell.seconds, 3), "error": cell.error}
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def format_cell(row: dict, args) -> str:
    if args.json:
        return json.dumps(row)
    if args.csv:
        return ",".join(_csv_value(row[c]) for c in COLUMNS)
    lam = "nan" if row["lambda_hat"] is None else f"{row['lambda_hat']:.4g}"
    se = "nan" if row["lambda_hat_se"] is None else f"{row['lambda_hat_se']:.3g}"
    notes = row["error"] or " ".join(row["warnings"])
    return (f"{row['epsilon']:>9g} {row['gamma']:>8g} {row['nbeta_multiplier']:>5g} {lam:>9} {se:>8} "
            f"{row['status']:>9} {row['seconds']:>6.2f}  {notes}")


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = " ".join(value)
    text = str(value)
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\n') else text
