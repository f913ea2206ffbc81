"""`build-cache`: rebuild cached_models/ from scratch (MNIST-1D)."""

from __future__ import annotations

from . import _number


def register(sub) -> None:
    bc = sub.add_parser("build-cache", help="rebuild cached_models/ from scratch (MNIST-1D)")
    bc.add_argument("--out", default="cached_models")
    bc.add_argument("--seeds", type=_number("--seeds", int), default=3)
    bc.set_defaults(handler=cmd_build_cache)


def cmd_build_cache(args) -> int:
    from ..training import build_cache

    build_cache(args.out, seeds=args.seeds)
    return 0
