"""`PruneConfig`: the pruning stage's frozen configuration (saved with every pruned checkpoint)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import OPTIMIZERS, SCHEDULES, TrainConfig

SCOPES = ("global", "layer", "lamp")
# The TrainConfig settings each training stage of pruning (MPT's scores, retraining) sets as `<stage>_<setting>`;
# batch_size and seed are shared with the rest of the pruning config.
STAGE_SETTINGS = ("epochs", "optimizer", "lr", "momentum", "weight_decay", "schedule", "augment", "crop_padding",
                  "flip")  # fmt: skip
STAGES = ("mpt", "retrain")


@dataclass(frozen=True)
class PruneConfig:
    method: str = "magnitude"  # a registered method: see `lotterysite.pruning.list_methods()`
    amount: float = 0.5  # fraction of the prunable weights removed, in [0, 1)
    scope: str | None = None  # "global": one ranking over all layers; "layer": each layer by amount; "lamp": one
    # ranking of layer-adaptive scores (LAMP, Lee et al. 2021: see masks.lamp_scores); None: the method's default
    prune_classifier: bool = False  # also prune the final classifier; the paper keeps the class directions dense
    seed: int = 0  # seeds random scores, MPT's initialisation and all shuffling
    batch_size: int = 128  # images per batch when `data` is an ImageSet (Taylor, MPT, retraining)
    # Batches of `data` the Taylor gradient is accumulated over, or "all": every batch of `data`, streamed (the
    # paper's D, the whole training set; memory holds one batch and the float64 gradient sums)
    taylor_batches: int | str = 16
    mpt_epochs: int = 10  # passes over `data` while learning MPT scores
    mpt_optimizer: str = "sgd"  # of the scores: "sgd" (Nesterov momentum, as in biprop) or "adamw"
    mpt_lr: float = 0.1  # peak learning rate of the scores
    mpt_momentum: float = 0.9  # SGD momentum of the scores
    mpt_weight_decay: float = 5e-4  # L2 on the scores
    mpt_schedule: str = "cosine"  # learning-rate schedule of the scores: "cosine", "step" or "constant"
    mpt_augment: bool = False  # random pad-and-crop and flips of the images the scores learn on
    mpt_crop_padding: int = 2  # with mpt_augment: zero padding (px) before the random crop
    mpt_flip: bool = True  # with mpt_augment: horizontal flips
    # MPT's unpruned classifier: false keeps it a frozen random layer binarised over all its weights (biprop);
    # true learns its weights and bias with the scores (a dense, real-valued head on the random subnetwork)
    mpt_learn_classifier: bool = False
    bn_recalibration_batches: int = 20  # re-estimate batch-norm statistics on this many training batches after
    # pruning (weights untouched); 0: keep the dense model's statistics. Models without batch norm ignore it.
    retrain_epochs: int = 0  # fine-tune the surviving weights this many epochs after pruning (0: no retraining)
    retrain_optimizer: str = "adamw"  # of retraining: "adamw" or "sgd" (Nesterov momentum)
    retrain_lr: float = 1e-3  # peak learning rate of retraining
    retrain_momentum: float = 0.9  # SGD momentum of retraining
    retrain_weight_decay: float = 5e-4  # of retraining: decoupled for AdamW, L2 for SGD
    retrain_schedule: str = "cosine"  # learning-rate schedule of retraining: "cosine", "step" or "constant"
    retrain_augment: bool = False  # random pad-and-crop and flips of the images retraining sees
    retrain_crop_padding: int = 2  # with retrain_augment: zero padding (px) before the random crop
    retrain_flip: bool = True  # with retrain_augment: horizontal flips
    progress: bool = True  # tqdm bars for Taylor accumulation, MPT training and retraining

    def train_config(self, stage: str) -> TrainConfig:
        """The TrainConfig of a training stage, "mpt" (the scores) or "retrain": its `<stage>_*` settings, with this
        config's batch_size and seed. The one place a stage's training is configured."""
        if stage not in STAGES:
            raise ValueError(f"stage {stage!r} is not one of {', '.join(map(repr, STAGES))}")
        values = {name: getattr(self, f"{stage}_{name}") for name in STAGE_SETTINGS}
        return TrainConfig(batch_size=self.batch_size, seed=self.seed, **values)

    @property
    def taylor_all(self) -> bool:
        return self.taylor_batches == "all"

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
        if isinstance(self.taylor_batches, str) and self.taylor_batches != "all":
            raise ValueError(f"taylor_batches is {self.taylor_batches!r}; it must be a number of batches or 'all'")
        for name in ("batch_size", "taylor_batches"):
            if not isinstance(getattr(self, name), str) and getattr(self, name) < 1:
                raise ValueError(f"{name} is {getattr(self, name)}; it must be >= 1")
        for name in ("mpt_epochs", "retrain_epochs", "bn_recalibration_batches", "mpt_crop_padding",
                     "retrain_crop_padding", "mpt_weight_decay", "retrain_weight_decay"):  # fmt: skip
            if getattr(self, name) < 0:
                raise ValueError(f"{name} is {getattr(self, name)}; it must be >= 0")
        for name in ("mpt_lr", "retrain_lr"):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"{name} is {getattr(self, name)}; it must be a positive number")
        for stage in STAGES:
            if getattr(self, f"{stage}_optimizer") not in OPTIMIZERS:
                raise ValueError(f"{stage}_optimizer is {getattr(self, f'{stage}_optimizer')!r}; it must be one of "
                                 f"{', '.join(map(repr, OPTIMIZERS))}")  # fmt: skip
            if getattr(self, f"{stage}_schedule") not in SCHEDULES:
                raise ValueError(f"{stage}_schedule is {getattr(self, f'{stage}_schedule')!r}; it must be one of "
                                 f"{', '.join(map(repr, SCHEDULES))}")  # fmt: skip
            if not 0 <= getattr(self, f"{stage}_momentum") <= 1:
                raise ValueError(f"{stage}_momentum is {getattr(self, f'{stage}_momentum')}; it must be in [0, 1]")
        if self.mpt_learn_classifier and self.prune_classifier:
            raise ValueError("mpt_learn_classifier learns the unpruned classifier, but prune_classifier prunes it; "
                             "set one of them")  # fmt: skip
