"""Wrap any torchvision classification model in the model contract.

The wrapped model's last `nn.Linear` (in module order: `fc` for ResNets, `classifier[-1]` for VGG/AlexNet/
MobileNet/EfficientNet/ConvNeXt, `heads.head` for ViT) becomes `classifier`; the rest, with that layer replaced
by an identity, is `forward_features`. Weights are never downloaded (that fails offline): load a checkpoint, or
torchvision's published weights from a file (`imported.load_weights` maps their keys) with option
input_norm = "imagenet", the normalisation they were trained with (the default, "standardize", is lotterysite's).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Classifier, Standardize


def _last_linear(model: nn.Module) -> tuple[nn.Module, str, nn.Linear, str]:
    found = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            found = name, module
    if found is None:
        raise ValueError("the torchvision model has no nn.Linear layer to use as the class directions")
    name, linear = found
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    return parent, attr, linear, name


class Normalize(nn.Module):
    """(x - mean) / std per channel, with torchvision's ImageNet constants: what its published weights expect."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class TorchvisionAdapter(Classifier):
    def __init__(self, model: nn.Module, input_norm: str = "standardize"):
        super().__init__()
        from .imported import INPUT_NORMS, NORMS, ModelError

        if input_norm not in INPUT_NORMS:
            raise ModelError(f"option input_norm {input_norm!r} is not one of {', '.join(map(repr, INPUT_NORMS))}")
        parent, attr, linear, name = _last_linear(model)
        setattr(parent, attr, nn.Identity())
        # Standardize for models trained here (the default); "imagenet" for torchvision's published weights.
        self.standardize = {"standardize": Standardize(), "none": nn.Identity()}.get(input_norm) or Normalize(
            *NORMS[input_norm]
        )
        self.body = model
        self.classifier = linear
        self.torchvision_head = name  # where torchvision keeps the classifier: load_weights maps "fc.weight" there

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.body(self.standardize(x)), 1)


# Models with auxiliary classifiers, and whose published weights expect torchvision's transform_input = True (they
# were trained on (x - 0.5) / 0.5 and re-normalise ImageNet-normalised input inside the model).
AUX_LOGITS = ("googlenet", "inception_v3")


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
    input_norm = options.pop("input_norm", "standardize")
    if name in AUX_LOGITS:
        # In training mode these return (logits, aux logits...) tuples, which training, Taylor, MPT and the feature
        # hook cannot use; torchvision's published weights are saved without the auxiliary heads as well.
        options.setdefault("aux_logits", False)
    model = TorchvisionAdapter(
        torchvision.models.get_model(name, weights=None, num_classes=num_classes, **options), input_norm
    )
    model.arch = f"tv:{name}"
    return model
