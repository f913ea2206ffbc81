"""`models`: list the checkpoints (shipped and user-trained) as a table, or as JSON."""

from __future__ import annotations

import json
import os


def register(sub) -> None:
    from . import add_command

    mo = add_command(sub, "models", "list the checkpoints: the shipped ones and those in the user models folder")
    mo.add_argument("--json", action="store_true",
                    help="print one JSON array on stdout: each checkpoint's metadata plus its 'path'")
    mo.set_defaults(handler=cmd_models)


def cmd_models(args) -> int:
    from ..checkpoints import list_checkpoints

    rows = list_checkpoints()
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no checkpoints found")
        return 0
    print(f"{'path':44} {'dataset':8} {'arch':5} {'K':>2} {'seed':>4} {'params':>8} {'test acc':>8}")
    for meta in rows:
        print(f"{os.path.relpath(meta['path']):44} {meta['dataset']:8} {meta['arch']['kind']:5} {meta['classes']:>2} "
              f"{meta['seed']:>4} {meta['num_params']:>8,} {meta['test_accuracy']:>8.3f}")
    return 0
