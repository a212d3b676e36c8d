"""Small architectures for 28 x 28 grayscale images (Fashion-MNIST, MNIST); they also accept 32 x 32 RGB."""

from __future__ import annotations

import torch
from torch import nn

from ._registry import register_model
from .base import Classifier, MaxPool2x2, Standardize


class LeNet5(Classifier):
    """LeNet-5 (LeCun et al. 1998) with ReLU and max-pooling; `feature_dim` is the penultimate width (paper §5.4)."""

    def __init__(self, num_classes: int, in_channels: int, image_size: int, feature_dim: int = 84):
        super().__init__()
        # 28-px inputs are padded to the 32 px LeNet-5 was designed for, so both sizes give 5x5 maps.
        pad = 2 if image_size == 28 else 0
        side = ((image_size + 2 * pad - 4) // 2 - 4) // 2
        self.body = nn.Sequential(
            Standardize(),
            nn.Conv2d(in_channels, 6, 5, padding=pad),
            nn.ReLU(inplace=True),
            MaxPool2x2(),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(inplace=True),
            MaxPool2x2(),
            nn.Flatten(),
            nn.Linear(16 * side * side, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, feature_dim),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(feature_dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SmallVGG(Classifier):
    """VGG-style: three conv stages (32-64-128 channels), global average pooling, a 128-wide hidden layer."""

    def __init__(self, num_classes: int, in_channels: int, image_size: int, width: int = 32, feature_dim: int = 128):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            Standardize(),
            *_conv_bn(in_channels, w),
            *_conv_bn(w, w),
            MaxPool2x2(),
            *_conv_bn(w, 2 * w),
            *_conv_bn(2 * w, 2 * w),
            MaxPool2x2(),
            *_conv_bn(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4 * w, feature_dim),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(feature_dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class BasicBlock(nn.Module):
    """The ResNet basic block (He et al. 2016) with a 1x1 projection shortcut when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(Classifier):
    """ResNet with a 3x3 stem (no max-pool), as used for small images; `blocks` per stage, `widths` per stage."""

    def __init__(self, num_classes: int, in_channels: int, blocks: tuple[int, ...], widths: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = [
            Standardize(),
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
        cin = widths[0]
        for stage, (n, w) in enumerate(zip(blocks, widths, strict=True)):
            for i in range(n):
                layers.append(BasicBlock(cin, w, stride=2 if (i == 0 and stage > 0) else 1))
                cin = w
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@register_model
def lenet5(num_classes: int = 10, in_channels: int = 1, image_size: int = 28, feature_dim: int = 84) -> Classifier:
    """LeNet-5, 61k parameters; `feature_dim` sets the width of the logit layer's input (paper §5.4)."""
    return LeNet5(num_classes, in_channels, image_size, feature_dim=feature_dim)


@register_model
def small_vgg(num_classes: int = 10, in_channels: int = 1, image_size: int = 28, width: int = 32) -> Classifier:
    """A five-conv VGG-style network with batch norm, 0.3M parameters at width 32."""
    return SmallVGG(num_classes, in_channels, image_size, width=width)


@register_model
def small_resnet(num_classes: int = 10, in_channels: int = 1, image_size: int = 28, width: int = 16) -> Classifier:
    """ResNet-8-style: three stages of one basic block each (width, 2x, 4x channels)."""
    return ResNet(num_classes, in_channels, blocks=(1, 1, 1), widths=(width, 2 * width, 4 * width))
