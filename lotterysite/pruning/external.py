"""Models pruned elsewhere: a state_dict (or checkpoint) loaded into the architecture it was pruned from.

Both ways other tools store a pruned model work: `torch.nn.utils.prune`'s reparametrisation (`<name>_orig` and
`<name>_mask`, multiplied back into `<name>`), and plain zeros. The masks, and so the sparsity shown, are measured
from the weights (a weight is pruned when it is exactly zero), over every conv and linear weight; the final
classifier counts only when the file pruned it, as for lotterysite's own models.
"""

from __future__ import annotations

import copy
import os

import torch
from torch import nn

from ..models import ModelError, read_state_dict
from ..models.imported import load_state
from .masks import attach_masks, prunable_parameters


def merge_prune_masks(state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """`w_orig` and `w_mask` (torch.nn.utils.prune) replaced by `w = w_orig * w_mask`; other keys as they are."""
    out = dict(state)
    for key in [k for k in state if k.endswith("_orig")]:
        name = key[: -len("_orig")]
        mask = out.pop(f"{name}_mask", None)
        if mask is None:
            raise ModelError(f"{source}: key {key!r} has no {name + '_mask'!r} beside it; save the model after "
                             "torch.nn.utils.prune pruned it, or after prune.remove")  # fmt: skip
        orig = out.pop(key)
        out[name] = orig * mask.to(orig.dtype)
    return out


def load_pruned_elsewhere(base: nn.Module, path: str | os.PathLike) -> nn.Module:
    """A copy of `base` holding the weights in `path`, with `masks` measured from its zero weights."""
    state = merge_prune_masks(read_state_dict(path), str(path))
    model = copy.deepcopy(base)
    load_state(model, state, str(path))
    dense_head = prunable_parameters(model)
    everything = prunable_parameters(model, prune_classifier=True)
    head_pruned = any(bool((p == 0).any()) for k, p in everything.items() if k not in dense_head)
    masks = {k: p.detach() != 0 for k, p in (everything if head_pruned else dense_head).items()}
    attach_masks(model, masks)
    return model.eval()
