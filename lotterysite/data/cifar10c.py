"""Reader for a downloaded CIFAR-10-C folder: one <corruption>.npy per corruption (5 severities x 10 000 rows,
severity 1 first) and labels.npy. Generated corruptions (`lotterysite.corruptions`) use the same names, so the
rest of the system cannot tell the two apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ._registry import CIFAR10_CLASSES
from .imageset import DataError, ImageSet


def cifar10c_corruptions(root: str | Path) -> list[str]:
    """Corruption names available in a CIFAR-10-C folder (file stems, labels.npy excluded)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"CIFAR-10-C folder {root} not found; point the recipe at the extracted CIFAR-10-C folder")
    return sorted(p.stem for p in root.glob("*.npy") if p.stem != "labels")


def load_cifar10c(root: str | Path, corruption: str, severity: int) -> ImageSet:
    """The 10 000 test images of `corruption` at `severity` (1-5) from a CIFAR-10-C folder."""
    root = Path(root)
    if not 1 <= severity <= 5:
        raise DataError(f"severity {severity} is outside 1-5")
    path = root / f"{corruption}.npy"
    if not path.exists():
        have = ", ".join(cifar10c_corruptions(root)) or "none"
        raise DataError(f"{path} not found; corruptions present in {root}: {have}")
    labels_path = root / "labels.npy"
    if not labels_path.exists():
        raise DataError(f"{labels_path} not found; a CIFAR-10-C folder holds labels.npy beside the corruptions")
    try:
        # mmap: a corruption file is 150 MB and we only need one severity's slice of it.
        x = np.load(path, mmap_mode="r", allow_pickle=False)
        y = np.load(labels_path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise DataError(f"{path}: not a CIFAR-10-C .npy file ({e})") from None
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or x.shape[0] % 5 or len(y) != x.shape[0]:
        raise DataError(f"{path}: expected 5*N x H x W x 3 images with as many labels, got {x.shape} and {len(y)}")
    n = x.shape[0] // 5
    rows = slice((severity - 1) * n, severity * n)
    images = torch.from_numpy(np.ascontiguousarray(x[rows]).transpose(0, 3, 1, 2).copy())
    labels = torch.from_numpy(np.asarray(y[rows], dtype=np.int64))
    return ImageSet(images, labels, CIFAR10_CLASSES, f"cifar10c/{corruption}/{severity}")
