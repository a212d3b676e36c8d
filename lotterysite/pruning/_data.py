"""`data` for the methods that need it: an ImageSet, or an iterable of (images in [0, 1], labels) batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

import torch

from ..data import ImageSet

Data = ImageSet | Iterable[tuple[torch.Tensor, torch.Tensor]]


def first_batches(data: Data, n: int, *, batch_size: int, device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The first `n` batches, in order (an ImageSet is batched unshuffled, so the result is reproducible)."""
    batches = data.batches(batch_size, device=device) if isinstance(data, ImageSet) else iter(data)
    for x, y in islice(batches, n):
        yield x.to(device), y.to(device)


def as_imageset(data: Data, num_classes: int) -> ImageSet:
    """Training needs repeated shuffled epochs: batches are gathered once into an ImageSet of 8-bit images."""
    if isinstance(data, ImageSet):
        return data
    xs, ys = [], []
    for x, y in data:
        xs.append(x.detach().cpu().float())
        ys.append(y.detach().cpu().long())
    if not xs:
        raise ValueError("data yielded no batches; pass an ImageSet, e.g. load_dataset('fashion_mnist').train")
    x, y = torch.cat(xs), torch.cat(ys)
    scaled = x * 255.0
    # Our images all come from 8-bit files; anything else would be silently quantised, so refuse it.
    if bool(((scaled - scaled.round()).abs() > 1e-3).any()) or x.min() < 0 or x.max() > 1:
        raise ValueError(
            "training on batches needs images on the 8-bit grid in [0, 1]; pass the ImageSet itself instead"
        )
    return ImageSet(scaled.round().to(torch.uint8), y, tuple(str(i) for i in range(num_classes)), "batches")
