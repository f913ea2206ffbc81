"""`estimate`: λ̂ for a checkpoint or a known-λ toy."""

from __future__ import annotations

import json
import sys

from . import DEVICE_HELP, add_hyper_flags, config_for, device_arg


def register(sub) -> None:
    est = sub.add_parser("estimate", help="estimate λ̂ for a checkpoint or a known-λ toy")
    source = est.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="path to a .safetensors checkpoint (JSON sidecar beside it)")
    source.add_argument("--toy", help="crossing:P1,P2,... or dln:H0,...,HL:rR")
    est.add_argument("--data-dir", help="where MNIST / Fashion-MNIST files live")
    add_hyper_flags(est)
    est.add_argument("--device", default="auto", type=device_arg, help=DEVICE_HELP)
    est.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    est.set_defaults(handler=cmd_estimate)


def load_source(args):
    """The LLCTask named by --toy or --checkpoint."""
    if args.toy is not None:
        from ..toys import parse_toy
        return parse_toy(args.toy)
    from ..checkpoints import load_task
    return load_task(args.checkpoint, data_dir=args.data_dir)


def cmd_estimate(args) -> int:
    from ..sampler import SGLDRun

    task = load_source(args)
    config = config_for(task, args)
    run = SGLDRun(task, config)
    _run_with_bar(run, config)
    result = run.result
    if args.json:
        print(json.dumps(result.to_json_dict()))
    else:
        print(format_result(result, task.name))
    return 0


def _run_with_bar(run, config) -> None:
    from tqdm import tqdm

    with tqdm(total=config.total_steps, file=sys.stderr, unit="step", mininterval=1.0) as bar:
        for progress in run:
            bar.update(progress.step - bar.n)
            bar.set_postfix_str(f"λ̂={progress.lambda_hat:.4g} {progress.status}")


def format_result(result, name: str) -> str:
    lines = [
        f"model        {name}  ({result.num_params:,} parameters, n={result.n:,})",
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
        f"status       {result.status}",
    ]
    lines += [f"  [{f.code}] {f.message}\n      fix: {f.fix}" for f in result.warnings]
    lines.append(f"speed        {result.steps_per_second:,.0f} chain-steps/s, "
                 f"{result.wall_seconds:.1f} s ({result.path} path, {result.sampler} on {result.device})")
    return "\n".join(lines)
