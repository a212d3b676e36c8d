"""Score-based pruning (paper §3.1): random, magnitude and first-order Taylor importance."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ._data import first_batches
from ._registry import register_method
from .config import PruneConfig
from .masks import select_masks


def _prior(model: nn.Module) -> dict[str, torch.Tensor]:
    return getattr(model, "masks", None) or {}


@register_method("random")
def random_pruning(model: nn.Module, targets: dict[str, nn.Parameter], cfg: PruneConfig, *, data, device):
    """Uniform random scores from a generator seeded by `cfg.seed` (independent of the global RNG)."""
    generator = torch.Generator().manual_seed(cfg.seed)
    scores = {name: torch.rand(p.numel(), generator=generator, dtype=torch.float64) for name, p in targets.items()}
    return select_masks(scores, cfg.amount, cfg.scope, prior=_prior(model))


@register_method("magnitude")
def magnitude_pruning(model: nn.Module, targets: dict[str, nn.Parameter], cfg: PruneConfig, *, data, device):
    """Score |w|: the smallest weights go."""
    scores = {name: p.detach().abs() for name, p in targets.items()}
    return select_masks(scores, cfg.amount, cfg.scope, prior=_prior(model))


def taylor_scores(
    model: nn.Module, targets: dict[str, nn.Parameter], batches, *, total: int | None = None, progress: bool = True
) -> dict[str, torch.Tensor]:
    """|dL/dw * w| with L the mean cross-entropy over every image of `batches` (paper §3.1, first-order term).

    The gradient is accumulated over all batches before the absolute value is taken, so the score is the paper's
    |grad L(D, phi) phi_m| on the data seen, not a sum of per-batch magnitudes. The model is in eval mode: the
    importance is that of the network as it will be used (batch norm on running statistics, no dropout).
    """
    was_training = model.training
    model.eval()
    grads = {name: torch.zeros_like(p, dtype=torch.float64) for name, p in targets.items()}
    seen = 0
    for x, y in tqdm(batches, total=total, desc="taylor", unit="batch", disable=not progress, leave=False):
        model.zero_grad(set_to_none=True)
        # Summed, then divided by the image count below: batches of unequal size weigh by their images.
        F.cross_entropy(model(x), y, reduction="sum").backward()
        for name, p in targets.items():
            if p.grad is not None:
                grads[name] += p.grad.double()
        seen += len(y)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    if seen == 0:
        raise ValueError("Taylor pruning got no batches from data; pass an ImageSet or a non-empty iterable of batches")
    return {name: (grads[name] / seen * p.detach().double()).abs() for name, p in targets.items()}


@register_method("taylor", needs_data=True)
def taylor_pruning(model: nn.Module, targets: dict[str, nn.Parameter], cfg: PruneConfig, *, data, device):
    if cfg.taylor_all:  # the whole of `data`, one batch at a time: the paper's D is the training set
        n = None
        total = -(-len(data) // cfg.batch_size) if hasattr(data, "batches") and hasattr(data, "__len__") else None
    else:
        n = total = cfg.taylor_batches
    batches = first_batches(data, n, batch_size=cfg.batch_size, device=device)
    scores = taylor_scores(model, targets, batches, total=total, progress=cfg.progress)
    return select_masks(scores, cfg.amount, cfg.scope, prior=_prior(model))
