"""`estimate`: λ̂ for a checkpoint or a known-λ toy. Ctrl-C stops the run at its next step and
still prints the partial result (`completed: false`), exit code 130."""

from __future__ import annotations

import json
import sys

from ..config import parameters_text
from ..limits import MAX_CROSSING_PARAMS, MAX_DLN_LAYERS, MAX_DLN_WIDTH
from . import (DEVICE_HELP, EXIT_INTERRUPTED, EXIT_OK, add_command, add_hyper_flags, check_flags, config_for,
               ctrl_c_cancels, device_arg)


def register(sub) -> None:
    est = add_command(sub, "estimate", "estimate λ̂ for a checkpoint or a known-λ toy")
    source = est.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="PATH",
                        help="a .safetensors checkpoint with its .json sidecar beside it (see `llc models`)")
    source.add_argument("--toy", metavar="SPEC", help=f"a known-λ toy: crossing:P1,P2,... (1..{MAX_CROSSING_PARAMS} "
                        f"powers, each 1..10) or dln:H0,H1,...,HL:rR (deep linear network: 2..{MAX_DLN_LAYERS + 1} "
                        f"widths, each 1..{MAX_DLN_WIDTH}; teacher rank R)")
    est.add_argument("--data-dir", metavar="DIR", help="where MNIST / Fashion-MNIST IDX files live "
                     "(default: $LLC_DATA_DIR, else ~/.cache/llc_lab/data)")
    add_hyper_flags(est)
    est.add_argument("--device", default="auto", type=device_arg, help=DEVICE_HELP)
    est.add_argument("--json", action="store_true", help="print one JSON object on stdout (keys: docs/cli.md)")
    est.set_defaults(handler=cmd_estimate)


def load_source(args):
    """The LLCTask named by --toy or --checkpoint."""
    if args.toy is not None:
        from ..toys import parse_toy
        return parse_toy(args.toy)
    from ..checkpoints import load_task
    return load_task(args.checkpoint, data_dir=args.data_dir)


def cmd_estimate(args) -> int:
    check_flags(args)  # before anything imports torch: a bad flag is answered at once
    from ..sampler import SGLDRun

    task = load_source(args)
    config = config_for(task, args)
    with ctrl_c_cancels() as cancel:
        run = SGLDRun(task, config, cancel=cancel)
        _run_with_bar(run, config)
    result = run.result
    if args.json:
        print(json.dumps(result.to_json_dict()))
    else:
        print(format_result(result, task.name))
    # a run that ended early because every chain diverged is a finished run, not an interrupted one
    return EXIT_INTERRUPTED if cancel.is_set() else EXIT_OK


def _run_with_bar(run, config) -> None:
    from tqdm import tqdm

    with tqdm(total=config.total_steps, file=sys.stderr, unit="step", mininterval=1.0) as bar:
        for progress in run:
            bar.update(progress.step - bar.n)
            bar.set_postfix_str(f"λ̂={progress.lambda_hat:.4g} {progress.status}")


def format_result(result, name: str) -> str:
    lines = [
        f"model        {name}  ({parameters_text(result.num_params)}, n={result.n:,})",
        f"λ̂            {result.lambda_hat:.4g} ± {result.lambda_hat_std:.3g} (std over "
        f"{result.chains_used} chains; s.e. {result.lambda_hat_se:.3g})",
        f"per chain    {', '.join(f'{v:.4g}' for v in result.lambda_hat_per_chain)}",
    ]
    if result.true_lambda is not None:
        lines.append(f"true λ       {result.true_lambda:.4g}")
    if result.target_lambda is not None:
        lines.append(f"finite-n     {result.target_lambda:.4g}  (exact nβ·E[K] at this n)")
    lines += [
        f"L_n(w*)      {result.init_loss:.6g}",
        f"nβ           {result.nbeta:.6g}  [{result.nbeta_rule}]",
        f"status       {result.status}" + ("" if result.completed else
                                           f"  (stopped: partial, {result.steps_done:,} steps)"),
    ]
    lines += [f"  [{f.code}] {f.message}\n      fix: {f.fix}" for f in result.warnings]
    lines.append(f"speed        {result.steps_per_second:,.0f} chain-steps/s, "
                 f"{result.wall_seconds:.1f} s ({result.path} path, {result.sampler} on {result.device})")
    return "\n".join(lines)
