"""The model contract, checked for every registered architecture."""

import pytest
import torch
from torch import nn

from lotterysite.models import Classifier, create_model, list_models

GRAY = {"lenet5", "small_vgg", "small_resnet"}


def build(name, num_classes=10):
    gray = name in GRAY
    return create_model(name, num_classes=num_classes, in_channels=1 if gray else 3, image_size=28 if gray else 32)


def inputs(name, n=3):
    return torch.rand(n, 1, 28, 28) if name in GRAY else torch.rand(n, 3, 32, 32)


@pytest.mark.parametrize("name", list_models() + ["tv:resnet18", "tv:mobilenet_v3_small"])
def test_contract(name):
    torch.manual_seed(0)
    model = build(name, num_classes=7).eval()
    assert isinstance(model, Classifier)
    assert isinstance(model.classifier, nn.Linear)
    assert model.arch == name
    assert model.num_classes == 7
    x = inputs(name)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model(x)
    assert feats.shape == (3, model.feature_dim)
    torch.testing.assert_close(logits, model.classifier(feats))
    assert logits.shape == (3, 7)


def test_registry_names_every_documented_architecture():
    assert {"lenet5", "small_vgg", "small_resnet", "vgg16", "resnet18", "alexnet"} <= set(list_models())


def test_lenet_feature_width_is_configurable():
    model = create_model("lenet5", num_classes=10, in_channels=1, image_size=28, feature_dim=16)
    assert model.feature_dim == 16
    assert model.forward_features(torch.rand(2, 1, 28, 28)).shape == (2, 16)


def test_lenet_accepts_cifar_sized_input():
    model = create_model("lenet5", num_classes=10, in_channels=3, image_size=32)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_unknown_architecture_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown architecture 'vgg99'.*lenet5.*vgg16"):
        create_model("vgg99", num_classes=10, in_channels=1, image_size=28)


def test_unknown_torchvision_model():
    with pytest.raises(ValueError, match="unknown torchvision model 'nope'"):
        create_model("tv:nope", num_classes=10, in_channels=3, image_size=32)


def test_torchvision_model_rejects_grayscale():
    with pytest.raises(ValueError, match="takes 3-channel images"):
        create_model("tv:resnet18", num_classes=10, in_channels=1, image_size=28)


def test_maxpool2x2_equals_pytorchs_without_and_with_autograd():
    """The fast no-grad path gives max_pool2d's values exactly (ties, NaN, odd sizes); with autograd it is
    PyTorch's own kernel, so training gradients are unchanged."""
    import torch.nn.functional as F

    from lotterysite.models.base import MaxPool2x2

    torch.manual_seed(0)
    for shape in ((8, 6, 28, 28), (4, 16, 11, 9), (3, 5, 5)):
        x = torch.relu(torch.randn(shape)).round()  # many ties, at 0 and above
        x.view(-1)[0] = float("nan")
        with torch.no_grad():
            ours, theirs = MaxPool2x2()(x), F.max_pool2d(x, 2)
        assert ours.shape == theirs.shape and torch.equal(ours.nan_to_num(), theirs.nan_to_num())
        assert ours.isnan().sum() == theirs.isnan().sum() == 1
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        g = torch.randn_like(theirs)
        MaxPool2x2()(a).backward(g)
        F.max_pool2d(b, 2).backward(g)
        assert torch.equal(a.grad, b.grad)
