"""`train`: an MLP or CNN on a dataset, saved as a checkpoint."""

from __future__ import annotations

from . import _number
from ..limits import MAX_EPOCHS


def register(sub) -> None:
    from . import add_command
    from ..data import DATASETS

    tr = add_command(sub, "train", "train an MLP or CNN on digits 0..K-1 and save a checkpoint")
    tr.add_argument("--dataset", required=True, choices=DATASETS, help="training data")
    tr.add_argument("--data-dir", metavar="DIR", help="where MNIST / Fashion-MNIST IDX files live "
                    "(default: $LLC_DATA_DIR, else ~/.cache/llc_lab/data)")
    tr.add_argument("--arch", required=True, choices=["mlp", "cnn"], help="architecture")
    tr.add_argument("--classes", type=_number("--classes", int), default=10, metavar="K",
                    help="number of classes K, 2..10 (digits 0..K-1)")
    tr.add_argument("--seed", type=_number("--seed", int), default=0, help="initialisation and shuffling seed")
    tr.add_argument("--epochs", type=_number("--epochs", int), default=None,
                    help=f"training epochs, 1..{MAX_EPOCHS:,} (default: the dataset's recipe)")
    tr.add_argument("--same-n", action="store_true",
                    help="use the same number of training points for every class count")
    tr.add_argument("--out", required=True, metavar="PATH.safetensors",
                    help="output .safetensors path (the .json sidecar is written beside it)")
    tr.set_defaults(handler=cmd_train)


def cmd_train(args) -> int:
    from ..training import train_to_checkpoint

    train_to_checkpoint(dataset=args.dataset, arch=args.arch, classes=args.classes, seed=args.seed,
                        epochs=args.epochs, out=args.out, data_dir=args.data_dir,
                        same_n=args.same_n, progress=True)
    return 0
