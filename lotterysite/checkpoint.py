"""Checkpoints: written atomically, read with `torch.load(weights_only=True)`, checked against what is expected.

A checkpoint is a plain dict of tensors and JSON-like values: {"format", "arch", "num_classes", "in_channels",
"image_size", "options", "state_dict", "masks", "meta"}. `masks` maps parameter names to boolean keep-masks for
pruned models (empty for dense ones); `meta` holds the configs that produced it. A channel-pruned model adds
"structure": {module name: {attribute: value}}, the attributes pruning changed (in_channels, out_features, ...):
with the state_dict's shapes they rebuild its architecture from the registry factory (`resize_modules`).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import LotterysiteError
from .fileio import write_bytes
from .models import create_model, find_classifier

FORMAT = "lotterysite-checkpoint/1"


class CheckpointError(LotterysiteError, ValueError):
    """A checkpoint cannot be used; the message names the file, the field and the fix."""


def non_finite(state: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor of `state` holding NaN or infinity, or None."""
    for name, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            return name
    return None


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    in_channels: int,
    image_size: int,
    options: dict[str, Any] | None = None,
    masks: dict[str, torch.Tensor] | None = None,
    meta: dict[str, Any] | None = None,
    structure: dict[str, dict] | None = None,
) -> None:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    bad = non_finite(state)
    if bad is not None:  # a diverged training: such weights are never stored, so never reused
        who = (meta or {}).get("model_id") or model.arch
        raise CheckpointError(
            f"{who}: weight {bad!r} holds NaN or infinity (the training diverged), so it is not saved to {path}; "
            "lower the learning rate ([architectures.train] lr, or retrain_lr / mpt_lr) and rerun"
        )
    payload = {
        "format": FORMAT,
        "arch": model.arch,
        "num_classes": find_classifier(model)[1].out_features,
        "in_channels": in_channels,
        "image_size": image_size,
        "options": dict(options or {}),
        "state_dict": state,
        "masks": {k: v.detach().cpu().bool() for k, v in (masks or {}).items()},
        "meta": meta or {},
    }
    if structure:
        payload["structure"] = structure
    # Serialised in memory first: torch reports a full disk without the path or the errno.
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_bytes(path, buf.getvalue())


# Every field a checkpoint must have, and its type: a hand-made checkpoint missing one is named, not a KeyError.
FIELDS = {"arch": str, "num_classes": int, "in_channels": int, "image_size": int, "options": dict,
          "state_dict": dict, "masks": dict, "meta": dict}  # fmt: skip


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} not found; train one with `lotterysite train` or fix the path")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated/foreign files
        # torch's own message suggests weights_only=False, which would run code from the file: never pass it on.
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({type(e).__name__}: truncated, not a torch file, or it holds "
            "objects other than tensors); re-create it with `lotterysite train` or "
            "lotterysite.checkpoint.save_checkpoint"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: field 'format' is not {FORMAT!r}; this is not a lotterysite checkpoint (a bare state_dict? "
            "save it with lotterysite.checkpoint.save_checkpoint)"
        )
    for name, kind in FIELDS.items():
        if name not in payload:
            raise CheckpointError(f"{path}: field {name!r} is missing; save checkpoints with "
                                  "lotterysite.checkpoint.save_checkpoint, which writes every field")  # fmt: skip
        value = payload[name]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise CheckpointError(f"{path}: field {name!r} is {type(value).__name__}, expected {kind.__name__}")
    if not isinstance(payload.get("structure", {}), dict):
        raise CheckpointError(f"{path}: field 'structure' is {type(payload['structure']).__name__}, expected dict")
    return payload


def resize_modules(model: nn.Module, structure: dict[str, dict], state: dict[str, torch.Tensor]) -> None:
    """Give `model` (built by its factory, dense) the architecture of a channel-pruned one: set the attributes
    `structure` names, and replace every parameter and buffer whose shape differs from `state`'s by an empty
    tensor of the stored shape (load_state_dict then fills it)."""
    plain = (bool, int, float, str, tuple, type(None))
    for name, attrs in structure.items():
        module = model.get_submodule(name)
        for attr, value in attrs.items():
            # Only a module's own plain attributes (sizes, groups, ...), never methods or private state.
            if attr.startswith("_") or not isinstance(getattr(module, attr, None), plain):
                raise ValueError(f"module {name!r} has no plain attribute {attr!r}")
            setattr(module, attr, tuple(value) if isinstance(value, list) else value)
    for key, value in state.items():
        owner, _, leaf = key.rpartition(".")
        module = model.get_submodule(owner)
        if leaf in module._parameters and module._parameters[leaf].shape != value.shape:
            old = module._parameters[leaf]
            module._parameters[leaf] = nn.Parameter(torch.empty_like(value), requires_grad=old.requires_grad)
        elif module._buffers.get(leaf) is not None and module._buffers[leaf].shape != value.shape:
            module._buffers[leaf] = torch.empty_like(value)


def load_checkpoint(
    path: str | os.PathLike,
    *,
    arch: str | None = None,
    num_classes: int | None = None,
    in_channels: int | None = None,
    image_size: int | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model stored at `path`; `arch`, `num_classes`, `in_channels`, `image_size`, when given, must
    match the checkpoint's."""
    payload = read_checkpoint(path)
    for name, want, what in (("in_channels", in_channels, "channels"), ("image_size", image_size, "pixels a side")):
        if want is not None and payload[name] != want:
            raise CheckpointError(
                f"{path}: field {name!r} is {payload[name]}, but the data set's images have {want} {what}; "
                "use a checkpoint trained on this data set"
            )
    if arch is not None and payload["arch"] != arch:
        raise CheckpointError(
            f"{path}: field 'arch' is {payload['arch']!r}, expected {arch!r}; use a checkpoint of {arch}"
        )
    if num_classes is not None and payload["num_classes"] != num_classes:
        raise CheckpointError(
            f"{path}: field 'num_classes' is {payload['num_classes']}, but the data set has {num_classes} classes; "
            "use a checkpoint trained on this data set"
        )
    try:
        model = create_model(
            payload["arch"],
            num_classes=payload["num_classes"],
            in_channels=payload["in_channels"],
            image_size=payload["image_size"],
            **payload["options"],
        )
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: fields 'arch' / 'options' do not build a model ({e})") from None
    try:
        if payload.get("structure"):  # only a channel-pruned model's shapes may differ from its factory's
            resize_modules(model, payload["structure"], payload["state_dict"])
    except (AttributeError, ValueError) as e:  # a module or attribute the model lacks
        raise CheckpointError(f"{path}: field 'structure' does not fit {payload['arch']} ({e})") from None
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(f"{path}: field 'state_dict' does not fit {payload['arch']} ({first})") from None
    bad = non_finite(payload["state_dict"])
    if bad is not None:
        raise CheckpointError(f"{path}: field 'state_dict' key {bad!r} holds NaN or infinity (a diverged training); "
                              "train the model again with a lower learning rate")  # fmt: skip
    model.eval()
    return model, payload
