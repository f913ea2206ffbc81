"""Command line: `python -m llc_core estimate|train|models|build-cache` (DESIGN.md §5).

Invalid input exits 2 with one line naming the value and what is allowed; a finished run
(even negative or diverged) exits 0. Progress goes to stderr, `--json` output to stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from .config import InputError as LLCInputError, SGLDConfig

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's default prints usage over several lines
        raise LLCInputError(f"{self.prog}: {message}")


def _number(name: str, kind=float):
    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{name}={text!r} is not {what}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{name}={text!r} must be finite")
        return value
    return convert


def _nbeta(text: str):
    if text == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--nbeta={text!r} is invalid: use auto or a number > 0") from None


HYPER_FLAGS = {  # flag -> (config field, converter)
    "--epsilon": ("epsilon", _number("--epsilon")),
    "--gamma": ("gamma", _number("--gamma")),
    "--nbeta": ("nbeta", _nbeta),
    "--chains": ("chains", _number("--chains", int)),
    "--draws": ("draws", _number("--draws", int)),
    "--burnin": ("burnin", _number("--burnin", int)),
    "--thin": ("thin", _number("--thin", int)),
    "--batch-size": ("batch_size", _number("--batch-size", int)),
    "--noise-scale": ("noise_scale", _number("--noise-scale")),
    "--seed": ("seed", _number("--seed", int)),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="llc_core", description="Local learning coefficient (λ̂) estimation")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    est = sub.add_parser("estimate", help="estimate λ̂ for a checkpoint or a known-λ toy")
    source = est.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="path to a .safetensors checkpoint (JSON sidecar beside it)")
    source.add_argument("--toy", help="crossing:P1,P2,... or dln:H0,...,HL:rR")
    est.add_argument("--data-dir", help="where MNIST / Fashion-MNIST files live")
    for flag, (_, convert) in HYPER_FLAGS.items():
        est.add_argument(flag, type=convert, default=argparse.SUPPRESS)
    est.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    est.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    tr = sub.add_parser("train", help="train an MLP or CNN and save a checkpoint")
    tr.add_argument("--dataset", required=True, choices=["mnist1d", "mnist", "fashion-mnist"])
    tr.add_argument("--data-dir")
    tr.add_argument("--arch", required=True, choices=["mlp", "cnn"])
    tr.add_argument("--classes", type=_number("--classes", int), default=10)
    tr.add_argument("--seed", type=_number("--seed", int), default=0)
    tr.add_argument("--epochs", type=_number("--epochs", int), default=None)
    tr.add_argument("--same-n", action="store_true",
                    help="use the same number of training points for every class count")
    tr.add_argument("--out", required=True, help="output .safetensors path")

    sub.add_parser("models", help="list the cached checkpoints with their metadata")

    bc = sub.add_parser("build-cache", help="rebuild cached_models/ from scratch (MNIST-1D)")
    bc.add_argument("--out", default="cached_models")
    bc.add_argument("--seeds", type=_number("--seeds", int), default=3)
    return parser


def _join_negative_values(argv: list[str]) -> list[str]:
    """`--epsilon -1e-3` -> `--epsilon=-1e-3`: argparse would take -1e-3 for an option and
    report a missing value instead of the bad number."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in HYPER_FLAGS and arg.startswith("-") and arg[1:2].isdigit():
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    try:
        argv = sys.argv[1:] if argv is None else argv
        args = build_parser().parse_args(_join_negative_values(argv))
        return COMMANDS[args.command](args)
    except (LLCInputError, FileNotFoundError) as exc:
        print(f"error: {exc}".splitlines()[0], file=sys.stderr)
        return EXIT_BAD_INPUT


def _config_for(task, args) -> SGLDConfig:
    dests = {field: flag[2:].replace("-", "_") for flag, (field, _) in HYPER_FLAGS.items()}
    overrides = {field: getattr(args, dest) for field, dest in dests.items() if hasattr(args, dest)}
    return task.defaults.replace(**overrides, device=args.device).validate(task.n)


def cmd_estimate(args) -> int:
    from .sampler import SGLDRun
    from .toys import parse_toy

    if args.toy is not None:
        task = parse_toy(args.toy)
    else:
        from .checkpoints import load_task
        task = load_task(args.checkpoint, data_dir=args.data_dir)
    config = _config_for(task, args)
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
                 f"{result.wall_seconds:.1f} s ({result.path} path)")
    return "\n".join(lines)


def cmd_train(args) -> int:
    from .training import train_to_checkpoint

    train_to_checkpoint(dataset=args.dataset, arch=args.arch, classes=args.classes, seed=args.seed,
                        epochs=args.epochs, out=args.out, data_dir=args.data_dir,
                        same_n=args.same_n, progress=True)
    return 0


def cmd_models(args) -> int:
    from .checkpoints import list_checkpoints

    rows = list_checkpoints()
    if not rows:
        print("no checkpoints found")
        return 0
    import os

    print(f"{'path':44} {'dataset':8} {'arch':5} {'K':>2} {'seed':>4} {'params':>8} {'test acc':>8}")
    for meta in rows:
        print(f"{os.path.relpath(meta['path']):44} {meta['dataset']:8} {meta['arch']['kind']:5} {meta['classes']:>2} "
              f"{meta['seed']:>4} {meta['num_params']:>8,} {meta['test_accuracy']:>8.3f}")
    return 0


def cmd_build_cache(args) -> int:
    from .training import build_cache

    build_cache(args.out, seeds=args.seeds)
    return 0


COMMANDS = {"estimate": cmd_estimate, "train": cmd_train, "models": cmd_models,
            "build-cache": cmd_build_cache}
