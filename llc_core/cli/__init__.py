"""Command line: `python -m llc_core <command>`, one module per command in this package.

Invalid input exits 2 with one line naming the value and what is allowed; a finished run
(even negative or diverged) exits 0. Progress goes to stderr, `--json` output to stdout.
"""

from __future__ import annotations

import argparse
import math
import sys

from ..config import SAMPLERS, InputError as LLCInputError, SGLDConfig, check_device

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


def _choice(name: str, allowed: tuple):
    def convert(text: str):
        if text not in allowed:
            raise argparse.ArgumentTypeError(f"{name}={text!r} is invalid: use one of {', '.join(allowed)}")
        return text
    return convert


def device_arg(text: str) -> str:
    """--device: auto, cpu, cuda or cuda:N (whether that GPU exists is checked when the run starts)."""
    try:
        return check_device(text)
    except LLCInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


DEVICE_HELP = "auto (the GPU when there is one, else cpu), cpu, cuda or cuda:N (default: auto)"

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
    "--sampler": ("sampler", _choice("--sampler", SAMPLERS)),
}
FLAG_HELP = {
    "--sampler": f"SG-MCMC update rule: {', '.join(SAMPLERS)} (default: the model's, sgld); "
                 "rmsprop_sgld preconditions drift and noise by RMSProp's running mean of g²",
}


# Each command module has `register(sub)` (adds its subparser, with `handler=` its function).
COMMAND_MODULES = ("estimate", "train", "models", "build_cache")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = _Parser(prog="llc_core", description="Local learning coefficient (λ̂) estimation")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def add_hyper_flags(parser) -> None:
    """The SGLD hyperparameter flags (absent unless given: the model's defaults fill the rest)."""
    for flag, (_, convert) in HYPER_FLAGS.items():
        parser.add_argument(flag, type=convert, default=argparse.SUPPRESS, help=FLAG_HELP.get(flag))


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
        return args.handler(args)
    except (LLCInputError, FileNotFoundError) as exc:
        print(f"error: {exc}".splitlines()[0], file=sys.stderr)
        return EXIT_BAD_INPUT


def config_for(task, args) -> SGLDConfig:
    """The task's defaults with the hyperparameter flags given on the command line."""
    dests = {field: flag[2:].replace("-", "_") for flag, (field, _) in HYPER_FLAGS.items()}
    overrides = {field: getattr(args, dest) for field, dest in dests.items() if hasattr(args, dest)}
    return task.defaults.replace(**overrides, device=args.device).validate(task.n)
