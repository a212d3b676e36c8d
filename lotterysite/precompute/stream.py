"""Evaluation with corruptions generated per batch on the evaluation device, never cached.

Used when the corrupted variants of the evaluation set would not fit (`CORRUPTION_CACHE_LIMIT`) and for every
class-folder set: one batch of decoded uint8 images is read (or decoded) once, moved to the device, and every
variant of it (clean, then each corruption x severity) is generated there and measured before the next batch.

Memory, for N samples, V variants, C classes and batch B (tests/test_stream.py guards the first point):
- the results, written batch by batch into arrays allocated once (`results_for`): V x N x (C + 7) x 4 bytes,
  held once. They are what the store is made from (the angle to every class of every sample and variant: the
  shipped samples are picked only after every model is evaluated), so they grow with V x N x C, and nothing else
  does: 2000 images x 20 variants x 1000 classes are 160 MB; ImageNet's 50 000 x 96 x 1000 would be 19 GB.
- one batch and one variant of it, and the model's activations for B images: independent of V.
- on CPU with glibc, the heap (`bound_heap`). Measured on a 224 px ResNet-18, batch 32, clean then the 19
  corruptions: peak RSS 965 MB after the first variant; after the last, 1253 MB with glibc's defaults (100 MB of
  it frost importing the peer package for its photographs, which it now reads by path) and 1058 MB with an 8 MB
  threshold and that import gone (1033 MB after the second variant already; bench/RESULTS.md).

A batch's corruptions are seeded by the corruption seed and the batch's first sample index, as the cached path
seeds its 1000-image chunks: with `chunk=1000` the two give the same images.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Iterator

import numpy as np
import torch

from ..corruptions import corrupt
from ..geometry import ACCURATE_AUTOCAST, AUTO, Geometry, GeometryError, _is_channels_last, feature_head, measure
from .aggregate import ModelResults

CORRUPTION_CACHE_LIMIT = 8 * 2**30  # bytes of uint8 corrupted variants the cached path may write to STORE/.work
# Bytes; allocations this large get their own pages, returned to the OS when freed. On a 224 px ResNet-18 with
# corruptions, 8 MB and 16 MB held the peak equally flat; 8 MB cost ~30 % more CPU time (page faults), 16 MB ~15 %
# (noisy: a shared machine; bench/RESULTS.md).
MMAP_THRESHOLD = 16 * 2**20


@functools.cache
def bound_heap(threshold: int = MMAP_THRESHOLD) -> bool:
    """Serve every allocation of `threshold` bytes or more from its own mmap, so freeing it returns the memory.

    glibc raises its mmap threshold up to 32 MB each time a large block is freed; from then on the model's
    activations (25 MB for a ResNet-18 layer at 224 px, batch 32) are carved out of the heap, where the long-lived
    blocks between them (cached frost photos, results) keep the freed space from being reused or returned: the
    resident set grows with every new corruption's allocation pattern. A fixed threshold turns that dynamic rise off.
    The corruptions' CPU work stays below it (4 MB chunks, `corruptions.CPU_CHUNK`), so their reused heap blocks
    stay warm; what crosses it pays page faults on every allocation. Process-wide and idempotent; False (nothing
    done) where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # macOS, musl without mallopt, Windows
        return False
    return bool(mallopt(-3, int(threshold)))  # M_MMAP_THRESHOLD


