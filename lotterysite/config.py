"""Frozen configuration dataclasses, one per stage (the recipe TOML parses into these).

Each is saved with the checkpoints and store files it produces (`asdict`), so a result traces back to what made it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .settings import setting, validate

SEED_MAX = 2**32 - 1  # numpy's and torch's seeds both accept 0 .. 2**32 - 1
OPTIMIZERS = ("adamw", "sgd")
# "cosine": annealed to 0 over all steps; "step": x0.1 at 50 % and 75 % of the steps (He et al. 2016's CIFAR
# schedule, 100 and 150 of 200 epochs, scaled to any length); "constant": the peak rate throughout.
SCHEDULES = ("cosine", "step", "constant")
INTERPOLATIONS = ("bilinear", "bicubic")  # what the weights' transforms() in torchvision use


@dataclass(frozen=True)
class DataConfig:
    name: str = setting("fashion_mnist", "a data set of `lotterysite.data.list_datasets()`, or \"imagefolder\" "
                        "(class folders: root/train/<class>, root/test/<class>)")  # fmt: skip
    root: str | None = setting(None, "folder holding the files, relative to the recipe; unset: the data set's "
                               "default folders")  # fmt: skip
    train_subset: int | None = setting(None, "first N training images only (unset: all)", low=1)
    test_subset: int | None = setting(None, "first N test images only (unset: all)", low=1)
    trust_pickles: bool = setting(False, "read CIFAR pickles whose MD5 is not the official archive's (they can run "
                                  "code)")  # fmt: skip
    image_size: int | None = setting(None, "imagefolder: pixels per side after the shorter-side resize and centre "
                                     "crop", low=8)  # fmt: skip
    resize: int | None = setting(None, "imagefolder: shorter side before the centre crop (unset: image_size; "
                                 "ImageNet's evaluation: 256)", low=1)  # fmt: skip
    interpolation: str | None = setting(None, "imagefolder: of that resize (unset: bilinear)", choices=INTERPOLATIONS)
    classes: str | None = setting(None, "imagefolder: class-list file (one name a line) fixing class names and "
                                  "their order, relative to the recipe")  # fmt: skip
    skip_unreadable: bool = setting(False, "imagefolder: leave unreadable images out (and count them) instead of "
                                    "failing")  # fmt: skip


@dataclass(frozen=True)
class ModelConfig:
    arch: str = setting("lenet5", "a registry name (`lotterysite models`), tv:<torchvision name>, "
                        "package.module:function or file.py:function", required=True)  # fmt: skip
    options: dict[str, Any] = setting(factory=dict, help="extra factory arguments, e.g. { feature_dim = 84 } "
                                      "(numbers, strings, booleans)")  # fmt: skip


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = setting(4, "passes over the training set", low=0)
    batch_size: int = setting(128, "images per step", low=1)
    optimizer: str = setting("adamw", '"adamw" or "sgd" (with Nesterov momentum)', choices=OPTIMIZERS)
    lr: float = setting(3e-3, "peak learning rate, shaped by `schedule`", low=0, low_open=True)
    momentum: float = setting(0.9, "SGD momentum (ignored by AdamW)", low=0, high=1)
    weight_decay: float = setting(5e-4, "decoupled for AdamW, L2 for SGD", low=0)
    warmup_steps: int = setting(0, "linear warm-up steps before the schedule", low=0)
    schedule: str = setting("cosine", "\"cosine\" (annealed to 0), \"step\" (x0.1 at 50 % and 75 % of the steps) "
                            "or \"constant\"", choices=SCHEDULES)  # fmt: skip
    augment: bool = setting(False, "random crops of the zero-padded images (crop_padding) and horizontal flips (flip)")
    crop_padding: int = setting(2, "with augment: pixels of zero padding on each side before a random crop back to "
                                "size (CIFAR practice: 4)", low=0)  # fmt: skip
    flip: bool = setting(True, "with augment: flip half the images horizontally")
    seed: int = setting(0, "seeds initialisation, shuffling and augmentation (precompute seeds each model from the "
                        "recipe's `seeds` instead)", low=0, high=SEED_MAX)  # fmt: skip
    amp: bool = setting(True, "bfloat16 autocast on CUDA (no effect on CPU)")

    def __post_init__(self):
        validate(self)


def to_dict(config) -> dict:
    return asdict(config)
