"""Pruned checkpoints: the ordinary checkpoint format, with the masks and the pruning config in it (a channel-pruned
model: the changed module attributes in "structure", and `model.structured` less them in meta "structured")."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

from torch import nn

from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import PruneConfig
from .masks import MaskError, attach_masks, sparsity_report


def save_pruned(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    in_channels: int,
    image_size: int,
    options: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> None:
    """Save a pruned model with its masks; `meta` gains "pruning" (the PruneConfig) and "sparsity" (the report)."""
    masks = getattr(model, "masks", None)
    structured = getattr(model, "structured", None)
    if not masks and not structured:
        raise ValueError("model has no masks; prune it with lotterysite.pruning.prune, or save it with save_checkpoint")
    meta = dict(meta or {})
    config = getattr(model, "prune_config", None)
    if config is not None:
        meta["pruning"] = asdict(config)
    meta["sparsity"] = sparsity_report(model)
    if structured:
        meta["structured"] = {k: v for k, v in structured.items() if k != "modules"}
    save_checkpoint(
        path, model, in_channels=in_channels, image_size=image_size, options=options, masks=masks, meta=meta,
        structure=structured["modules"] if structured else None,
    )  # fmt: skip


def load_pruned(path: str | os.PathLike, **expect) -> tuple[nn.Module, dict[str, Any]]:
    """`load_checkpoint` plus the masks (checked against the weights) as `model.masks`, and `model.prune_config`."""
    model, payload = load_checkpoint(path, **expect)
    if "structured" in payload["meta"]:  # channel-pruned: the architecture itself is the pruning
        model.structured = {**payload["meta"]["structured"], "modules": payload.get("structure", {})}
        model.masks = {}
        if "pruning" in payload["meta"]:
            model.prune_config = PruneConfig(**payload["meta"]["pruning"])
        return model, payload
    if not payload["masks"]:
        raise CheckpointError(
            f"{path}: field 'masks' is empty; this is a dense checkpoint, load it with load_checkpoint"
        )
    try:
        attach_masks(model, payload["masks"])
    except MaskError as e:
        raise CheckpointError(f"{path}: field 'masks' does not fit the weights ({e})") from None
    if "pruning" in payload["meta"]:
        model.prune_config = PruneConfig(**payload["meta"]["pruning"])
    return model, payload
