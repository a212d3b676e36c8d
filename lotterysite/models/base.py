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


class MaxPool2x2(nn.MaxPool2d):
    """nn.MaxPool2d(2). Without autograd on the CPU (evaluation, recalibration, Taylor scores) it is the maximum of
    the four strided 2×2 corners: the same values (NaN included), 4-9× faster than PyTorch's CPU kernel on the
    few-channel maps of LeNet-5 and small_vgg (500×6×28×28: 12.7 → 3.0 ms; evaluating a LeNet-5 on 500 images ×
    96 variants: 3.3 → 2.4 CPU s). Training keeps PyTorch's kernel: its backward sends each window's gradient to
    one maximum, and a replica of that routing cost more than it saved. A subclass, so checkpoints and printed
    models are MaxPool2d's."""

    def __init__(self):
        super().__init__(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grad = torch.is_grad_enabled() and x.requires_grad
        if x.device.type != "cpu" or x.dim() not in (3, 4) or min(x.shape[-2:]) < 2 or grad:
            return super().forward(x)
        h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2  # floor mode: an odd last row or column is dropped
        top = torch.maximum(x[..., 0:h:2, 0:w:2], x[..., 0:h:2, 1:w:2])
        return torch.maximum(top, torch.maximum(x[..., 1:h:2, 0:w:2], x[..., 1:h:2, 1:w:2]))


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
