"""`PruneConfig`: the pruning stage's frozen configuration (saved with every pruned checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import OPTIMIZERS, SCHEDULES, TrainConfig
from ..settings import setting, validate

SCOPES = ("global", "layer", "lamp")
GRANULARITIES = ("weight", "channel")
CHANNEL_METHODS = ("random", "magnitude", "taylor")  # the methods granularity "channel" supports
# The TrainConfig settings each training stage of pruning (MPT's scores, retraining) sets as `<stage>_<setting>`;
# batch_size and seed are shared with the rest of the pruning config.
STAGE_SETTINGS = ("epochs", "optimizer", "lr", "momentum", "weight_decay", "schedule", "augment", "crop_padding",
                  "flip")  # fmt: skip
STAGES = ("mpt", "retrain")


@dataclass(frozen=True)
class PruneConfig:
    method: str = setting("magnitude", "a registered method: see `lotterysite.pruning.list_methods()`", recipe=False)
    amount: float = setting(0.5, "fraction of the prunable weights removed, in [0, 1)", low=0, high=1, high_open=True,
                            recipe=False)  # fmt: skip
    scope: str | None = setting(None, "\"global\": one ranking over all layers; \"layer\": each layer by amount; "
                                "\"lamp\": one ranking of layer-adaptive scores (LAMP, Lee et al. 2021); unset: the "
                                "method's default (global; layer for mpt)", choices=SCOPES)  # fmt: skip
    prune_classifier: bool = setting(False, "also prune the final classifier; the paper keeps the class directions "
                                     "dense")  # fmt: skip
    seed: int = setting(0, "seeds random scores, MPT's initialisation and all shuffling", low=0, recipe=False)
    batch_size: int = setting(128, "images per batch of Taylor, MPT, retraining and batch-norm recalibration", low=1)
    taylor_batches: int | str = setting(16, "batches of the training data the Taylor gradient is accumulated over, "
                                        "or \"all\": every batch, streamed (the paper's D, the training set)",
                                        low=1, choices=("all",))  # fmt: skip
    mpt_epochs: int = setting(10, "MPT: passes over the training data while learning the scores", low=0)
    mpt_optimizer: str = setting("sgd", "MPT: optimizer of the scores, \"sgd\" (Nesterov momentum, as in biprop) "
                                 "or \"adamw\"", choices=OPTIMIZERS)  # fmt: skip
    mpt_lr: float = setting(0.1, "MPT: peak learning rate of the scores", low=0, low_open=True)
    mpt_momentum: float = setting(0.9, "MPT: SGD momentum of the scores", low=0, high=1)
    mpt_weight_decay: float = setting(5e-4, "MPT: L2 on the scores", low=0)
    mpt_schedule: str = setting("cosine", "MPT: learning-rate schedule of the scores (as [architectures.train] "
                                "schedule)", choices=SCHEDULES)  # fmt: skip
    mpt_augment: bool = setting(False, "MPT: random pad-and-crop and flips of the images the scores learn on")
    mpt_crop_padding: int = setting(2, "MPT: with mpt_augment, zero padding (px) before the random crop", low=0)
    mpt_flip: bool = setting(True, "MPT: with mpt_augment, horizontal flips")
    mpt_learn_classifier: bool = setting(False, "MPT: false keeps the unpruned classifier a frozen random layer "
                                         "binarised over all its weights (biprop); true learns its weights and bias "
                                         "with the scores")  # fmt: skip
    bn_recalibration_batches: int = setting(20, "re-estimate batch-norm running statistics on this many training "
                                            "batches after pruning (weights untouched); 0: keep the dense model's. "
                                            "Models without batch norm record 0", low=0)  # fmt: skip
    retrain_epochs: int = setting(0, "fine-tune the surviving weights this many epochs after pruning; > 0 ships "
                                  "both the pruned and the retrained model", low=0)  # fmt: skip
    retrain_optimizer: str = setting("adamw", "retraining: \"adamw\" or \"sgd\" (Nesterov momentum)",
                                     choices=OPTIMIZERS)  # fmt: skip
    retrain_lr: float = setting(1e-3, "retraining: peak learning rate", low=0, low_open=True)
    retrain_momentum: float = setting(0.9, "retraining: SGD momentum", low=0, high=1)
    retrain_weight_decay: float = setting(5e-4, "retraining: decoupled for AdamW, L2 for SGD", low=0)
    retrain_schedule: str = setting("cosine", "retraining: learning-rate schedule (as [architectures.train] "
                                    "schedule)", choices=SCHEDULES)  # fmt: skip
    retrain_augment: bool = setting(False, "retraining: random pad-and-crop and flips of its images")
    retrain_crop_padding: int = setting(2, "retraining: with retrain_augment, zero padding (px) before the random "
                                        "crop", low=0)  # fmt: skip
    retrain_flip: bool = setting(True, "retraining: with retrain_augment, horizontal flips")
    progress: bool = setting(True, "tqdm bars for Taylor accumulation, MPT training and retraining", recipe=False)
    granularity: str = setting("weight", "\"weight\": masks of single weights; \"channel\": whole channels and "
                               "filters removed through Torch-Pruning's dependency graph (random, magnitude, taylor; "
                               "MPT stays weight-level)", choices=GRANULARITIES)  # fmt: skip
    channel_norm: int = setting(1, "granularity \"channel\", magnitude: the channel group's norm, 1 (L1) or 2 (L2)",
                                low=1, high=2)  # fmt: skip
    prune_penultimate: bool = setting(False, "granularity \"channel\": also prune the classifier's input width "
                                      "(the feature dimension); by default it is kept, so angles stay comparable "
                                      "with the dense model")  # fmt: skip

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
        validate(self)
        if self.mpt_learn_classifier and self.prune_classifier:
            raise ValueError("mpt_learn_classifier learns the unpruned classifier, but prune_classifier prunes it; "
                             "set one of them")  # fmt: skip
        if self.granularity == "channel" and self.method not in CHANNEL_METHODS:
            raise ValueError(
                f"method {self.method!r} has no granularity 'channel' (MPT learns a weight-level subnetwork); "
                f"channel pruning methods: {', '.join(CHANNEL_METHODS)}"
            )
        if self.granularity == "channel" and self.prune_classifier:
            raise ValueError("prune_classifier does not apply to granularity 'channel' (the classifier's outputs "
                             "are the classes); prune_penultimate = true prunes its input width")  # fmt: skip
