"""Pruning any nn.Module on batches in any form, and models pruned elsewhere (torch.nn.utils.prune, plain zeros)."""

import pytest
import torch
import torchvision
from torch import nn
from torch.nn.utils import prune as torch_prune

from lotterysite.models import create_model
from lotterysite.pruning import load_pruned_elsewhere, prunable_parameters, prune, sparsity_report
from lotterysite.pruning.masks import pruned_count


class Net(nn.Module):
    """Not the model contract: expects normalised inputs, its classifier is `head`."""

    def __init__(self, num_classes=4):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, 8), nn.ReLU()
        )
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(self.body(x))


def normalised_batches(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        ((torch.rand(8, 3, 12, 12, generator=g) - 0.45) / 0.22, torch.randint(0, 4, (8,), generator=g))
        for _ in range(n)
    ]


@pytest.mark.parametrize("method,options", [("magnitude", {}), ("taylor", {}), ("mpt", {"mpt_epochs": 1}),
                                            ("magnitude", {"retrain_epochs": 1})])  # fmt: skip
def test_any_model_prunes_on_normalised_batches_with_its_head_dense(method, options):
    torch.manual_seed(0)
    model = Net()
    pruned = prune(model, method, 0.5, data=normalised_batches(), progress=False, **options)
    targets = prunable_parameters(pruned)
    assert "head.weight" not in targets and set(pruned.masks) == set(targets)
    removed = {name: int((~m).sum()) for name, m in pruned.masks.items()}
    if method == "mpt":  # per layer
        assert removed == {name: pruned_count(0.5, p.numel()) for name, p in targets.items()}
    else:  # one global ranking
        assert sum(removed.values()) == pruned_count(0.5, sum(p.numel() for p in targets.values()))
    assert bool((pruned.head.weight != 0).all())  # the found classifier stays dense
    if method in ("magnitude", "taylor") and not options:
        assert torch.equal(pruned.head.weight, model.head.weight)


def test_torch_prune_masks_and_plain_zeros_load_into_the_base(tmp_path):
    torch.manual_seed(0)
    base = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    other = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    for module in (m for m in other.body if isinstance(m, (nn.Conv2d, nn.Linear))):
        torch_prune.l1_unstructured(module, "weight", amount=0.6)
    torch.save(other.state_dict(), tmp_path / "masked.pt")  # body.1.weight_orig, body.1.weight_mask, ...
    assert any(k.endswith("weight_mask") for k in torch.load(tmp_path / "masked.pt"))
    masked = load_pruned_elsewhere(base, tmp_path / "masked.pt")
    for module in (m for m in other.body if isinstance(m, (nn.Conv2d, nn.Linear))):
        torch_prune.remove(module, "weight")
    torch.save({"state_dict": other.state_dict()}, tmp_path / "zeros.pt")
    zeros = load_pruned_elsewhere(base, tmp_path / "zeros.pt")
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(masked(x), other(x)) and torch.equal(zeros(x), other(x))
    for m in (masked, zeros):
        report = sparsity_report(m)
        # Measured from the weights: 60% of the four hidden layers, the dense classifier not counted.
        expected = sum(pruned_count(0.6, p.numel()) for p in prunable_parameters(base).values())
        assert report["pruned"] == expected and "classifier.weight" not in report["layers"]
    assert not any(bool((p == 0).any()) for p in base.parameters() if p.ndim > 1)  # the base is left as it was


def test_pruned_torchvision_model_in_torchvisions_layout(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(num_classes=10)
    torch_prune.global_unstructured([(tv.conv1, "weight"), (tv.fc, "weight")], torch_prune.L1Unstructured, amount=0.3)
    torch.save(tv.state_dict(), tmp_path / "r18.pt")
    base = create_model("tv:resnet18", num_classes=10, in_channels=3, image_size=32, input_norm="imagenet")
    model = load_pruned_elsewhere(base, tmp_path / "r18.pt")
    # The file pruned the classifier too, so it counts.
    assert "classifier.weight" in model.masks and bool((~model.masks["body.conv1.weight"]).any())
