"""Datasets: MNIST-1D generated offline (the default), MNIST and Fashion-MNIST via torchvision.

Nothing here downloads unless it has to: MNIST-1D is generated with the mnist1d package's
`make_dataset` (never its downloading `get_dataset`); MNIST / Fashion-MNIST are read from IDX
files (plain or .gz) in a data directory, from Debian's `dataset-fashion-mnist` package, and
only then downloaded by torchvision.
"""

from __future__ import annotations

import functools
import gzip
import os
import pathlib
import shutil
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .config import InputError
from . import paths

if TYPE_CHECKING:  # torch is imported where tensors are made: the CLI reads DATASETS without it
    import torch

DATASETS = ("mnist1d", "mnist", "fashion-mnist")
MNIST1D_SEED = 42  # the mnist1d package's own default: the dataset everyone compares against
# For equal-n class subsets, MNIST-1D is drawn from a larger pool made by the same generator,
# so that K = 2 still has 4000 training points (about 2200 per digit in this pool).
MNIST1D_POOL_SAMPLES = 27_500
SAME_N = {"mnist1d": 4000, "mnist": 12_000, "fashion-mnist": 12_000}
SAME_N_TEST = {"mnist1d": 1000, "mnist": 2000, "fashion-mnist": 2000}
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DEBIAN_FASHION_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
_TORCHVISION_CLASS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


class DatasetError(InputError):
    pass


@dataclass
class Dataset:
    name: str
    classes: int
    same_n: bool
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])


def default_data_dir() -> pathlib.Path:
    """$LLC_DATA_DIR, else the per-user cache (see llc_core.paths)."""
    return paths.data_dir()


def load_dataset(name: str, classes: int = 10, same_n: bool = False, data_dir=None,
                 allow_download: bool | None = None) -> Dataset:
    """Training and test tensors for digits {0..classes−1}; float inputs, long labels.

    Downloads only as a last resort, and never when LLC_NO_DOWNLOAD=1 (the tests set it).
    """
    if allow_download is None:
        allow_download = os.environ.get("LLC_NO_DOWNLOAD") != "1"
    if name not in DATASETS:
        raise DatasetError(f"dataset {name!r} is unknown: use one of {', '.join(DATASETS)}")
    if not isinstance(classes, int) or not 2 <= classes <= 10:
        raise DatasetError(f"classes={classes!r} is invalid: must be an integer in [2, 10]")
    if name == "mnist1d":
        x, y, xt, yt = _mnist1d(pool=same_n)
    else:
        x, y, xt, yt = _idx_dataset(name, data_dir, allow_download)
    x, y = _subset(x, y, classes, SAME_N[name] if same_n else None, name)
    xt, yt = _subset(xt, yt, classes, SAME_N_TEST[name] if same_n else None, name)
    return Dataset(name, classes, same_n, x, y, xt, yt)


def _subset(x, y, classes, n, name):
    import torch

    keep = torch.nonzero(y < classes).squeeze(1)
    if n is not None:
        if len(keep) < n:
            raise DatasetError(f"{name} has only {len(keep)} examples of classes 0..{classes - 1}, "
                               f"fewer than the {n} an equal-n subset needs")
        keep = keep[:n]
    return x[keep].contiguous(), y[keep].contiguous()


@functools.lru_cache(maxsize=2)
def _mnist1d(pool: bool):
    arrays = _mnist1d_arrays(pool)
    import torch

    as_x = lambda a: torch.tensor(a, dtype=torch.float32).unsqueeze(1)  # noqa: E731  (N, 1, 40)
    as_y = lambda a: torch.tensor(a, dtype=torch.long)  # noqa: E731
    return as_x(arrays["x"]), as_y(arrays["y"]), as_x(arrays["x_test"]), as_y(arrays["y_test"])


