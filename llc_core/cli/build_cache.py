"""`build-cache`: rebuild cached_models/ from scratch (MNIST-1D)."""

from __future__ import annotations

from . import _number


def register(sub) -> None:
    from . import add_command

    bc = add_command(sub, "build-cache", "rebuild the shipped checkpoints from scratch (MNIST-1D MLP and CNN, "
                     "K = 2..10; `make models`)")
    bc.add_argument("--out", default="cached_models", metavar="DIR", help="folder to write the checkpoints to")
    bc.add_argument("--seeds", type=_number("--seeds", int), default=3, help="seeds per (architecture, K)")
    bc.set_defaults(handler=cmd_build_cache)


def cmd_build_cache(args) -> int:
    from ..training import build_cache

    build_cache(args.out, seeds=args.seeds)
    return 0
