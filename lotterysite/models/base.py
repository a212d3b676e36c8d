"""The model contract every architecture honours.

`forward_features(x)` returns the penultimate feature X (N x m), the input of the final `nn.Linear` stored as
`classifier`; `forward(x) == classifier(forward_features(x))`. The geometry metrics read `classifier.weight`
(the class directions W, C x m) and `classifier.bias`, so any model honouring this contract can be measured.

Inputs are images in [0, 1]. Models standardise internally with fixed constants, so that corruptions,
thumbnails and the dataset all live in pixel space and no per-dataset statistics travel with a checkpoint.
"""

from __future__ import annotations

import abc

import torch
from torch import nn


class Standardize(nn.Module):
    """(x - 0.5) / 0.25: maps [0, 1] pixels to roughly zero-mean, unit-variance inputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 0.5) * 4.0


class Classifier(nn.Module, abc.ABC):
    """Base class: subclasses set `self.classifier` (nn.Linear) and implement `forward_features`."""

    classifier: nn.Linear
    arch: str = ""

    @abc.abstractmethod
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate feature X, N x feature_dim."""

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @property
    def feature_dim(self) -> int:
        return self.classifier.in_features

    @property
    def num_classes(self) -> int:
        return self.classifier.out_features
