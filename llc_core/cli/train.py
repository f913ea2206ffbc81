"""`train`: an MLP or CNN on a dataset, saved as a checkpoint."""

from __future__ import annotations

from . import _number


def register(sub) -> None:
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
    tr.set_defaults(handler=cmd_train)


def cmd_train(args) -> int:
    from ..training import train_to_checkpoint

    train_to_checkpoint(dataset=args.dataset, arch=args.arch, classes=args.classes, seed=args.seed,
                        epochs=args.epochs, out=args.out, data_dir=args.data_dir,
                        same_n=args.same_n, progress=True)
    return 0
