"""Multi-prize lottery tickets by biprop (Diffenderfer & Kailkhura 2021, Algorithm 1), paper §3.1.

The weights are frozen at a seeded Kaiming-normal initialisation; each pruned layer learns a score per weight and
uses the top-k scores as its subnetwork, with binarised weights sign(w) * alpha, alpha the mean |w| over the kept
weights of that layer. Gradients reach the scores straight through the mask. Batch norm is kept non-affine (its
scale and shift frozen at 1 and 0) and biases at zero, as in biprop, so nothing but the subnetwork is learned.
After training, the learned subnetwork is written into the plain registry model as its effective weights.

Tested on the registry's LeNet-5 itself (61k weights): its random 50% subnetwork, scores learned 2 epochs on
Fashion-MNIST, reaches ~83-84% test accuracy; no wider model was needed.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..models import find_classifier
from ..training import train
from ._data import training_set
from ._registry import register_method
from .config import PruneConfig
from .masks import PRUNABLE, pruned_count


def topk_mask(scores: torch.Tensor, n_pruned: int) -> torch.Tensor:
    """Keep-mask dropping the `n_pruned` smallest |scores|; topk returns exactly that many indices, ties or not."""
    flat = scores.detach().abs().flatten()
    keep = torch.ones_like(flat, dtype=torch.bool)
    # topk, not a full argsort: this runs every training step, and topk is ~20x faster on CPU at these sizes.
    keep[torch.topk(flat, n_pruned, largest=False, sorted=False).indices] = False
    return keep.reshape(scores.shape)


def binarise(weight: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """sign(w) * alpha on the kept weights, alpha = mean |w| over them; zero elsewhere."""
    kept = keep.sum().clamp(min=1)
    alpha = (weight.abs() * keep).sum() / kept
    return torch.sign(weight) * alpha * keep


class Biprop(nn.Module):
    """Weight parametrization: frozen random weight in, binarised top-k subnetwork out, scores learned."""

    def __init__(self, weight: torch.Tensor, n_pruned: int, generator: torch.Generator):
        super().__init__()
        scores = torch.empty_like(weight, device="cpu")
        # Scores start Kaiming-uniform (a = sqrt(5)), as in biprop; only their order within the layer matters.
        bound = 1.0 / math.sqrt(max(1, weight[0].numel()))
        scores.uniform_(-bound, bound, generator=generator)
        self.scores = nn.Parameter(scores.to(weight.device))
        self.n_pruned = n_pruned

    def mask(self) -> torch.Tensor:
        return topk_mask(self.scores, self.n_pruned)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        keep = self.mask()
        alpha = (weight.abs() * keep).sum() / keep.sum().clamp(min=1)
        # Straight-through: the value is exactly the hard mask (s - s.detach() == 0), while the gradient w.r.t. the
        # mask reaches |scores| unchanged, scaled by sign(w) * alpha like the weight it gates.
        s = self.scores.abs()
        return torch.sign(weight) * alpha * (keep + (s - s.detach()))


@torch.no_grad()
def reinitialise(model: nn.Module, generator: torch.Generator) -> None:
    """Kaiming-normal conv/linear weights from `generator`, zero biases, batch norm reset to identity."""
    for module in model.modules():
        if isinstance(module, PRUNABLE):
            w = torch.empty_like(module.weight, device="cpu")
            fan_in = module.weight[0].numel()
            w.normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)  # Kaiming normal, fan-in, ReLU gain
            module.weight.copy_(w)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_parameters()


@register_method("mpt", scopes=("layer",), needs_data=True)
def mpt_pruning(model: nn.Module, targets: dict[str, nn.Parameter], cfg: PruneConfig, *, data, device):
    """Learn a per-layer top-k subnetwork of the randomly initialised `model` for `cfg.mpt_epochs` epochs."""
    train_set = training_set(data)
    generator = torch.Generator().manual_seed(cfg.seed)
    reinitialise(model, generator)
    for p in model.parameters():
        p.requires_grad_(False)
    modules = dict(model.named_modules())
    target_modules = {name: modules[name.rpartition(".")[0]] for name in targets}
    head = find_classifier(model)[1]
    head_params = []
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, PRUNABLE) or module in target_modules.values():
                continue
            if cfg.mpt_learn_classifier and module is head:
                # A learned head: its Kaiming-normal weights and zero bias are the start, trained with the scores.
                head_params += [p for p in (module.weight, module.bias) if p is not None]
                continue
            # A layer left dense (the classifier by default) is binarised over all its weights, still frozen.
            module.weight.copy_(binarise(module.weight, torch.ones_like(module.weight, dtype=torch.bool)))
    for p in head_params:
        p.requires_grad_(True)
    wrappers = {}
    for name, module in target_modules.items():
        wrapper = Biprop(module.weight, pruned_count(cfg.amount, module.weight.numel()), generator)
        parametrize.register_parametrization(module, "weight", wrapper)
        module.parametrizations.weight.original.requires_grad_(False)
        wrappers[name] = wrapper
    scores = [w.scores for w in wrappers.values()]
    learned = scores + head_params
    model.history = train(
        model, train_set, cfg.train_config("mpt"), device=device, params=learned, progress=cfg.progress, desc="mpt"
    )
    masks = {}
    with torch.no_grad():
        for name, module in target_modules.items():
            keep = wrappers[name].mask()
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
            module.weight.copy_(binarise(module.weight, keep))
            masks[name] = keep
    for p in model.parameters():
        p.requires_grad_(True)
    return masks
