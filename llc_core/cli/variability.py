"""`variability`: the task-variability experiment (λ̂ against the number of classes, per
architecture) over the shipped checkpoints or given ones, spread over local workers or Ray.

Estimates are cached on disk (see llc_core.variability), so a re-run only samples what is new.
Exit 0 when every checkpoint ran, 1 when some failed, 130 when interrupted (the report then
covers what finished and is labelled partial).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys

from . import HYPER_FLAGS
from .sweep import EXIT_UNIT_FAILED, add_executor_flags, report_end

OVERRIDE_FLAGS = ("--chains", "--draws", "--burnin", "--seed")


def register(sub) -> None:
    var = sub.add_parser("variability", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                         help="λ̂ against the number of classes per architecture, over many checkpoints")
    var.add_argument("--checkpoint", action="append", default=None, metavar="PATH",
                     help="a .safetensors checkpoint; repeat for several (default: every shipped checkpoint)")
    for flag in OVERRIDE_FLAGS:
        var.add_argument(flag, type=HYPER_FLAGS[flag][1], default=argparse.SUPPRESS,
                         help=f"{HYPER_FLAGS[flag][0]} for every run (default: each checkpoint's calibrated setting)")
    var.add_argument("--cache-dir", default=None,
                     help="where finished estimates are cached (default: $LLC_CACHE_DIR/runs or the user cache)")
    add_executor_flags(var, "checkpoints")
    var.add_argument("--json", action="store_true",
                     help="one JSON object per checkpoint per line, then one with the per-architecture fits")
    var.set_defaults(handler=cmd_variability)


def checkpoint_metas(paths: list[str] | None) -> list[dict]:
    from ..checkpoints import CACHE_DIR, list_checkpoints, read_metadata

    if not paths:
        metas = list_checkpoints(CACHE_DIR)
    else:
        metas = [dict(read_metadata(p), path=str(p)) for p in paths]
    return sorted(metas, key=lambda m: (m["arch"]["kind"], m["classes"], m["seed"]))


def cmd_variability(args) -> int:
    from ..config import InputError
    from ..executor import make_executor
    from ..variability import report_text, run_experiment, settings_by_arch, sgld_defaults

    metas = checkpoint_metas(args.checkpoint)
    if not metas:
        raise InputError("no checkpoints found: pass --checkpoint PATH or build the cache (python -m llc_core build-cache)")
    overrides = {HYPER_FLAGS[f][0]: getattr(args, f[2:]) for f in OVERRIDE_FLAGS if hasattr(args, f[2:])}
    for meta in metas:  # bad overrides are reported before any worker starts
        sgld_defaults(meta).replace(**overrides).validate()
    rows, interrupted = [], False
    with make_executor(workers=args.workers, ray=args.ray) as executor:
        try:
            _collect(run_experiment(metas, overrides, executor, folder=args.cache_dir), rows, len(metas), args.json)
        except KeyboardInterrupt:
            interrupted = True
    if args.json:
        from ..variability import summarize
        print(json.dumps({"summary": summarize(rows), "partial": interrupted}, default=_nan_none))
    else:
        print(report_text(rows, settings_by_arch(metas, overrides)))
    failed = sum(r.status == "error" for r in rows)
    return report_end(len(rows), len(metas), interrupted, args.json, "checkpoints") or (EXIT_UNIT_FAILED if failed else 0)


def _collect(rows_iter, rows: list, total: int, as_json: bool) -> None:
    from tqdm import tqdm

    with tqdm(total=total, file=sys.stderr, unit="model", mininterval=0.5) as bar:
        for row in rows_iter:
            rows.append(row)
            bar.update(1)
            bar.set_postfix_str(f"{row.name} λ̂={row.lambda_hat:.3g} {row.status}{' (cached)' if row.cached else ''}")
            if as_json:
                print(json.dumps({k: _nan_none(v) for k, v in dataclasses.asdict(row).items()}), flush=True)


def _nan_none(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value
