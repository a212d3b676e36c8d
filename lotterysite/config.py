"""Frozen configuration dataclasses, one per stage (the recipe TOML parses into these).

Each is saved with the checkpoints and store files it produces (`asdict`), so a result traces back to what made it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class DataConfig:
    name: str = "fashion_mnist"  # a registry name (`lotterysite.data.list_datasets()`), or "imagefolder"
    root: str | None = None  # folder holding the files; None searches the data set's default folders
    train_subset: int | None = None  # first N training images only (None: all)
    test_subset: int | None = None  # first N test images only (None: all)
    trust_pickles: bool = False  # read CIFAR pickles whose MD5 is not the official archive's (they can run code)
    image_size: int | None = None  # imagefolder: pixels per side after shorter-side resize and centre crop
    resize: int | None = None  # imagefolder: shorter side before the centre crop (None: image_size; ImageNet: 256)
    interpolation: str | None = None  # imagefolder: of that resize, "bilinear" (None) or "bicubic"
    classes: str | None = None  # imagefolder: class-list file (one name a line) fixing class names and their order
    skip_unreadable: bool = False  # imagefolder: leave unreadable images out (and count them) instead of failing


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "lenet5"  # a registry name, or tv:<torchvision name>
    options: dict[str, Any] = field(default_factory=dict)  # extra factory arguments, e.g. {"feature_dim": 84}


OPTIMIZERS = ("adamw", "sgd")
# "cosine": annealed to 0 over all steps; "step": x0.1 at 50 % and 75 % of the steps (He et al. 2016's CIFAR
# schedule, 100 and 150 of 200 epochs, scaled to any length); "constant": the peak rate throughout.
SCHEDULES = ("cosine", "step", "constant")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 4  # passes over the training set
    batch_size: int = 128  # images per step
    optimizer: str = "adamw"  # "adamw" or "sgd" (with Nesterov momentum)
    lr: float = 3e-3  # peak learning rate, shaped by `schedule`
    momentum: float = 0.9  # SGD momentum (ignored by AdamW)
    weight_decay: float = 5e-4  # decoupled for AdamW, L2 for SGD
    warmup_steps: int = 0  # linear warm-up steps before the schedule
    schedule: str = "cosine"  # "cosine", "step" or "constant" (see SCHEDULES)
    augment: bool = False  # random crops of the zero-padded image (crop_padding) and horizontal flips (flip)
    crop_padding: int = 2  # with augment: pixels of zero padding on each side before a random crop back to size
    flip: bool = True  # with augment: flip half the images horizontally
    seed: int = 0  # seeds initialisation, shuffling and augmentation
    amp: bool = True  # bfloat16 autocast on CUDA (no effect on CPU)

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r} is not one of 'adamw', 'sgd'")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule {self.schedule!r} is not one of {', '.join(map(repr, SCHEDULES))}")
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs must be >= 0, batch_size >= 1 and lr > 0")
        if self.crop_padding < 0:
            raise ValueError(f"crop_padding is {self.crop_padding}; it must be >= 0")


def to_dict(config) -> dict:
    return asdict(config)
