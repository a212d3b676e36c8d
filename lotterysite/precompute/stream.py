"""Evaluation with corruptions generated per batch on the evaluation device, never cached.

Used when the corrupted variants of the evaluation set would not fit (`CORRUPTION_CACHE_LIMIT`) and for every
class-folder set: one batch of decoded uint8 images is read (or decoded) once, moved to the device, and every
variant of it (clean, then each corruption x severity) is generated there and measured before the next batch.

Memory, for N samples, V variants, C classes and batch B (tests/test_stream.py guards the first point):
- the results (`ResultsWriter`), written batch by batch into arrays allocated once: V x N x 8 small columns
  (pred, margin, margin_eq5, length, angle to the true class, ...; 2 MB per variant at 50 000 images), the C x C
  per-class confusion sums (16 MB at 1000 classes), and the angle to every class only for the variants whose rows are
  shipped (clean and the shipped severities), in a file in STORE.work during precompute (positional writes): the
  shipped samples are picked only after every model is evaluated, so those angles are kept for every sample
  (ImageNet, 50 000 x 20 x 1000: 4 GB of disk per model, not of memory). The angles of the other variants are
  never held: 96 variants of them would be 19 GB.
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
import os
from collections.abc import Iterator

import numpy as np
import torch

from ..corruptions import corrupt
from ..fileio import storage_error
from ..geometry import ACCURATE_AUTOCAST, AUTO, Geometry, GeometryError, _is_channels_last, feature_head, measure
from .aggregate import Confusion, ModelResults

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


class ResultsWriter:
    """Fills one model's results batch by batch: the small V x N columns in memory, the angles to every class only
    for the variants in `keep` (in memory, or written to the .npy file `angle_file` when given), and the
    per-class confusion sums. Allocated at the first batch (the class count comes with it)."""

    def __init__(self, variants: list[tuple[str, int]], labels, keep: list[int] | None = None,
                 angle_file: str | None = None):  # fmt: skip
        self.variants = list(variants)
        self.labels = np.asarray(labels, np.int64)
        self.keep = list(range(len(self.variants))) if keep is None else sorted(set(keep))
        self.slot = {v: i for i, v in enumerate(self.keep)}
        self.angle_file = angle_file
        self.fd: int | None = None
        self.res: ModelResults | None = None

    def _allocate(self, num_classes: int) -> ModelResults:
        v, n, c = len(self.variants), len(self.labels), num_classes
        shape = (len(self.keep), n, c)
        if self.angle_file is not None:
            # A .npy file of the final size (sparse until written), filled by positional writes: the angles pass
            # through the page cache, never through this process's memory (a memory map would count them in its
            # resident set).
            try:
                header = np.lib.format.open_memmap(self.angle_file, mode="w+", dtype=np.float32, shape=shape)
                self.offset = header.offset
                del header
                self.fd = os.open(self.angle_file, os.O_WRONLY)
            except OSError as e:
                raise storage_error(self.angle_file, "create the kept angles' file", e,
                                    needed=int(np.prod(shape)) * 4) from None  # fmt: skip
            angle = None
        else:
            angle = np.empty(shape, np.float32)
        return ModelResults(
            variants=self.variants, labels=self.labels, pred=np.empty((v, n), np.int16),
            margin=np.empty((v, n), np.float32), margin_eq5=np.empty((v, n), np.float32),
            length=np.empty((v, n), np.float32),
            angle_true=np.empty((v, n), np.float32), prob_true=np.empty((v, n), np.float32),
            loss=np.empty((v, n), np.float32), degenerate=np.empty((v, n), bool), angle=angle,
            angle_variants=self.keep, confusion=Confusion.empty(c),
        )  # fmt: skip

    def put(self, v: int, start: int, g: Geometry) -> None:
        """Copy one batch's geometry (on the CPU) into variant `v`, samples `start:start + len(g)`."""
        if self.res is None:
            self.res = self._allocate(g.angle.shape[1])
        res, rows = self.res, slice(start, start + len(g.margin))
        for k in ("pred", "margin", "margin_eq5", "length", "prob_true", "loss", "degenerate"):
            getattr(res, k)[v, rows] = getattr(g, k).numpy()
        angle = g.angle.numpy()
        labels = self.labels[rows]
        res.angle_true[v, rows] = np.take_along_axis(angle, labels[:, None], axis=1)[:, 0]
        res.confusion.add(labels, res.pred[v, rows], angle)
        if v in self.slot:
            if res.angle is not None:
                res.angle[self.slot[v], rows] = angle
            else:  # samples start.. of one variant are one contiguous block of the file
                block = memoryview(np.ascontiguousarray(angle, np.float32)).cast("B")
                at = self.offset + (self.slot[v] * len(self.labels) + start) * angle.shape[1] * 4
                done = 0
                try:
                    while done < len(block):
                        done += os.pwrite(self.fd, block[done:], at + done)
                except OSError as e:  # a full disk: one line with the path, the space needed and what to do
                    shape = (len(self.keep), len(self.labels), angle.shape[1])
                    raise storage_error(self.angle_file, "write the kept angles to", e,
                                        needed=int(np.prod(shape)) * 4) from None  # fmt: skip

    def close(self) -> None:
        """Close the angle file (idempotent); `results` does, and callers do on an error."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def results(self) -> ModelResults:
        if self.res is None:
            raise GeometryError("no batches to measure: the evaluation set is empty")
        if self.angle_file is not None and self.res.angle is None:
            self.close()
            self.res.angle = np.load(self.angle_file, mmap_mode="r")  # read back on demand
        return self.res


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
    keep: list[int] | None = None,
    angle_file: str | None = None,
) -> ModelResults:
    """Geometry of `model` on every variant of `data`, written batch by batch into one set of results arrays.

    `chunk` images are decoded and corrupted together (default `batch_size`); the model sees `batch_size` at a time.
    `amp`: float16 autocast on CUDA (float32 elsewhere); `channels_last`: NHWC convolutions, "auto" on CUDA.
    `keep`: the variants whose angles to every class are kept (default all), in `angle_file` when given.
    """
    out = ResultsWriter(variants, data.labels, keep, angle_file)
    try:
        for v, start, g in _measured(model, data, variants, batch_size=batch_size, device=device, seed=seed,
                                     params=params, chunk=chunk, amp=amp, channels_last=channels_last):  # fmt: skip
            out.put(v, start, g)
        return out.results()
    finally:
        out.close()