def uint8_chunks(data, chunk: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """(first index, uint8 images, labels) of consecutive chunks of an ImageSet or a class-folder set."""
    if hasattr(data, "uint8_batches"):
        for i, (x, y) in enumerate(data.uint8_batches(chunk)):
            yield i * chunk, x, y
    else:
        for start in range(0, len(data), chunk):
            yield start, data.images[start : start + chunk], data.labels[start : start + chunk]


def should_stream(eval_set, variants: list[tuple[str, int]], limit: int = CORRUPTION_CACHE_LIMIT) -> bool:
    """Stream when the set has no in-memory images (class folders) or its corrupted variants exceed `limit`."""
    if not hasattr(eval_set, "images") or not isinstance(eval_set.images, torch.Tensor):
        return True
    return eval_set.images.numel() * (len(variants) - 1) > limit


def results_for(variants: list[tuple[str, int]], labels: torch.Tensor, num_classes: int) -> ModelResults:
    """Empty results for every sample and variant, to be filled in place by `put`."""
    v, n = len(variants), len(labels)
    return ModelResults(
        variants=list(variants),
        labels=labels.numpy().astype(np.int64),
        pred=np.empty((v, n), np.int16),
        margin=np.empty((v, n), np.float32),
        length=np.empty((v, n), np.float32),
        angle=np.empty((v, n, num_classes), np.float32),
        prob_true=np.empty((v, n), np.float32),
        loss=np.empty((v, n), np.float32),
        degenerate=np.empty((v, n), bool),
    )


def put(res: ModelResults, v: int, start: int, g: Geometry) -> None:
    """Copy one batch's geometry (on the CPU) into variant `v`, samples `start:start + len(g)`, of `res`."""
    rows = slice(start, start + len(g.margin))
    for k in ("pred", "margin", "length", "angle", "prob_true", "loss", "degenerate"):
        getattr(res, k)[v, rows] = getattr(g, k).numpy()


@torch.no_grad()
def _measured(model, data, variants, *, batch_size, device, seed, params, chunk, amp, channels_last):
    """(variant index, first sample index, Geometry on the CPU) of every batch of every variant."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    model.eval().to(device)
    # As measure_model: float16 autocast on CUDA (accurate to 1e-3; bfloat16 is not), float32 elsewhere;
    # channels_last on CUDA, converted once for the whole set.
    dtype = ACCURATE_AUTOCAST if amp and cuda else None
    nhwc = cuda if isinstance(channels_last, str) and channels_last == AUTO else bool(channels_last)
    convert = nhwc and not _is_channels_last(model)
    if convert:
        model.to(memory_format=torch.channels_last)
    if device.type == "cpu":
        bound_heap()
    head = feature_head(model)
    try:
        for start, images, labels in uint8_chunks(data, chunk or batch_size):
            x = images.to(device, non_blocking=True).float().div_(255.0)
            y = labels.to(device, non_blocking=True)
            for v, (name, severity) in enumerate(variants):
                xv = x if name == "clean" else corrupt(x, name, severity, seed=seed * 100_003 + start, params=params)
                if nhwc:
                    xv = xv.contiguous(memory_format=torch.channels_last)
                for b in range(0, len(xv), batch_size):
                    xb, feats = xv[b : b + batch_size], None
                    if dtype is not None:
                        with torch.autocast(device_type=device.type, dtype=dtype):
                            feats = head(xb).float()
                        if not bool(torch.isfinite(feats).all()):  # float16 overflowed: this batch in float32
                            feats = None
                    if feats is None:
                        feats = head(xb).float()
                    g = measure(feats, head.linear.weight.float(), head.linear.bias, y[b : b + batch_size])
                    yield v, start + b, g.to("cpu")
                del xv
    finally:
        if convert:
            model.to(memory_format=torch.contiguous_format)


def stream_results(
    model: torch.nn.Module,
    data,
    variants: list[tuple[str, int]],
    *,
    batch_size: int,
    device: torch.device | str,
    seed: int = 0,
    params: str = "cifar",
    chunk: int | None = None,
    amp: bool = True,
    channels_last: bool | str = AUTO,
) -> ModelResults:
    """Geometry of `model` on every variant of `data`, written batch by batch into one set of results arrays.

    `chunk` images are decoded and corrupted together (default `batch_size`); the model sees `batch_size` at a time.
    `amp`: float16 autocast on CUDA (float32 elsewhere); `channels_last`: NHWC convolutions, "auto" on CUDA.
    """
    res = None
    for v, start, g in _measured(model, data, variants, batch_size=batch_size, device=device, seed=seed,
                                 params=params, chunk=chunk, amp=amp, channels_last=channels_last):  # fmt: skip
        if res is None:
            res = results_for(variants, data.labels, g.angle.shape[1])
        put(res, v, start, g)
    if res is None:
        raise GeometryError("no batches to measure: the evaluation set is empty")
    return res


def measure_variants(
    model: torch.nn.Module,
    data,
    variants: list[tuple[str, int]],
    *,
    batch_size: int,
    device: torch.device | str,
    seed: int = 0,
    params: str = "cifar",
    chunk: int | None = None,
    amp: bool = True,
    channels_last: bool | str = AUTO,
) -> list[Geometry]:
    """As `stream_results`, as one Geometry per variant (in `variants` order) on the CPU.

    Holds per-batch tensors until the end, then concatenates them: a copy that `stream_results`, which precompute
    uses, does not make.
    """
    parts: list[list[Geometry]] = [[] for _ in variants]
    for v, _, g in _measured(model, data, variants, batch_size=batch_size, device=device, seed=seed, params=params,
                             chunk=chunk, amp=amp, channels_last=channels_last):  # fmt: skip
        parts[v].append(g)
    return [Geometry.cat(p) for p in parts]
