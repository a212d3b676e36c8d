"""The curse-of-dimensionality study of §5.4 (Fig. 3)."""

from __future__ import annotations

import numpy as np
import torch

from ..config import TrainConfig
from ..data import DataSplits, ImageSet
from ..geometry import measure_model
from ..models import create_model
from ..training import train


def random_vector_angles(dims, samples: int, seed: int = 0) -> dict[str, list]:
    """Mean and std of the angle between pairs of uniform random vectors in [-1, 1]^d, per dimension d.

    Centred uniform vectors: the paper's observation (angles concentrate at 90 degrees) is about directions with
    no preferred orientation; vectors in [0, 1]^d would concentrate near 41 degrees instead.
    """
    rng = np.random.default_rng(seed)
    rows = {"study": [], "dimension": [], "angle_mean": [], "angle_std": [], "accuracy": []}
    for d in dims:
        a = rng.uniform(-1, 1, (samples, d))
        b = rng.uniform(-1, 1, (samples, d))
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))
        for key, value in zip(rows, ("random", d, angle.mean(), angle.std(), float("nan")), strict=True):
            rows[key].append(value)
    return rows


def _angle_stats(model, test: ImageSet, device) -> tuple[float, float, float]:
    geometry, labels = measure_model(model, test.batches(1024, device=device), device=device)
    angle = geometry.angle_to(labels)
    angle = angle[~torch.isnan(angle)]
    return float(angle.mean()), float(angle.std()), float(geometry.correct.float().mean())


def width_sweep(
    arch: str,
    widths,
    data: DataSplits,
    test: ImageSet,
    *,
    epochs: int,
    train_subset: int | None,
    seed: int,
    device,
    progress: bool = True,
) -> dict[str, list]:
    """Angle of test samples to their class direction for `arch` trained at each penultimate width (Fig. 3,
    bottom), plus the untrained model at each width (the paper reports 88.8 +- 6.8 degrees for LeNet-5)."""
    rows = {"study": [], "dimension": [], "angle_mean": [], "angle_std": [], "accuracy": []}
    train_set = data.train.head(train_subset)
    for width in widths:
        torch.manual_seed(seed)
        model = create_model(arch, num_classes=test.num_classes, in_channels=test.in_channels,
                             image_size=test.image_size, feature_dim=width)  # fmt: skip
        untrained = _angle_stats(model, test, device)
        train(model, train_set, TrainConfig(epochs=epochs, seed=seed), device=device, progress=progress,
              desc=f"{arch} width {width}")  # fmt: skip
        trained = _angle_stats(model, test, device)
        for study, (mean, std, acc) in ((arch, trained), (f"{arch} (untrained)", untrained)):
            for key, value in zip(rows, (study, width, mean, std, acc), strict=True):
                rows[key].append(value)
    return rows
