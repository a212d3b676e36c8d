"""Corruptions generated per batch on the device: the same numbers as corrupting and measuring by hand."""

import tracemalloc

import numpy as np
import pytest
import torch

from lotterysite.corruptions import corrupt
from lotterysite.data import ImageSet, foolbox_samples, load_imagefolder
from lotterysite.geometry import measure_model
from lotterysite.models import create_model
from lotterysite.precompute.stream import bound_heap, should_stream, stream_results

VARIANTS = [("clean", 0), ("gaussian_noise", 3), ("contrast", 2)]


def by_hand(model, data, name, severity, *, chunk, seed, params):
    """The reference: corrupt each chunk of the uint8 images as stream.py documents it, measure with measure_model."""
    batches = []
    for start in range(0, len(data), chunk):
        x = data.images[start : start + chunk].float() / 255
        if name != "clean":
            x = corrupt(x, name, severity, seed=seed * 100_003 + start, params=params)
        batches.append((x, data.labels[start : start + chunk]))
    return measure_model(model, batches)[0]


def test_streamed_results_equal_corrupting_each_chunk_by_hand(tmp_path):
    data = foolbox_samples("cifar10")
    torch.manual_seed(0)
    model = create_model("lenet5", num_classes=10, in_channels=3, image_size=32).eval()
    kw = dict(batch_size=4, chunk=8, device="cpu", seed=2, params="cifar")
    keep = [0, 2]  # clean and contrast: only their angles to every class are kept, in a memory-mapped file
    res = stream_results(model, data, VARIANTS, **kw, keep=keep, angle_file=str(tmp_path / "angle.npy"))
    assert res.variants == VARIANTS and res.angle.shape == (2, 20, 10) and res.angle.dtype == np.float32
    assert isinstance(res.angle, np.memmap) and res.pred.dtype == np.int16
    assert np.array_equal(res.labels, data.labels.numpy())
    labels = data.labels.numpy()
    count = np.zeros((10, 10), np.int64)
    angle_sum = np.zeros((10, 10))
    for v, (name, severity) in enumerate(VARIANTS):
        g = by_hand(model, data, name, severity, chunk=8, seed=2, params="cifar")
        assert np.array_equal(res.pred[v], g.pred.numpy())
        for k in ("margin", "length", "prob_true", "loss"):
            np.testing.assert_allclose(getattr(res, k)[v], getattr(g, k).numpy(), rtol=1e-5, atol=1e-5, err_msg=k)
        angle = g.angle.double().numpy()
        np.testing.assert_allclose(res.angle_true[v], angle[np.arange(20), labels], rtol=1e-5, atol=1e-4)
        if v in keep:
            np.testing.assert_allclose(res.angles(v), angle, rtol=1e-5, atol=1e-4)
        else:
            with pytest.raises(KeyError, match="not kept"):
                res.angles(v)
        for i in range(20):  # the confusion sums, one sample at a time
            count[labels[i], int(g.pred[i])] += 1
            angle_sum[labels[i]] += angle[i]
    assert np.array_equal(res.confusion.count, count)
    np.testing.assert_allclose(res.confusion.angle_sum, angle_sum, rtol=1e-6)
    assert res.confusion.angle_n.tolist() == (np.bincount(labels, minlength=10) * 3).tolist()
    # channels_last (what CUDA gets by default) gives the same numbers on the CPU.
    nhwc = stream_results(model, data, VARIANTS, **kw, channels_last=True)
    np.testing.assert_allclose(nhwc.margin, res.margin, rtol=1e-4, atol=1e-5)
    assert all(p.is_contiguous() for p in model.parameters())  # converted back after the call


def test_class_folder_sets_always_stream(imagenet_folder):
    test = load_imagefolder(imagenet_folder, 32).test
    assert should_stream(test, VARIANTS)
    small = foolbox_samples("cifar10")
    assert not should_stream(small, VARIANTS)
    assert should_stream(small, VARIANTS, limit=small.images.numel())  # two variants would not fit
    model = create_model("tv:resnet18", num_classes=1000, in_channels=3, image_size=32)
    res = stream_results(model, test.head(6), VARIANTS[:2], batch_size=4, device="cpu", params="imagenet")
    assert res.angle.shape == (2, 6, 1000) and res.confusion.count.shape == (1000, 1000)


def test_streamed_memory_does_not_grow_with_the_variants(tmp_path):
    """Beyond its small V x N columns, what the evaluation holds is the same for 2 and for 8 variants: the angles to
    every class are kept for the clean set only, in a memory-mapped file (as precompute keeps the shipped
    variants'), and no other variant's angles (N x C each) are held. tracemalloc sees numpy's allocations, not
    torch's (the per-batch tensors are freed batch by batch by construction, stream.py) nor the memory map."""
    torch.manual_seed(0)
    n, classes = 64, 1000  # 256 KB of angles per variant: large next to the small columns (1.6 KB per variant)
    data = ImageSet(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8), torch.randint(0, classes, (n,)),
                    tuple(f"c{i}" for i in range(classes)))  # fmt: skip
    model = create_model("lenet5", num_classes=classes, in_channels=3, image_size=32).eval()
    many = [("clean", 0)] + [(name, s) for name in ("contrast", "brightness") for s in (1, 2, 3, 4, 5)][:7]
    few = many[:2]
    kw = dict(batch_size=16, device="cpu", params="cifar", keep=[0])
    stream_results(model, data, many, **kw)  # warm-up: imports, caches, first-call allocations

    def peak(variants) -> tuple[int, int]:
        tracemalloc.start()
        try:
            res = stream_results(model, data, variants, **kw, angle_file=str(tmp_path / f"{len(variants)}.npy"))
            top = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert isinstance(res.angle, np.memmap) and res.angle.shape == (1, n, classes)
        return top, sum(getattr(res, k).nbytes for k in res.SMALL)

    peak_few, small_few = peak(few)
    peak_many, small_many = peak(many)
    one_variant = n * classes * 4
    assert small_many > 3.5 * small_few  # the small columns do grow with the variants: V x N values
    # Four times the variants cost their small columns and nothing near one more variant's angles.
    assert peak_many - peak_few < (small_many - small_few) + one_variant // 4, (peak_few, peak_many, one_variant)
    print(f"peak {peak_few} B for {len(few)} variants, {peak_many} B for {len(many)}")


def test_bound_heap_is_idempotent():
    first = bound_heap()
    assert bound_heap() is first  # cached: one mallopt per process


def test_a_full_disk_while_keeping_angles_is_one_line_naming_the_file(tmp_path, monkeypatch):
    import errno

    from lotterysite.fileio import StorageError
    from lotterysite.precompute import stream

    def full(*a):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(stream.os, "pwrite", full)
    data = foolbox_samples("cifar10").head(8)
    model = create_model("lenet5", num_classes=10, in_channels=3, image_size=32).eval()
    target = tmp_path / "angle.npy"
    with pytest.raises(StorageError) as e:
        stream_results(model, data, VARIANTS[:1], batch_size=4, device="cpu", angle_file=str(target))
    message = str(e.value)
    assert str(target) in message and "No space left" in message and "\n" not in message
