"""Evaluation with corruptions generated per batch on the evaluation device, never cached.

Used when the corrupted variants of the evaluation set would not fit (`CORRUPTION_CACHE_LIMIT`) and for every
class-folder set: one batch of decoded uint8 images is read (or decoded) once, moved to the device, and every
variant of it (clean, then each corruption x severity) is generated there and measured before the next batch.
Peak memory is one batch and one variant of it, whatever the number of variants; what grows with the variants
is only the per-sample results (prediction, margin, length, angle to each class).

A batch's corruptions are seeded by the corruption seed and the batch's first sample index, as the cached path
seeds its 1000-image chunks: with `chunk=1000` the two give the same images.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..corruptions import corrupt
from ..geometry import ACCURATE_AUTOCAST, Geometry, feature_head, measure

CORRUPTION_CACHE_LIMIT = 8 * 2**30  # bytes of uint8 corrupted variants the cached path may write to STORE/.work


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


@torch.no_grad()
def measure_variants(
    model: torch.nn.Module,
    data,
    variants: list[tuple[str, int]],
    *,
    batch_size: int,
    device: torch.device,
    seed: int = 0,
    params: str = "cifar",
    chunk: int | None = None,
    amp: bool = True,
) -> list[Geometry]:
    """Geometry of `model` on every variant of `data`, one Geometry per variant (in `variants` order), on the CPU.

    `chunk` images are decoded and corrupted together (default `batch_size`); the model sees `batch_size` at a time.
    """
    device = torch.device(device)
    model.eval().to(device)
    # As measure_model: float16 autocast on CUDA (accurate to 1e-3; bfloat16 is not), float32 elsewhere.
    dtype = ACCURATE_AUTOCAST if amp and device.type == "cuda" else None
    head = feature_head(model)
    parts: list[list[Geometry]] = [[] for _ in variants]
    for start, images, labels in uint8_chunks(data, chunk or batch_size):
        x = images.to(device, non_blocking=True).float().div_(255.0)
        y = labels.to(device, non_blocking=True)
        for v, (name, severity) in enumerate(variants):
            xv = x if name == "clean" else corrupt(x, name, severity, seed=seed * 100_003 + start, params=params)
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
                parts[v].append(g.to("cpu"))
            del xv
    return [Geometry.cat(p) for p in parts]
