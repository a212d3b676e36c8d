"""The data set registry: name -> where to look, how to read, how to get it when it is missing."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .idx import find_idx, read_idx, read_pickle
from .imageset import DataError, ImageSet

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
MNIST_CLASSES = tuple(str(i) for i in range(10))
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class DataSplits:
    train: ImageSet
    test: ImageSet

    @property
    def classes(self) -> tuple[str, ...]:
        return self.test.classes


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    roots: tuple[str, ...]  # folders searched when no root is given, first match wins
    reader: Callable[[Path, str], DataSplits]
    how_to_get: str  # appended to the "missing" error


def _read_idx_splits(root: Path, name: str, classes: tuple[str, ...]) -> DataSplits:
    splits = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(find_idx(root, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(find_idx(root, f"{prefix}-labels-idx1-ubyte"))
        splits[split] = ImageSet(
            torch.from_numpy(images.copy()).unsqueeze(1),
            torch.from_numpy(labels.astype(np.int64)),
            classes,
            f"{name}/{split}",
        )
    return DataSplits(**splits)


def _read_cifar10(root: Path, name: str) -> DataSplits:
    meta = read_pickle(root / "batches.meta")
    classes = tuple(meta["label_names"])
    parts = [read_pickle(root / f"data_batch_{i}") for i in range(1, 6)]
    test = read_pickle(root / "test_batch")

    def to_set(batches: list[dict], split: str) -> ImageSet:
        x = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches]).reshape(-1, 3, 32, 32)
        y = np.concatenate([np.asarray(b["labels"], dtype=np.int64) for b in batches])
        return ImageSet(torch.from_numpy(x), torch.from_numpy(y), classes, f"{name}/{split}")

    return DataSplits(to_set(parts, "train"), to_set([test], "test"))


def _read_cifar100(root: Path, name: str) -> DataSplits:
    classes = tuple(read_pickle(root / "meta")["fine_label_names"])

    def to_set(split: str) -> ImageSet:
        b = read_pickle(root / split)
        x = np.asarray(b["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(b["fine_labels"], dtype=np.int64)
        return ImageSet(torch.from_numpy(x), torch.from_numpy(y), classes, f"{name}/{split}")

    return DataSplits(to_set("train"), to_set("test"))


def _data_home(sub: str) -> str:
    # Also where `lotterysite data fetch` puts them (fetch.data_home).
    return str(Path(os.environ.get("LOTTERYSITE_DATA", "~/.cache/lotterysite/data")).expanduser() / sub)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "fashion_mnist",
            ("/usr/share/datasets/fashion-mnist", _data_home("fashion-mnist")),
            lambda root, name: _read_idx_splits(root, name, FASHION_MNIST_CLASSES),
            "install Debian's package (apt-get install dataset-fashion-mnist) or point `root` at a folder "
            "holding the four standard idx files, or run `lotterysite data fetch fashion_mnist`",
        ),
        DatasetSpec(
            "mnist",
            ("/usr/share/datasets/mnist", _data_home("mnist")),
            lambda root, name: _read_idx_splits(root, name, MNIST_CLASSES),
            "point `root` at a folder holding train-images-idx3-ubyte(.gz) and the three other standard idx files, "
            "or run `lotterysite data fetch mnist`",
        ),
        DatasetSpec(
            "cifar10",
            (_data_home("cifar-10-batches-py"),),
            _read_cifar10,
            "point `root` at the extracted cifar-10-batches-py folder of the official python archive "
            "(data_batch_1..5, test_batch, batches.meta), or run `lotterysite data fetch cifar10`",
        ),
        DatasetSpec(
            "cifar100",
            (_data_home("cifar-100-python"),),
            _read_cifar100,
            "point `root` at the extracted cifar-100-python folder of the official python archive (train, test, meta), "
            "or run `lotterysite data fetch cifar100`",
        ),
    )
}


# MD5 of every pickle in the official python archives (the values torchvision checks). A pickle can run code when
# read, so any other file is refused unless the recipe says `trust_pickles = true`.
OFFICIAL_MD5 = {
    "cifar10": {
        "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
    },
    "cifar100": {
        "meta": "7973b15100ade9c7d40fb424638fde48",
        "train": "16019d7e3df5f24257cddd939b257f8d",
        "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
    },
}


def _check_pickles(folder: Path, name: str) -> None:
    for file, expected in OFFICIAL_MD5.get(name, {}).items():
        path = folder / file
        if not path.is_file():
            continue  # the reader names a missing file
        h = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != expected:
            raise DataError(
                f"{path}: MD5 {h.hexdigest()} is not the official archive's ({expected}); a pickle can run code when "
                "read, so it is not opened: re-extract the official archive, or set `trust_pickles = true` in the "
                "recipe's [data] table (trust_pickles=True in Python) if you trust this file"
            )


def list_datasets() -> list[str]:
    return sorted(DATASETS)


def load_dataset(name: str, root: str | os.PathLike | None = None, *, trust_pickles: bool = False) -> DataSplits:
    """Read data set `name` from `root`, or from the first of its default folders that exists.

    Pickled data (CIFAR) is read only when each file's MD5 is the official archive's, or with `trust_pickles`.
    """
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; known data sets: {', '.join(list_datasets())}")
    spec = DATASETS[name]
    candidates = [Path(root).expanduser()] if root is not None else [Path(r) for r in spec.roots]
    for folder in candidates:
        if folder.is_dir():
            if not trust_pickles:
                _check_pickles(folder, name)
            try:
                return spec.reader(folder, name)
            except FileNotFoundError as e:
                raise DataError(f"data set {name!r}: {e.filename} is missing; {spec.how_to_get}") from None
    looked = ", ".join(str(c) for c in candidates)
    raise DataError(f"data set {name!r} not found (looked in {looked}); {spec.how_to_get}")
