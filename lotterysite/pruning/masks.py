"""Which weights are prunable, exact top-k mask selection, applying masks, and the sparsity report."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import LotterysiteError
from ..models import find_classifier

# Unstructured pruning of convolutions and fully connected layers (paper §3.1); biases and norms stay dense.
PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


class MaskError(LotterysiteError, ValueError):
    """Masks do not fit a model; the message names the parameter and the fix."""


def prunable_parameters(model: nn.Module, *, prune_classifier: bool = False) -> dict[str, nn.Parameter]:
    """Weights of conv and linear layers by parameter name, in module order; the final classifier (found as
    `lotterysite.models.find_classifier` finds it) only if asked."""
    head = None if prune_classifier else find_classifier(model)[1]
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, PRUNABLE) and (prune_classifier or module is not head):
            out[f"{name}.weight" if name else "weight"] = module.weight
    return out


def pruned_count(amount: float, count: int) -> int:
    """How many of `count` weights `amount` removes: Python's round(amount * count), the rule every test checks."""
    return round(amount * count)


def lamp_scores(flat: torch.Tensor) -> torch.Tensor:
    """Layer-adaptive scores of one layer (LAMP, Lee et al., ICLR 2021) from its scores `flat` (>= 0; -inf marks
    weights already pruned, which stay -inf): each weight's squared score over the sum of the squared scores of the
    weights it does not outrank (itself included, ties by position). Within a layer the order is the scores' own;
    across layers it is comparable, so one global ranking prunes each layer in proportion to what it can lose
    (a layer's largest weight scores 1 and survives any amount below 1). A global ranking of raw magnitudes instead
    follows each layer's weight scale, which initialisation and batch norm set, not importance.
    """
    flat = flat.double().masked_fill(torch.isnan(flat), 0.0)  # NaN: least important, as in select_masks
    alive = ~torch.isneginf(flat)
    squared = flat[alive].square()
    order = torch.argsort(squared, stable=True)
    ranked = squared[order]
    rest = ranked.flip(0).cumsum(0).flip(0)  # sum over the weights at or above each rank
    lamp = torch.empty_like(squared)
    lamp[order] = torch.where(rest > 0, ranked / rest.clamp_min(torch.finfo(torch.float64).tiny), 0.0)
    out = torch.full_like(flat, float("-inf"))
    out[alive] = lamp
    return out


