"""`models`: list the checkpoints (cached_models/ and user_models/)."""

from __future__ import annotations


def register(sub) -> None:
    sub.add_parser("models", help="list the cached checkpoints with their metadata").set_defaults(handler=cmd_models)


def cmd_models(args) -> int:
    from ..checkpoints import list_checkpoints

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
