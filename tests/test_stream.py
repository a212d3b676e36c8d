"""Corruptions generated per batch on the device: the same numbers as corrupting and measuring by hand."""

import tracemalloc

import numpy as np
import torch

from lotterysite.corruptions import corrupt
from lotterysite.data import ImageSet, foolbox_samples, load_imagefolder
from lotterysite.geometry import measure_model
from lotterysite.models import create_model
from lotterysite.precompute.stream import bound_heap, measure_variants, should_stream, stream_results

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


def test_stream_results_equal_measure_variants_and_keep_the_store_dtypes():
    data = foolbox_samples("cifar10")
    torch.manual_seed(0)
    model = create_model("lenet5", num_classes=10, in_channels=3, image_size=32).eval()
    kw = dict(batch_size=4, chunk=8, device="cpu", seed=2, params="cifar")
    res = stream_results(model, data, VARIANTS, **kw)
    parts = measure_variants(model, data, VARIANTS, **kw)
    assert res.variants == VARIANTS and res.angle.shape == (3, 20, 10) and res.angle.dtype == np.float32
    assert res.pred.dtype == np.int16 and np.array_equal(res.labels, data.labels.numpy())
    for v, g in enumerate(parts):
        for k in ("pred", "margin", "length", "angle", "prob_true", "loss", "degenerate"):
            assert np.array_equal(getattr(res, k)[v], getattr(g, k).numpy().astype(getattr(res, k).dtype)), k
    # channels_last (what CUDA gets by default) gives the same numbers on the CPU.
    nhwc = stream_results(model, data, VARIANTS, **kw, channels_last=True)
    np.testing.assert_allclose(nhwc.margin, res.margin, rtol=1e-4, atol=1e-5)
    assert all(p.is_contiguous() for p in model.parameters())  # converted back after the call


def test_streamed_memory_does_not_grow_with_the_variants():
    """What the evaluation holds beyond its results arrays is the same for 2 and for 8 variants, and the results
    are held once (no per-variant parts concatenated, no stacked copy). tracemalloc sees numpy's allocations, not
    torch's: the per-batch tensors are freed batch by batch by construction (stream.py)."""
    torch.manual_seed(0)
    n, classes = 64, 1000  # 256 KB of angles per variant: large next to the per-batch Python objects
    data = ImageSet(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8), torch.randint(0, classes, (n,)),
                    tuple(f"c{i}" for i in range(classes)))  # fmt: skip
    model = create_model("lenet5", num_classes=classes, in_channels=3, image_size=32).eval()
    many = [("clean", 0)] + [(name, s) for name in ("contrast", "brightness") for s in (1, 2, 3, 4, 5)][:7]
    few = many[:2]
    kw = dict(batch_size=16, device="cpu", params="cifar")
    stream_results(model, data, many, **kw)  # warm-up: imports, caches, first-call allocations

    def overhead(variants) -> tuple[int, int]:
        tracemalloc.start()
        try:
            res = stream_results(model, data, variants, **kw)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        held = sum(a.nbytes for a in res.arrays().values())
        return peak - held, held

    extra_few, held_few = overhead(few)
    extra_many, held_many = overhead(many)
    per_variant = held_many // len(many)
    assert held_many > 3.9 * held_few  # the results do grow with the variants: V x N x (C + 7) values
    # Beyond the results: far less than one variant's worth, and not more for four times the variants.
    assert extra_few < per_variant // 2 and extra_many < per_variant // 2, (extra_few, extra_many, per_variant)
    assert extra_many < extra_few + per_variant // 8, (extra_few, extra_many)
    print(f"beyond the results: {extra_few} B for {len(few)} variants, {extra_many} B for {len(many)}")


def test_bound_heap_is_idempotent():
    first = bound_heap()
    assert bound_heap() is first  # cached: one mallopt per process
