"""Retraining: fine-tune the surviving weights of a pruned model with its masks held fixed."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..config import TrainConfig
from ..data import ImageSet
from ..training import History, train
from .masks import apply_masks


def retrain(
    model: nn.Module,
    train_set: ImageSet,
    cfg: TrainConfig,
    *,
    device: torch.device | str = "cpu",
    test_set: ImageSet | None = None,
    progress: bool = True,
) -> tuple[nn.Module, History]:
    """A fine-tuned copy of the pruned `model` (left untouched) and its training history; pruned weights stay 0
    (a channel-pruned model has none: its removed channels are gone, every remaining weight trains)."""
    masks = getattr(model, "masks", None)
    if not masks and not getattr(model, "structured", None):  # a channel-pruned model has no masks to hold
        raise ValueError(
            "retrain needs a pruned model (with .masks); prune it first, or use training.train for a dense one"
        )
    model = copy.deepcopy(model).to(device)
    model.masks = {k: m.to(device) for k, m in (masks or {}).items()}
    params = dict(model.named_parameters())
    # Zeroing the gradients keeps the optimizer's moments of pruned weights at zero; re-applying the masks after
    # every step also undoes weight decay and any numerical drift, so the pruned weights are exactly 0 throughout.
    hooks = [params[name].register_hook(lambda g, m=mask: g * m) for name, mask in model.masks.items()]
    try:
        history = train(
            model, train_set, cfg, device=device, test_set=test_set, progress=progress, desc="retrain",
            after_step=lambda m: apply_masks(m, m.masks),
        )  # fmt: skip
    finally:
        for h in hooks:
            h.remove()
    apply_masks(model, model.masks)
    return model, history
