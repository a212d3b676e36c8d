"""Wrap any torchvision classification model in the model contract.

The wrapped model's last `nn.Linear` (in module order: `fc` for ResNets, `classifier[-1]` for VGG/AlexNet/
MobileNet/EfficientNet/ConvNeXt, `heads.head` for ViT) becomes `classifier`; the rest, with that layer replaced
by an identity, is `forward_features`. Weights are never downloaded (that fails offline): load a checkpoint.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Classifier, Standardize


def _last_linear(model: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    found = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            found = name, module
    if found is None:
        raise ValueError("the torchvision model has no nn.Linear layer to use as the class directions")
    name, linear = found
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    return parent, attr, linear


class TorchvisionAdapter(Classifier):
    def __init__(self, model: nn.Module):
        super().__init__()
        parent, attr, linear = _last_linear(model)
        setattr(parent, attr, nn.Identity())
        self.standardize = Standardize()
        self.body = model
        self.classifier = linear

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.body(self.standardize(x)), 1)


def torchvision_model(name: str, *, num_classes: int, in_channels: int, image_size: int, **options) -> Classifier:
    """`tv:<name>`: torchvision's architecture `name`, randomly initialised, in the model contract."""
    import torchvision

    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        raise ValueError(f"unknown torchvision model {name!r}; torchvision classification models: {', '.join(known)}")
    if in_channels != 3:
        raise ValueError(
            f"torchvision model {name!r} takes 3-channel images, the data set has {in_channels}; "
            "use a registry model for grayscale data"
        )
    model = TorchvisionAdapter(torchvision.models.get_model(name, weights=None, num_classes=num_classes, **options))
    model.arch = f"tv:{name}"
    return model
