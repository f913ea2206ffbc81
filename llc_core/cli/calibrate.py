"""`calibrate`: auto-calibrate (ε bracket, full-length confirmation) for a checkpoint or toy."""

from __future__ import annotations

import json
import math
import sys
import threading

from . import DEVICE_HELP, _number, device_arg


def register(sub) -> None:
    cal = sub.add_parser("calibrate", help="find SGLD settings whose own full-length run is clean")
    source = cal.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="path to a .safetensors checkpoint (JSON sidecar beside it)")
    source.add_argument("--toy", help="crossing:P1,P2,... or dln:H0,...,HL:rR")
    cal.add_argument("--data-dir", help="where MNIST / Fashion-MNIST files live")
    cal.add_argument("--device", default="auto", type=device_arg, help=DEVICE_HELP)
    cal.add_argument("--budget-seconds", type=_number("--budget-seconds"), default=None,
                     help="wall-clock budget for the whole search (default 600)")
    cal.add_argument("--seed", type=_number("--seed", int), default=0,
                     help="seed of every run in the search, an integer in [0, 2^63) (default 0)")
    cal.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    cal.set_defaults(handler=cmd_calibrate)


def _check(args) -> None:
    from ..config import InputError
    from ..limits import MAX_BUDGET_SECONDS, MIN_BUDGET_SECONDS

    if args.budget_seconds is not None and not (MIN_BUDGET_SECONDS <= args.budget_seconds <= MAX_BUDGET_SECONDS):
        raise InputError(f"--budget-seconds={args.budget_seconds:g} is invalid: must be in "
                         f"[{MIN_BUDGET_SECONDS}, {MAX_BUDGET_SECONDS}]")
    if not 0 <= args.seed < 2**63:
        raise InputError(f"--seed={args.seed} is invalid: must be an integer in [0, 2^63)")


def _load(args, device: str):
    """The task; a toy's size caps follow the resolved device (a GPU takes larger DLNs)."""
    if args.toy is not None:
        from ..toys import parse_toy
        return parse_toy(args.toy, device=device)
    from ..checkpoints import load_task
    return load_task(args.checkpoint, data_dir=args.data_dir)


def cmd_calibrate(args) -> int:
    _check(args)  # before anything imports torch: a bad flag is answered at once
    from ..calibrate import DEFAULT_BUDGET_SECONDS, auto_calibrate
    from ..devices import resolve_device

    device = str(resolve_device(args.device))  # auto -> cuda:0 or cpu; an absent GPU is bad input (exit 2)
    task = _load(args, device)
    budget = args.budget_seconds if args.budget_seconds is not None else DEFAULT_BUDGET_SECONDS
    cancel, box = threading.Event(), {}

    def work():
        try:
            box["rec"] = auto_calibrate(task, budget_seconds=budget, seed=args.seed, cancel=cancel,
                                        on_cell=_print_cell, on_attempt=_print_attempt, device=device)
        except BaseException as exc:  # re-raised in the main thread: bad input still exits 2
            box["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:  # Ctrl-C: stop the runs, keep what they found
        print("stopping: finishing with a partial result…", file=sys.stderr)
        cancel.set()
        worker.join()
    if "error" in box:
        raise box["error"]
    rec = box["rec"]
    print(json.dumps(rec.to_dict(task)) if args.json else format_recommendation(rec, task))
    return 0


def _print_cell(cell) -> None:
    print(f"pilot  ε {cell.epsilon:.3g}  λ̂ {cell.lambda_hat:.4g}  MALA {cell.mala:.2f}  "
          f"{', '.join(cell.flags) or cell.status}  ({cell.seconds:.0f} s)", file=sys.stderr, flush=True)


def _print_attempt(attempt) -> None:
    print(f"full   ε {attempt.epsilon:.3g} × {attempt.config.draws} draws ({attempt.config.sampler})  "
          f"λ̂ {attempt.lambda_hat:.4g}  {', '.join(attempt.flags) or attempt.status}  ({attempt.seconds:.0f} s)",
          file=sys.stderr, flush=True)


def format_recommendation(rec, task) -> str:
    lines = [f"model        {task.name}"]
    if rec.found:
        c = rec.config
        lines += [f"recommended  ε={c.epsilon:.3g} γ={c.gamma:g} nβ={rec.nbeta:.4g} sampler={c.sampler} "
                  f"chains={c.chains} draws={c.draws} burnin={c.burnin} thin={c.thin} batch={c.batch_size}",
                  f"λ̂            {rec.lambda_hat:.4g} ± {rec.lambda_hat_se:.3g}"]
    lines.append(f"confirmed    {'yes' if rec.confirmed else 'no'}  (status {rec.status})")
    if rec.lambda_range:
        lines.append(f"λ̂ range      {rec.lambda_range[0]:.4g} … {rec.lambda_range[1]:.4g} over all runs")
    if task.true_lambda is not None and not math.isnan(task.true_lambda):
        lines.append(f"true λ       {task.true_lambda:.4g}")
    lines += [f"  - {r}" for r in rec.reasons]
    lines.append(f"time         {rec.seconds:.0f} s of {rec.budget_seconds:.0f} s budget")
    return "\n".join(lines)
