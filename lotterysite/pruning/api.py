"""`prune`: one entry point for every registered method."""

from __future__ import annotations

import copy
import dataclasses
import warnings

import torch
from torch import nn

from ._data import Data, training_set
from ._registry import get_method
from .batchnorm import has_batch_norm, recalibrate_batch_norm
from .config import PruneConfig
from .masks import apply_masks, attach_masks, prunable_parameters, pruned_count, reshape_masks
from .retrain import retrain
from .structured import prune_channels

_FIELDS = {f.name for f in dataclasses.fields(PruneConfig)} - {"method", "amount", "seed"}


def prune(
    model: nn.Module,
    method: str,
    amount: float,
    *,
    data: Data | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    example_input: torch.Tensor | None = None,
    **options,
) -> nn.Module:
    """A pruned copy of `model` (left untouched) with `round(amount * count)` prunable weights removed.

    `data` (a data set, or any iterable of (images, labels) batches in the form the model expects) feeds Taylor,
    MPT, retraining and the batch-norm recalibration that follows pruning (`bn_recalibration_batches`, on by
    default for models with batch norm); `options` are the other `PruneConfig` fields (scope, prune_classifier,
    taylor_batches, mpt_epochs, granularity, ...). granularity="channel" removes whole channels (see
    `pruning.structured`); it traces the model on one image of `data`, or on `example_input` when given.
    """
    unknown = sorted(set(options) - _FIELDS)
    if unknown:
        raise TypeError(f"unknown pruning option(s) {', '.join(unknown)}; known options: {', '.join(sorted(_FIELDS))}")
    get_method(method)  # an unknown method is reported before any config field
    cfg = PruneConfig(method=method, amount=amount, seed=seed, **options)
    return prune_model(model, cfg, data=data, device=device, example_input=example_input)


def prune_model(
    model: nn.Module,
    cfg: PruneConfig,
    *,
    data: Data | None = None,
    device: torch.device | str = "cpu",
    example_input: torch.Tensor | None = None,
) -> nn.Module:
    """`prune` driven by a PruneConfig (what the recipe parses into)."""
    spec = get_method(cfg.method)
    scope = cfg.scope or spec.scopes[0]
    if scope not in spec.scopes:
        raise ValueError(
            f"method {cfg.method!r} does not support scope {scope!r}; it supports {', '.join(map(repr, spec.scopes))}"
        )
    cfg = dataclasses.replace(cfg, scope=scope)
    if spec.needs_data and data is None:
        raise ValueError(
            f"method {cfg.method!r} needs data: pass data= an ImageSet (e.g. load_dataset('fashion_mnist').train) "
            "or an iterable of (images, labels) batches"
        )
    if cfg.retrain_epochs and data is None:
        raise ValueError(f"retrain_epochs={cfg.retrain_epochs} needs data=: pass the training ImageSet")
    device = torch.device(device)
    pruned = copy.deepcopy(model).to(device)
    if getattr(pruned, "masks", None):
        pruned.masks = {k: m.to(device) for k, m in pruned.masks.items()}
    if cfg.granularity == "channel":
        pruned.structured = prune_channels(pruned, cfg, data=data, device=device, example_input=example_input)
        pruned.masks = {}
        return _finish(pruned, cfg, data, device)
    if getattr(pruned, "structured", None):
        raise ValueError("the model is channel-pruned; prune it further with granularity='channel', or prune "
                         "the dense model with masks")  # fmt: skip
    targets = prunable_parameters(pruned, prune_classifier=cfg.prune_classifier)
    outside = sorted(set(getattr(pruned, "masks", None) or {}) - set(targets))
    if outside and cfg.method != "mpt":  # MPT starts from a fresh initialisation, earlier masks play no part
        raise ValueError(
            f"the model is already pruned in {', '.join(outside)}, which this config does not prune; "
            "pass prune_classifier=True to keep pruning the classifier"
        )
    masks = reshape_masks(spec.fn(pruned, targets, cfg, data=data, device=device), targets)
    if set(masks) != set(targets):
        raise RuntimeError(f"method {cfg.method!r} returned masks for {sorted(masks)}, expected {sorted(targets)}")
    _check_counts(masks, cfg)
    apply_masks(pruned, masks)
    attach_masks(pruned, masks)
    return _finish(pruned, cfg, data, device)


def _finish(pruned: nn.Module, cfg: PruneConfig, data: Data | None, device) -> nn.Module:
    """Batch-norm recalibration and retraining, the same for masks and channels."""
    pruned.eval()
    cfg = dataclasses.replace(cfg, bn_recalibration_batches=_recalibrate(pruned, cfg, data, device))
    pruned.prune_config = cfg  # records the batches batch norm was recalibrated on (0: not recalibrated)
    if cfg.retrain_epochs:
        history = getattr(pruned, "history", None)
        pruned, retrain_history = retrain(
            pruned, training_set(data), cfg.train_config("retrain"), device=device, progress=cfg.progress
        )
        pruned.retrain_history = retrain_history
        if history is not None:
            pruned.history = history
    return pruned


def _recalibrate(model: nn.Module, cfg: PruneConfig, data: Data | None, device) -> int:
    if not cfg.bn_recalibration_batches or not has_batch_norm(model):
        return 0
    if data is None:
        warnings.warn(
            f"{cfg.method} pruning of a model with batch norm without data=: its running statistics stay the dense "
            "model's, which can cost most of its accuracy; pass data= the training ImageSet to recalibrate them, "
            "or bn_recalibration_batches=0 to silence this",
            stacklevel=4,
        )
        return 0
    return recalibrate_batch_norm(
        model, data, batches=cfg.bn_recalibration_batches, batch_size=cfg.batch_size, device=device
    )


def _check_counts(masks: dict[str, torch.Tensor], cfg: PruneConfig) -> None:
    """Guard the exactness promise at the source: the method removed exactly round(amount * count)."""
    groups = [list(masks)] if cfg.scope in ("global", "lamp") else [[k] for k in masks]
    for names in groups:
        count = sum(masks[k].numel() for k in names)
        removed = sum(int((~masks[k]).sum()) for k in names)
        if removed != pruned_count(cfg.amount, count):
            raise RuntimeError(
                f"method {cfg.method!r} removed {removed} of {count} weights in {', '.join(names)}, "
                f"not round({cfg.amount} * {count}) = {pruned_count(cfg.amount, count)}"
            )
