"""The paper's CIFAR variants (32 x 32 RGB) of VGG16, ResNet18 and AlexNet."""

from __future__ import annotations

import torch
from torch import nn

from ._registry import register_model
from .base import Classifier, Standardize
from .small import ResNet

# Configuration "D" of Simonyan & Zisserman with batch norm; on 32-px inputs five poolings leave a 1x1x512 map.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG(Classifier):
    def __init__(self, num_classes: int, in_channels: int, image_size: int, cfg=_VGG16):
        super().__init__()
        layers: list[nn.Module] = [Standardize()]
        cin = in_channels
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                cin = v
        # Global pooling keeps the 512-d feature for any input size >= 32 px.
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class AlexNet(Classifier):
    """AlexNet adapted to 32-px images (3x3 kernels, three poolings, 4096-wide hidden layers)."""

    def __init__(self, num_classes: int, in_channels: int, image_size: int, hidden: int = 4096):
        super().__init__()
        self.body = nn.Sequential(
            Standardize(),
            nn.Conv2d(in_channels, 64, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 192, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.AdaptiveMaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(256 * 2 * 2, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(hidden, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@register_model
def vgg16(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> Classifier:
    """VGG16 with batch norm for CIFAR (15M parameters), 512-d feature."""
    return VGG(num_classes, in_channels, image_size)


@register_model
def resnet18(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> Classifier:
    """ResNet18 for CIFAR (3x3 stem, no max-pool; 11M parameters), 512-d feature."""
    return ResNet(num_classes, in_channels, blocks=(2, 2, 2, 2), widths=(64, 128, 256, 512))


@register_model
def alexnet(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, hidden: int = 4096) -> Classifier:
    """AlexNet for CIFAR, 4096-d feature."""
    return AlexNet(num_classes, in_channels, image_size, hidden=hidden)
