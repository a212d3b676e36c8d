"""`data` for the methods that need it: an ImageSet (or class-folder set), or any iterable of (images, labels)
batches in whatever form the model expects (float in [0, 1], normalised, any size)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

import torch

from ..data import ImageFolderSet, ImageSet
from ..data.imageset import batch_indices

Data = ImageSet | ImageFolderSet | Iterable[tuple[torch.Tensor, torch.Tensor]]


class Batches:
    """Batches gathered once on the CPU, as given, then re-batched (and shuffled from a seed) like an ImageSet.

    Training needs repeated shuffled epochs, which a one-shot iterable cannot give. The images are kept in the
    form they came in: nothing is quantised or rescaled. For data too large to hold, pass an `ImageFolderSet`.
    """

    def __init__(self, data: Iterable[tuple[torch.Tensor, torch.Tensor]]):
        xs, ys = [], []
        for x, y in data:
            xs.append(x.detach().cpu())
            ys.append(y.detach().cpu().long())
        if not xs:
            raise ValueError("data yielded no batches; pass an ImageSet, e.g. load_dataset('fashion_mnist').train")
        self.images, self.labels = torch.cat(xs), torch.cat(ys)

    def __len__(self) -> int:
        return len(self.labels)

    def batches(
        self, batch_size: int, *, shuffle: bool = False, seed: int = 0, device: torch.device | str = "cpu"
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in batch_indices(len(self), batch_size, shuffle=shuffle, seed=seed):
            yield self.images[idx].to(device, non_blocking=True), self.labels[idx].to(device, non_blocking=True)


def first_batches(data: Data, n: int | None, *, batch_size: int, device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The first `n` batches (None: all of them, one at a time), in order (a data set is batched unshuffled, so the
    result is reproducible)."""
    batches = data.batches(batch_size, device=device) if hasattr(data, "batches") else iter(data)
    for x, y in islice(batches, n):
        yield x.to(device), y.to(device)


def training_set(data: Data) -> ImageSet | ImageFolderSet | Batches:
    """Something `training.train` can draw shuffled epochs from: a data set as it is, any other batches gathered."""
    if hasattr(data, "batches") and hasattr(data, "__len__"):
        return data
    return Batches(data)
