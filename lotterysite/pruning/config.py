"""`PruneConfig`: the pruning stage's frozen configuration (saved with every pruned checkpoint)."""

from __future__ import annotations

import math
from dataclasses import dataclass

SCOPES = ("global", "layer", "lamp")
GRANULARITIES = ("weight", "channel")
CHANNEL_METHODS = ("random", "magnitude", "taylor")  # the methods granularity "channel" supports


@dataclass(frozen=True)
class PruneConfig:
    method: str = "magnitude"  # a registered method: see `lotterysite.pruning.list_methods()`
    amount: float = 0.5  # fraction of the prunable weights removed, in [0, 1)
    scope: str | None = None  # "global": one ranking over all layers; "layer": each layer by amount; "lamp": one
    # ranking of layer-adaptive scores (LAMP, Lee et al. 2021: see masks.lamp_scores); None: the method's default
    prune_classifier: bool = False  # also prune the final classifier; the paper keeps the class directions dense
    seed: int = 0  # seeds random scores, MPT's initialisation and all shuffling
    batch_size: int = 128  # images per batch when `data` is an ImageSet (Taylor, MPT, retraining)
    taylor_batches: int = 16  # batches of `data` the Taylor gradient is accumulated over
    mpt_epochs: int = 10  # passes over `data` while learning MPT scores
    mpt_lr: float = 0.1  # peak learning rate of the scores (SGD with Nesterov momentum, cosine-annealed, as in biprop)
    mpt_weight_decay: float = 5e-4  # L2 on the scores
    bn_recalibration_batches: int = 20  # re-estimate batch-norm statistics on this many training batches after
    # pruning (weights untouched); 0: keep the dense model's statistics. Models without batch norm ignore it.
    retrain_epochs: int = 0  # fine-tune the surviving weights this many epochs after pruning (0: no retraining)
    retrain_lr: float = 1e-3  # peak AdamW learning rate of retraining, cosine-annealed
    progress: bool = True  # tqdm bars for Taylor accumulation, MPT training and retraining
    granularity: str = "weight"  # "weight": masks of single weights; "channel": whole channels and filters removed
    # through Torch-Pruning's dependency graph (random, magnitude, taylor; see pruning.structured)
    channel_norm: int = 1  # granularity "channel", magnitude: the group norm, 1 (L1) or 2 (L2)
    prune_penultimate: bool = False  # granularity "channel": also prune the classifier's input width (the feature
    # dimension); by default it is kept, so angles stay comparable with the dense model

    def __post_init__(self):
        amount = self.amount
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0.0 <= amount < 1.0:
            raise ValueError(
                f"amount {amount!r} is not a fraction in [0, 1); pass the share of prunable weights to remove, "
                "e.g. amount=0.9 for 90% sparsity"
            )
        if self.scope is not None and self.scope not in SCOPES:
            raise ValueError(
                f"scope {self.scope!r} is not one of {', '.join(map(repr, SCOPES))} (or None for the method's default)"
            )
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity {self.granularity!r} is not one of {', '.join(map(repr, GRANULARITIES))}")
        if self.granularity == "channel" and self.method not in CHANNEL_METHODS:
            raise ValueError(
                f"method {self.method!r} has no granularity 'channel' (MPT learns a weight-level subnetwork); "
                f"channel pruning methods: {', '.join(CHANNEL_METHODS)}"
            )
        if self.granularity == "channel" and self.prune_classifier:
            raise ValueError("prune_classifier does not apply to granularity 'channel' (the classifier's outputs "
                             "are the classes); prune_penultimate = true prunes its input width")  # fmt: skip
        if self.channel_norm not in (1, 2):
            raise ValueError(f"channel_norm is {self.channel_norm!r}; it must be 1 (L1) or 2 (L2)")
        for name in ("batch_size", "taylor_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} is {getattr(self, name)}; it must be >= 1")
        for name in ("mpt_epochs", "retrain_epochs", "bn_recalibration_batches"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} is {getattr(self, name)}; it must be >= 0")
        for name in ("mpt_lr", "retrain_lr"):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"{name} is {getattr(self, name)}; it must be a positive number")