def select_masks(
    scores: dict[str, torch.Tensor],
    amount: float,
    scope: str,
    *,
    prior: dict[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Keep-masks removing the `round(amount * count)` lowest-scored weights, globally, in each layer, or globally
    on layer-adaptive scores (scope "lamp", see `lamp_scores`; scores must be >= 0).

    Ties are broken by position (a stable argsort), never by a threshold, so the count is exact whatever the scores.
    Weights already pruned in `prior` are removed first; pruning below the existing sparsity is an error.
    """
    scores = {k: v.detach().flatten().double() for k, v in scores.items()}
    for name, mask in (prior or {}).items():
        if name in scores:
            scores[name] = scores[name].masked_fill(~mask.flatten().to(scores[name].device), float("-inf"))
    if scope == "lamp":
        negative = [k for k, v in scores.items() if bool(((v < 0) & ~torch.isneginf(v)).any())]
        if negative:
            raise ValueError(f"scope 'lamp' needs scores >= 0; {', '.join(negative)} has negative scores")
        scores = {k: lamp_scores(v) for k, v in scores.items()}
    if scope in ("global", "lamp"):
        groups = [list(scores)]
    elif scope == "layer":
        groups = [[k] for k in scores]
    else:
        raise ValueError(f"scope {scope!r} is not 'global', 'layer' or 'lamp'")
    masks: dict[str, torch.Tensor] = {}
    for names in groups:
        flat = torch.cat([scores[k].cpu() for k in names]) if names else torch.empty(0, dtype=torch.float64)
        k = pruned_count(amount, flat.numel())
        already = int(torch.isneginf(flat).sum())
        if already > k:
            raise MaskError(
                f"{', '.join(names)}: {already} weights are already pruned but amount {amount} removes only {k}; "
                "pass an amount at least the model's current sparsity"
            )
        # NaN scores would sort unpredictably; treat them as least important, after the already-pruned ones.
        flat = torch.nan_to_num(flat, nan=-1e308)
        keep = torch.ones(flat.numel(), dtype=torch.bool)
        keep[torch.argsort(flat, stable=True)[:k]] = False
        start = 0
        for name in names:
            n = scores[name].numel()
            masks[name] = keep[start : start + n].reshape(scores[name].shape)
            start += n
    return masks


def reshape_masks(masks: dict[str, torch.Tensor], params: dict[str, nn.Parameter]) -> dict[str, torch.Tensor]:
    return {k: m.reshape(params[k].shape).to(params[k].device) for k, m in masks.items()}


@torch.no_grad()
def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero the pruned weights in place, so the stored weights are the effective ones."""
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        if name not in params:
            raise MaskError(f"mask {name!r} names no parameter of {getattr(model, 'arch', type(model).__name__)}")
        p = params[name]
        if tuple(mask.shape) != tuple(p.shape):
            raise MaskError(f"mask {name!r} has shape {tuple(mask.shape)} but the weight has {tuple(p.shape)}")
        p.mul_(mask.to(p.device, p.dtype))


def attach_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Check `masks` against the model's weights (pruned ones must be zero) and attach them as `model.masks`."""
    params = dict(model.named_parameters())
    clean = {}
    for name, mask in masks.items():
        p = params.get(name)
        if p is None:
            raise MaskError(f"mask {name!r} names no parameter of {getattr(model, 'arch', type(model).__name__)}")
        mask = mask.to(device=p.device, dtype=torch.bool)
        if tuple(mask.shape) != tuple(p.shape):
            raise MaskError(f"mask {name!r} has shape {tuple(mask.shape)} but the weight has {tuple(p.shape)}")
        if bool((p.detach()[~mask] != 0).any()):
            raise MaskError(f"{name}: weights the mask prunes are not zero; the masks belong to another model")
        clean[name] = mask
    model.masks = clean


def sparsity_report(model: nn.Module) -> dict:
    """Per layer and in total: weight count, pruned (masked) count, zero count and sparsity.

    A pruned model is reported over its masked weights; a dense one over its default prunable weights; a
    channel-pruned one over the weights its dense model had (removed channels count as pruned, and as zeros).
    """
    masks = getattr(model, "masks", None) or {}
    params = dict(model.named_parameters())
    structured = getattr(model, "structured", None)
    # A channel-pruned model is reported over its dense weights: a removed channel's weights count as pruned.
    dense = structured["dense_layers"] if structured else {}
    names = list(dense or masks or prunable_parameters(model))
    layers = {}
    for name in names:
        w = params[name].detach()
        count = dense.get(name, w.numel())
        pruned = int((~masks[name]).sum()) if name in masks else count - w.numel()
        zeros = int((w == 0).sum()) + count - w.numel()
        layers[name] = {"count": count, "pruned": pruned, "zeros": zeros, "sparsity": pruned / count if count else 0.0}
    count = sum(v["count"] for v in layers.values())
    pruned = sum(v["pruned"] for v in layers.values())
    return {
        "layers": layers,
        "count": count,
        "pruned": pruned,
        "zeros": sum(v["zeros"] for v in layers.values()),
        "sparsity": pruned / count if count else 0.0,
    }


def format_report(report: dict) -> str:
    """The report as a plain-text table."""
    width = max([len("total"), *map(len, report["layers"])])
    lines = [f"{'layer':<{width}} {'weights':>9} {'pruned':>9} {'zeros':>9} {'sparsity':>8}"]
    for name, r in [*report["layers"].items(), ("total", report)]:
        lines.append(f"{name:<{width}} {r['count']:>9} {r['pruned']:>9} {r['zeros']:>9} {r['sparsity']:>8.2%}")
    return "\n".join(lines)