def _mnist1d_arrays(pool: bool) -> dict:
    """Generated once (the pool takes ~9 s), then read back from a .npz in the data dir.

    Generation is deterministic for the fixed seed, so the file is only a cache: a missing
    or unreadable one is simply made again."""
    samples = MNIST1D_POOL_SAMPLES if pool else 5000
    path = default_data_dir() / f"mnist1d_seed{MNIST1D_SEED}_{samples}.npz"
    keys = ("x", "y", "x_test", "y_test")
    try:
        with np.load(path) as f:
            return {k: f[k] for k in keys}
    except (OSError, KeyError, ValueError):
        pass
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args(as_dict=False)
    args.seed, args.num_samples = MNIST1D_SEED, samples
    data = make_dataset(args)
    arrays = {k: np.asarray(data[k]) for k in keys}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)
    except OSError:
        pass  # a read-only data dir only costs regeneration next time
    return arrays


def _idx_dataset(name, data_dir, allow_download):
    root = _find_or_fetch(name, data_dir, allow_download)
    from torchvision import datasets

    cls = getattr(datasets, _TORCHVISION_CLASS[name])
    try:
        train, test = cls(str(root), train=True, download=False), cls(str(root), train=False, download=False)
    except Exception as exc:  # torchvision raises assorted errors for truncated / foreign files
        raise DatasetError(f"{name} IDX files in {root / _TORCHVISION_CLASS[name] / 'raw'} could not "
                           f"be read ({type(exc).__name__}: {exc}); replace them with intact copies") from None
    # Fixed scaling (not per-subset statistics) so a checkpoint's inputs are reproducible.
    as_x = lambda d: (d.data.float().unsqueeze(1) / 255.0 - 0.5) / 0.5  # noqa: E731
    return as_x(train), train.targets.long(), as_x(test), test.targets.long()


def _find_or_fetch(name, data_dir, allow_download) -> pathlib.Path:
    """A torchvision root whose <Class>/raw holds the four uncompressed IDX files."""
    root = pathlib.Path(data_dir) if data_dir else default_data_dir()
    raw = root / _TORCHVISION_CLASS[name] / "raw"
    if _complete(raw):
        return root
    sources = [root, root / name, root / _TORCHVISION_CLASS[name], raw]
    if name == "fashion-mnist":
        sources.append(DEBIAN_FASHION_DIR)
    for src in sources:
        if _complete(src):
            _install(src, raw)
            return root
    if allow_download and _try_download(name, root):
        return root
    tried = ", ".join(str(s) for s in sources)
    extra = " or `apt-get install dataset-fashion-mnist`" if name == "fashion-mnist" else ""
    raise DatasetError(
        f"{name} not found (looked in {tried}). Provide it either by running once with network "
        f"access (torchvision downloads it into {root}), or by putting the four IDX files "
        f"({', '.join(IDX_FILES)}, plain or .gz) into --data-dir / $LLC_DATA_DIR{extra}.")


def _complete(folder: pathlib.Path) -> bool:
    return all(_idx_path(folder, f) is not None for f in IDX_FILES)


def _idx_path(folder: pathlib.Path, stem: str):
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _install(src: pathlib.Path, raw: pathlib.Path) -> None:
    """Copy (decompressing .gz) the IDX files into torchvision's raw folder, atomically each."""
    try:
        raw.mkdir(parents=True, exist_ok=True)
        for stem in IDX_FILES:
            path, target = _idx_path(src, stem), raw / stem
            if path == target:
                continue
            tmp = target.with_suffix(".partial")
            with (gzip.open(path) if path.suffix == ".gz" else open(path, "rb")) as fin, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout)
            tmp.replace(target)
    except (OSError, EOFError) as exc:
        raise DatasetError(f"could not prepare IDX files from {src} into {raw}: {exc}") from exc


def _try_download(name, root) -> bool:
    from torchvision import datasets

    cls = getattr(datasets, _TORCHVISION_CLASS[name])
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)  # offline machines fail fast instead of hanging
    try:
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)
        return True
    except Exception:
        return False
    finally:
        socket.setdefaulttimeout(old)


def write_idx(path: pathlib.Path, array: np.ndarray) -> None:
    """Write a uint8 array in IDX format (for tests and small hand-made datasets)."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())
