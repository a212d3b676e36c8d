"""The final linear layer of any nn.Module, and its input X: equal to forward_features for every registered model."""

import pytest
import torch
import torchvision
from torch import nn

from lotterysite.geometry import GeometryError, classifier_of, measure, measure_model
from lotterysite.models import FeatureHead, HeadError, create_model, find_classifier, list_models


@pytest.mark.parametrize("arch", [*list_models(), "tv:resnet18"])
def test_hooked_features_equal_forward_features_exactly(arch):
    torch.manual_seed(0)
    channels, size = (1, 28) if arch in ("lenet5", "small_vgg", "small_resnet") else (3, 32)
    model = create_model(arch, num_classes=10, in_channels=channels, image_size=size).eval()
    x = torch.rand(3, channels, size, size)
    head = FeatureHead(model, via="hook")
    with torch.no_grad():
        hooked = head(x)
        assert torch.equal(hooked, model.forward_features(x))
    assert head.linear is model.classifier and head.name == "classifier"


class Timmish(nn.Module):
    """timm's naming: the classifier is `head`."""

    def __init__(self, num_classes=5):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.head(self.body(x))


class Anonymous(nn.Module):
    """No conventional name: the last nn.Linear that runs is found by running the model."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(12, 3)  # defined last, runs first
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(48, 12), nn.ReLU())

    def forward(self, x):
        return self.proj(self.layers(x))


class SoftmaxAfter(Timmish):
    def forward(self, x):
        return self.head(self.body(x)).softmax(1)


class ConvClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 4)

    def forward(self, x):
        return self.conv(x).flatten(1)


def test_torchvision_fc_and_classifier_and_timm_head():
    resnet = torchvision.models.resnet18(num_classes=7).eval()
    assert find_classifier(resnet) == ("fc", resnet.fc)
    vgg = torchvision.models.vgg11(num_classes=7)
    assert find_classifier(vgg) == ("classifier.6", vgg.classifier[6])
    model = Timmish().eval()
    assert find_classifier(model) == ("head", model.head)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        feats = FeatureHead(resnet)(x)
        expected = torch.flatten(resnet.avgpool(resnet.layer4(resnet.layer3(resnet.layer2(resnet.layer1(
            resnet.maxpool(resnet.relu(resnet.bn1(resnet.conv1(x))))))))), 1)  # fmt: skip
    assert torch.equal(feats, expected)


def test_last_linear_that_runs_is_found_with_hooks():
    model = Anonymous().eval()
    with pytest.raises(HeadError, match="run it once through FeatureHead"):
        find_classifier(model)
    head = FeatureHead(model)
    x = torch.rand(2, 3, 4, 4)
    with torch.no_grad():
        feats = head(x)
    assert head.name == "proj" and feats.shape == (2, 12)
    assert find_classifier(model) == ("proj", model.proj)  # remembered for pruning
    # measure_model works on it and gives the numbers of measure() on the hooked feature.
    y = torch.tensor([0, 2])
    g, labels = measure_model(model, [(x, y)])
    with torch.no_grad():
        expected = measure(model.layers(x), model.proj.weight, model.proj.bias, y)
    assert torch.equal(g.margin, expected.margin) and torch.equal(labels, y)


def test_logits_not_from_a_final_linear_are_an_error_naming_the_model():
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(HeadError) as e:
        FeatureHead(SoftmaxAfter())(x)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("SoftmaxAfter: its output") and "`head`" in msg
    with pytest.raises(HeadError, match=r"ConvClassifier has no nn.Linear layer.*last module is `conv` \(Conv2d\)"):
        FeatureHead(ConvClassifier())(x)
    with pytest.raises(GeometryError, match="ConvClassifier has no nn.Linear"):
        classifier_of(ConvClassifier())
    with pytest.raises(HeadError, match="ConvClassifier has no nn.Linear"):
        measure_model(ConvClassifier(), [(x, torch.tensor([0, 1]))])
