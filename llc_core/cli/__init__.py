"""Command line: `llc <command>` (installed) or `python -m llc_core <command>`; one module per
command in this package, each with `register(sub)`. The contract is in docs/cli.md.

Exit codes: 0 a finished run (even negative or diverged); 2 invalid input, with one line on
stderr naming the value and what is allowed; 130 a run stopped by Ctrl-C, which still prints its
partial result (`"completed": false` in the JSON). Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import sys
import threading

from ..config import SAMPLERS, InputError as LLCInputError, SGLDConfig, check_device
from ..limits import (MAX_BURNIN, MAX_CHAINS, MAX_DRAWS, MAX_EPSILON, MAX_GAMMA, MAX_NBETA, MAX_NOISE_SCALE,
                      MAX_SEED, MAX_THIN)

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's convention for a run stopped by Ctrl-C
MODEL_DEFAULT = "default: the model's own calibrated value"


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

# flag -> (config field, converter, help). Ranges are the library's (llc_core/limits.py).
HYPER_FLAGS = {
    "--epsilon": ("epsilon", _number("--epsilon"), f"SGLD step size ε, in (0, {MAX_EPSILON:g}]"),
    "--gamma": ("gamma", _number("--gamma"), f"localization strength γ towards w*, in [0, {MAX_GAMMA:g}]"),
    "--nbeta": ("nbeta", _nbeta, f"inverse temperature nβ: auto (= n/log n, n the training-set size) "
                                 f"or a number in (0, {MAX_NBETA:g}]"),
    "--chains": ("chains", _number("--chains", int), f"independent chains, 1..{MAX_CHAINS}"),
    "--draws": ("draws", _number("--draws", int), f"draws per chain after burn-in, 1..{MAX_DRAWS:,}"),
    "--burnin": ("burnin", _number("--burnin", int), f"burn-in steps per chain, 0..{MAX_BURNIN:,}"),
    "--thin": ("thin", _number("--thin", int), f"SGLD steps per draw, 1..{MAX_THIN:,}"),
    "--batch-size": ("batch_size", _number("--batch-size", int), "minibatch size m, 1..n"),
    "--noise-scale": ("noise_scale", _number("--noise-scale"),
                      f"noise multiplier σ in [0, {MAX_NOISE_SCALE:g}]; 1 samples the tempered posterior"),
    "--seed": ("seed", _number("--seed", int), f"run seed, 0..{MAX_SEED} (chain seeds are spawned from it)"),
    "--sampler": ("sampler", _choice("--sampler", SAMPLERS),
                  f"SG-MCMC update rule: {', '.join(SAMPLERS)} (default: the model's, sgld); "
                  "rmsprop_sgld preconditions drift and noise by RMSProp's running mean of g²"),
}


# Each command module has `register(sub)` (adds its subparser, with `handler=` its function).
COMMAND_MODULES = ("estimate", "calibrate", "sweep", "variability", "train", "models", "build_cache", "dimensions")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from .. import __version__

    parser = _Parser(prog="llc", description="Estimate the local learning coefficient λ̂ of a neural network "
                     "with SGLD. Exit codes: 0 done, 2 invalid input, 130 stopped by Ctrl-C (partial result).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


class _HelpWithDefaults(argparse.HelpFormatter):
    """Appends "(default: X)" to a flag's help when it has a real default its text does not give."""

    def _get_help_string(self, action):
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "default" in text or unset or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def add_command(sub, name: str, summary: str) -> argparse.ArgumentParser:
    """A subcommand in the shared style: its summary in `llc --help`, defaults shown in its help."""
    return sub.add_parser(name, help=summary, description=summary, formatter_class=_HelpWithDefaults)


def add_hyper_flags(parser) -> None:
    """The SGLD hyperparameter flags (absent unless given: the model's defaults fill the rest)."""
    group = parser.add_argument_group("SGLD settings", f"each optional ({MODEL_DEFAULT})")
    for flag, (field, convert, text) in HYPER_FLAGS.items():
        group.add_argument(flag, type=convert, default=argparse.SUPPRESS, metavar=field.upper(), help=text)


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


@contextlib.contextmanager
def ctrl_c_cancels():
    """Within the block, Ctrl-C (SIGINT) sets the yielded event instead of raising, so a run can
    end at its next step and still report what it has; a second Ctrl-C interrupts at once."""
    cancel = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield cancel  # signal handlers can only be installed from the main thread
        return

    def on_sigint(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("\nstopping after this step (Ctrl-C again to abort)…", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `llc` console command and of `python -m llc_core`."""
    try:
        argv = sys.argv[1:] if argv is None else argv
        args = build_parser().parse_args(_join_negative_values(argv))
        return args.handler(args)
    except (LLCInputError, FileNotFoundError) as exc:
        print(f"error: {exc}".splitlines()[0], file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # outside a run, or a second Ctrl-C: stop without a traceback
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and friends
        sys.stderr.close()
        return EXIT_OK


def config_for(task, args) -> SGLDConfig:
    """The task's defaults with the hyperparameter flags given on the command line."""
    return task.defaults.replace(**_overrides(args)).validate(task.n)


def check_flags(args) -> None:
    """Refuse a bad hyperparameter flag before the model is built (which imports torch: seconds);
    for the commands that take them (config_for). Every check but batch_size ≤ n is the value's
    own, so a default config gives the same verdict as the task's."""
    SGLDConfig().replace(**_overrides(args)).validate()


def _overrides(args) -> dict:
    dests = {field: flag[2:].replace("-", "_") for flag, (field, _, _) in HYPER_FLAGS.items()}
    overrides = {field: getattr(args, dest) for field, dest in dests.items() if hasattr(args, dest)}
    if hasattr(args, "device"):
        overrides["device"] = args.device
    return overrides
