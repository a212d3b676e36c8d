"""Corruptions generated per batch on the device: the same numbers as corrupting and measuring by hand."""

import torch

from lotterysite.corruptions import corrupt
from lotterysite.data import foolbox_samples, load_imagefolder
from lotterysite.geometry import measure_model
from lotterysite.models import create_model
from lotterysite.precompute.stream import measure_variants, should_stream

VARIANTS = [("clean", 0), ("gaussian_noise", 3), ("contrast", 2)]


def test_streamed_variants_equal_corrupting_each_chunk_by_hand():
    data = foolbox_samples("cifar10")
    torch.manual_seed(0)
    model = create_model("lenet5", num_classes=10, in_channels=3, image_size=32).eval()
    parts = measure_variants(model, data, VARIANTS, batch_size=4, chunk=8, device="cpu", seed=2, params="cifar")
    assert len(parts) == 3 and all(len(g.margin) == 20 for g in parts)
    for (name, severity), g in zip(VARIANTS, parts, strict=True):
        batches = []
        for start in range(0, 20, 8):
            x = data.images[start : start + 8].float() / 255
            if name != "clean":
                x = corrupt(x, name, severity, seed=2 * 100_003 + start, params="cifar")
            batches.append((x, data.labels[start : start + 8]))
        expected, _ = measure_model(model, batches)
        assert torch.equal(g.pred, expected.pred)
        torch.testing.assert_close(g.margin, expected.margin, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(g.angle, expected.angle, rtol=1e-5, atol=1e-4)


def test_class_folder_sets_always_stream(imagenet_folder):
    test = load_imagefolder(imagenet_folder, 32).test
    assert should_stream(test, VARIANTS)
    small = foolbox_samples("cifar10")
    assert not should_stream(small, VARIANTS)
    assert should_stream(small, VARIANTS, limit=small.images.numel())  # two variants would not fit
    model = create_model("tv:resnet18", num_classes=1000, in_channels=3, image_size=32)
    parts = measure_variants(model, test.head(6), VARIANTS[:2], batch_size=4, device="cpu", params="imagenet")
    assert [g.angle.shape for g in parts] == [(6, 1000)] * 2
