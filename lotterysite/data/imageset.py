"""`ImageSet`: uint8 images, int64 labels and class names, with seeded batching."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import LotterysiteError


class DataError(LotterysiteError, ValueError):
    """A data set could not be read; the message names the path and the fix."""


@dataclass(frozen=True)
class ImageSet:
    images: torch.Tensor  # uint8, N x C x H x W
    labels: torch.Tensor  # int64, N
    classes: tuple[str, ...]  # class names, index = label
    name: str = ""

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise DataError(
                f"{self.name}: images must be uint8 N x C x H x W, got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise DataError(
                f"{self.name}: {self.images.shape[0]} images but labels of shape {tuple(self.labels.shape)}"
            )
        if len(self) and int(self.labels.max()) >= len(self.classes):
            raise DataError(f"{self.name}: label {int(self.labels.max())} but only {len(self.classes)} class names")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def subset(self, index) -> ImageSet:
        index = torch.as_tensor(index, dtype=torch.long)
        return ImageSet(self.images[index], self.labels[index], self.classes, self.name)

    def head(self, n: int | None) -> ImageSet:
        return self if n is None or n >= len(self) else self.subset(torch.arange(n))

    def float_images(self) -> torch.Tensor:
        return self.images.float().div_(255.0)

    def batches(
        self, batch_size: int, *, shuffle: bool = False, seed: int = 0, device: torch.device | str = "cpu"
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (float images in [0, 1], labels) on `device`; shuffled reproducibly from `seed`."""
        for idx in batch_indices(len(self), batch_size, shuffle=shuffle, seed=seed):
            x = self.images[idx].to(device, non_blocking=True).float().div_(255.0)
            yield x, self.labels[idx].to(device, non_blocking=True)


def batch_indices(n: int, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> Iterator[torch.Tensor]:
    """Sample indices of consecutive batches of `n` samples, in order or shuffled reproducibly from `seed` (every
    batched set draws its epochs this way, so one seed gives the same order whatever holds the images)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def foolbox_samples(prefix: str = "cifar10") -> ImageSet:
    """The real test images shipped inside the `foolbox` wheel (`cifar10`, `cifar100`, `fashionMNIST`, `mnist`).

    The files are read by path: importing foolbox itself needs eagerpy, which we do not depend on.
    """
    from PIL import Image

    from ._registry import CIFAR10_CLASSES, FASHION_MNIST_CLASSES

    spec = importlib.util.find_spec("foolbox")
    if spec is None or spec.origin is None:
        raise DataError(
            "foolbox is not installed; install its wheel without dependencies: pip install --no-deps foolbox"
        )
    folder = Path(spec.origin).parent / "data"
    files = sorted(folder.glob(f"{prefix}_*.png"))
    if not files:
        raise DataError(f"no {prefix}_*.png files in {folder}; reinstall foolbox: pip install --no-deps foolbox")
    images, labels = [], []
    for f in files:
        label = int(re.match(rf"{re.escape(prefix)}_\d+_(\d+)\.png", f.name).group(1))
        arr = np.asarray(Image.open(f))
        images.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
        labels.append(label)
    classes = {
        "cifar10": CIFAR10_CLASSES,
        "fashionMNIST": FASHION_MNIST_CLASSES,
        "mnist": tuple(str(i) for i in range(10)),
        "cifar100": tuple(f"class_{i}" for i in range(100)),
    }[prefix]
    return ImageSet(torch.from_numpy(np.stack(images)), torch.tensor(labels), classes, f"foolbox:{prefix}")
