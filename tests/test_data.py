"""Datasets: generated MNIST-1D, IDX files through torchvision's reader, class subsets."""

import numpy as np
import pytest
import torch

from llc_core.data import DatasetError, load_dataset, write_idx


def test_mnist1d_is_generated_offline_with_the_standard_split():
    d = load_dataset("mnist1d")
    assert d.x_train.shape == (4000, 1, 40) and d.x_test.shape == (1000, 1, 40)
    assert set(d.y_train.tolist()) == set(range(10))
    again = load_dataset("mnist1d")
    assert torch.equal(d.x_train, again.x_train)


@pytest.mark.parametrize("k", [2, 5, 10])
def test_class_subsets_with_equal_n(k):
    d = load_dataset("mnist1d", classes=k, same_n=True)
    assert d.n_train == 4000 and len(d.x_test) == 1000
    assert sorted(set(d.y_train.tolist())) == list(range(k))


def test_class_subset_without_equal_n_keeps_every_example_of_those_classes():
    full, two = load_dataset("mnist1d"), load_dataset("mnist1d", classes=2)
    assert two.n_train == int((full.y_train < 2).sum())


@pytest.mark.parametrize("kwargs,word", [({"name": "cifar"}, "cifar"), ({"classes": 1}, "classes=1"),
                                         ({"classes": 11}, "classes=11")])
def test_bad_dataset_arguments(kwargs, word):
    args = {"name": "mnist1d", **kwargs}
    with pytest.raises(DatasetError, match=word):
        load_dataset(args.pop("name"), **args)


def make_idx_dir(folder, n_train=60, n_test=20, gz=False, seed=0):
    """Four small IDX files in the layout torchvision expects to find raw."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 256, size=(n, 28, 28))
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return folder


@pytest.mark.parametrize("name,gz", [("mnist", False), ("fashion-mnist", True)])
def test_idx_files_load_through_torchvision(tmp_path, name, gz):
    make_idx_dir(tmp_path / "flat", gz=gz)
    d = load_dataset(name, data_dir=tmp_path / "flat", classes=10)
    assert d.x_train.shape == (60, 1, 28, 28) and d.y_train.tolist()[:3] == [0, 1, 2]
    assert -1.0 <= float(d.x_train.min()) and float(d.x_train.max()) <= 1.0
    sub = load_dataset(name, data_dir=tmp_path / "flat", classes=3)
    assert sorted(set(sub.y_train.tolist())) == [0, 1, 2] and sub.n_train == 18


def test_missing_dataset_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr("llc_core.data.DEBIAN_FASHION_DIR", tmp_path / "nowhere")
    with pytest.raises(DatasetError) as err:
        load_dataset("fashion-mnist", data_dir=tmp_path / "empty")
    text = str(err.value)
    assert "network access" in text and "IDX files" in text and "--data-dir" in text
    assert "dataset-fashion-mnist" in text


def test_truncated_idx_file_is_an_error_not_a_crash(tmp_path):
    folder = make_idx_dir(tmp_path / "bad")
    blob = (folder / "train-images-idx3-ubyte").read_bytes()
    (folder / "train-images-idx3-ubyte").write_bytes(blob[:1000])
    with pytest.raises(DatasetError, match="could not be read"):
        load_dataset("mnist", data_dir=folder)
