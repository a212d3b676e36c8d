"""Batch-norm recalibration: re-estimate running statistics of a pruned model on a few training batches.

Pruning changes every activation downstream of a pruned layer, but batch norm keeps normalising with the dense
model's running mean and variance; a network that would still classify well is then fed mis-scaled activations
(small_vgg, magnitude 50 %: 31 % clean accuracy with the dense statistics, 84 % after recalibrating on 20 batches,
dense 87 %). Only the running statistics change: weights, masks and the affine scale and shift stay as they are.
"""

from __future__ import annotations

import torch
from torch import nn

from ._data import Data, first_batches

_BN = nn.modules.batchnorm._BatchNorm


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, _BN) and m.track_running_stats for m in model.modules())


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, data: Data, *, batches: int, batch_size: int, device) -> int:
    """Reset every batch norm's running statistics and re-estimate them, in place, as the plain average over the
    first `batches` batches of `data`; returns the number of batches used (0 when the model has no batch norm)."""
    layers = [m for m in model.modules() if isinstance(m, _BN) and m.track_running_stats]
    if not layers or batches < 1:
        return 0
    was_training = model.training
    saved = [(m, m.momentum) for m in layers]
    model.eval()  # dropout and the rest stay in inference mode; only batch norm collects statistics
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
        m.train()
    used = 0
    try:
        for x, _ in first_batches(data, batches, batch_size=batch_size, device=device):
            model(x)
            used += 1
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.train(was_training)
    if used == 0:
        raise ValueError("batch-norm recalibration got no batches from data; pass the training ImageSet")
    return used
