"""Pruning methods of the paper (§3.1) behind one interface, with explicit masks and exact sparsity.

`prune(model, method, amount, data=...)` returns a pruned copy that is still an ordinary model of its registry
architecture: its stored weights are the effective ones (pruned weights exactly 0, MPT weights binarised), and
`model.masks` maps each pruned parameter name to a boolean keep-mask. `save_pruned` / `load_pruned` carry the
masks through the checkpoint. The final classifier (the class directions) stays dense unless prune_classifier=True.
Any `nn.Module` prunes (its classifier found by `lotterysite.models.find_classifier`), and models pruned by other
tools load with `load_pruned_elsewhere`. `granularity="channel"` removes whole channels instead of masking weights
(random, magnitude, Taylor; MPT stays weight-level): the model shrinks, see `structured`.
"""

from . import methods, mpt  # noqa: F401  (explicit imports register the methods)
from ._registry import MethodSpec, get_method, list_methods, register_method
from .api import prune, prune_model
from .checkpoint import load_pruned, save_pruned
from .config import PruneConfig
from .external import load_pruned_elsewhere
from .masks import MaskError, format_report, prunable_parameters, select_masks, sparsity_report
from .methods import taylor_scores
from .retrain import retrain

__all__ = [
    "MaskError",
    "MethodSpec",
    "PruneConfig",
    "format_report",
    "get_method",
    "list_methods",
    "load_pruned_elsewhere",
    "load_pruned",
    "prunable_parameters",
    "prune",
    "prune_model",
    "register_method",
    "retrain",
    "save_pruned",
    "select_masks",
    "sparsity_report",
    "taylor_scores",
]
