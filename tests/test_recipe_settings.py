"""Issue 24, item 1: the training settings of every stage (dense training, MPT's scores, retraining), Taylor over
the whole training set, a learned MPT classifier, and what each model records of them.

Small and on the CPU: a few optimizer steps on tiny tensors; the one end-to-end test precomputes a recipe of a few
hundred images.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from lotterysite import training
from lotterysite.config import TrainConfig
from lotterysite.data import ImageSet
from lotterysite.pruning import PruneConfig, prune, taylor_scores
from lotterysite.pruning._data import first_batches
from lotterysite.training import augment_batch, lr_factor, train


def _images(n: int, *, size: int = 8, channels: int = 1, classes: int = 3, seed: int = 0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, classes, (n,), generator=g)
    return ImageSet(images, labels, tuple(f"c{i}" for i in range(classes)), "tiny")


class _Net(nn.Module):
    """Two linear layers; `classifier` is what find_classifier finds, so the first layer is the prunable one."""

    arch = "tiny-net"

    def __init__(self, pixels: int = 64, hidden: int = 6, classes: int = 3):
        super().__init__()
        self.body = nn.Linear(pixels, hidden)
        self.classifier = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.classifier(torch.relu(self.body(x.flatten(1))))


def _recorded_training(monkeypatch):
    """Patch training's optimizer factory and augmentation to record what train() actually built and applied:
    the optimizer, the learning rate before every step, and each augment_batch call's (pad, flip)."""
    seen = {"optimizers": [], "lrs": [], "augment": []}
    make, augment = training.make_optimizer, training.augment_batch

    def make_optimizer(params, cfg):
        opt = make(params, cfg)
        seen["optimizers"].append(opt)
        opt.register_step_pre_hook(lambda o, args, kwargs: seen["lrs"].append(o.param_groups[0]["lr"]))
        return opt

    def augment_batch(x, generator, pad=2, flip=True):
        seen["augment"].append((pad, flip))
        return augment(x, generator, pad=pad, flip=flip)

    monkeypatch.setattr(training, "make_optimizer", make_optimizer)
    monkeypatch.setattr(training, "augment_batch", augment_batch)
    return seen


# -- optimizer and schedule -------------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule", ["cosine", "step", "constant"])
@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_train_builds_the_optimizer_and_schedule_it_is_given(monkeypatch, optimizer, schedule):
    seen = _recorded_training(monkeypatch)
    cfg = TrainConfig(epochs=2, batch_size=4, optimizer=optimizer, lr=0.2, momentum=0.8, weight_decay=1e-3,
                      schedule=schedule, amp=False)  # fmt: skip
    train(_Net(), _images(16), cfg, progress=False)  # 4 steps an epoch, 8 in all
    (opt,) = seen["optimizers"]
    group = opt.param_groups[0]
    if optimizer == "sgd":
        assert type(opt) is torch.optim.SGD and group["momentum"] == 0.8 and group["nesterov"]
    else:
        assert type(opt) is torch.optim.AdamW
    assert group["weight_decay"] == 1e-3
    # The rate before each of the 8 steps, worked by hand: cosine 0.5 (1 + cos(pi t / 8)); step x0.1 from t = 4
    # (50 %) and again from t = 6 (75 %); constant 0.2.
    expected = {
        "cosine": [0.2 * 0.5 * (1 + math.cos(math.pi * t / 8)) for t in range(8)],
        "step": [0.2, 0.2, 0.2, 0.2, 0.02, 0.02, 0.002, 0.002],
        "constant": [0.2] * 8,
    }[schedule]
    assert seen["lrs"] == pytest.approx(expected, rel=1e-12)


def test_warmup_then_schedule():
    assert [lr_factor("constant", t, 10, warmup_steps=4) for t in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert lr_factor("step", 4, 12, warmup_steps=4) == 1.0 and lr_factor("step", 8, 12, warmup_steps=4) == 0.1
    with pytest.raises(ValueError, match="schedule 'linear' is not one of"):
        TrainConfig(schedule="linear")
    with pytest.raises(ValueError, match="crop_padding is -1"):
        TrainConfig(crop_padding=-1)


def test_each_pruning_stage_has_its_own_training_config():
    cfg = PruneConfig(method="mpt", batch_size=32, seed=7, mpt_optimizer="adamw", mpt_lr=0.01, mpt_schedule="step",
                      mpt_augment=True, mpt_crop_padding=4, retrain_epochs=3, retrain_optimizer="sgd",
                      retrain_lr=0.05, retrain_momentum=0.5, retrain_weight_decay=0.0, retrain_schedule="constant",
                      retrain_flip=False)  # fmt: skip
    assert cfg.train_config("mpt") == TrainConfig(
        epochs=10, batch_size=32, optimizer="adamw", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="step",
        augment=True, crop_padding=4, flip=True, seed=7,
    )  # fmt: skip
    assert cfg.train_config("retrain") == TrainConfig(
        epochs=3, batch_size=32, optimizer="sgd", lr=0.05, momentum=0.5, weight_decay=0.0, schedule="constant",
        augment=False, crop_padding=2, flip=False, seed=7,
    )  # fmt: skip
    # The defaults are what MPT (biprop's SGD, cosine) and retraining (AdamW, cosine) always used.
    default = PruneConfig()
    assert (default.train_config("mpt").optimizer, default.train_config("retrain").optimizer) == ("sgd", "adamw")
    for bad, message in (
        ({"mpt_optimizer": "adam"}, "mpt_optimizer 'adam' is not one of 'adamw', 'sgd'"),
        ({"retrain_schedule": "poly"}, "retrain_schedule 'poly' is not one of 'cosine', 'step', 'constant'"),
        ({"retrain_momentum": 1.5}, "retrain_momentum is 1.5"),
        ({"mpt_crop_padding": -2}, "mpt_crop_padding is -2"),
    ):
        with pytest.raises(ValueError, match=message):
            PruneConfig(**bad)


def test_retraining_and_mpt_train_with_their_stage_settings(monkeypatch):
    seen = _recorded_training(monkeypatch)
    data = _images(24)
    prune(_Net(), "magnitude", 0.5, data=data, batch_size=8, retrain_epochs=1, retrain_optimizer="sgd",
          retrain_lr=0.05, retrain_schedule="constant", retrain_augment=True, retrain_crop_padding=3,
          retrain_flip=False, progress=False)  # fmt: skip
    (opt,) = seen["optimizers"]
    assert type(opt) is torch.optim.SGD and seen["lrs"] == [0.05] * 3
    assert seen["augment"] == [(3, False)] * 3  # every retraining batch, with the stage's own padding
    seen["optimizers"].clear(), seen["lrs"].clear(), seen["augment"].clear()
    prune(_Net(), "mpt", 0.5, data=data, batch_size=8, mpt_epochs=1, mpt_optimizer="adamw", mpt_lr=0.01,
          mpt_schedule="step", progress=False)  # fmt: skip
    (opt,) = seen["optimizers"]
    assert type(opt) is torch.optim.AdamW and seen["lrs"] == pytest.approx([0.01, 0.01, 0.001])
    assert seen["augment"] == []  # mpt_augment is off


# -- augmentation -----------------------------------------------------------------------------------------------
def test_augmentation_is_pad_and_crop_and_flip_of_each_image():
    """Each output is one of the (2p + 1)^2 crops of its zero-padded image, flipped or not (numpy reference); over
    enough images every offset from -p to p and both flips occur."""
    pad, n = 4, 600
    x = torch.rand(n, 2, 6, 7, generator=torch.Generator().manual_seed(1))
    out = augment_batch(x, torch.Generator().manual_seed(2), pad=pad, flip=True).numpy()
    assert out.shape == x.shape
    used = set()
    for i in range(n):
        padded = np.pad(x[i].numpy().astype(np.float64), ((0, 0), (pad, pad), (pad, pad)))
        matches = [
            (dy - pad, dx - pad, flip)
            for dy, dx, flip in itertools.product(range(2 * pad + 1), range(2 * pad + 1), (False, True))
            if np.array_equal(
                (lambda c: c[..., ::-1] if flip else c)(padded[:, dy : dy + 6, dx : dx + 7]), out[i].astype(np.float64)
            )
        ]
        assert matches, f"image {i} is no crop of its padded image"
        used.update(matches)
    assert {dy for dy, _, _ in used} == set(range(-pad, pad + 1)) == {dx for _, dx, _ in used}
    assert {flip for _, _, flip in used} == {False, True}
    unflipped = augment_batch(x, torch.Generator().manual_seed(2), pad=0, flip=False)
    assert torch.equal(unflipped, x)  # no padding, no flips: the images as they are


def test_dense_training_applies_its_augmentation(monkeypatch):
    seen = _recorded_training(monkeypatch)
    train(_Net(), _images(8), TrainConfig(epochs=1, batch_size=4, augment=True, crop_padding=4, amp=False),
          progress=False)  # fmt: skip
    assert seen["augment"] == [(4, True), (4, True)]
    seen["augment"].clear()
    train(_Net(), _images(8), TrainConfig(epochs=1, batch_size=4, crop_padding=4, amp=False), progress=False)
    assert seen["augment"] == []


# -- Taylor over the whole training set ------------------------------------------------------------------------
def _reference_taylor(model: _Net, data: ImageSet) -> np.ndarray:
    """|dL/dw * w| for the first layer, L the mean cross-entropy over every image, in float64 with numpy: the
    gradient of a two-layer ReLU network written out by hand."""
    x = data.images.double().div(255.0).flatten(1).numpy()
    y = data.labels.numpy()
    w1, b1 = model.body.weight.detach().double().numpy(), model.body.bias.detach().double().numpy()
    w2, b2 = model.classifier.weight.detach().double().numpy(), model.classifier.bias.detach().double().numpy()
    pre = x @ w1.T + b1
    hidden = np.maximum(pre, 0.0)
    logits = hidden @ w2.T + b2
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d_logits = (p - np.eye(w2.shape[0])[y]) / len(y)
    d_pre = (d_logits @ w2) * (pre > 0)
    grad = d_pre.T @ x
    return np.abs(grad * w1)


def test_taylor_over_all_batches_equals_the_float64_reference():
    torch.manual_seed(0)
    model, data = _Net(), _images(37)  # 5 batches of 8, the last of 5 images
    reference = _reference_taylor(model, data)
    targets = {"body.weight": model.body.weight}
    scores = taylor_scores(model, targets, first_batches(data, None, batch_size=8, device="cpu"), progress=False)
    # The model runs in float32 (gradients summed in float64): agreement to float32's precision of the largest score.
    np.testing.assert_allclose(scores["body.weight"].numpy(), reference, rtol=1e-4, atol=1e-6 * reference.max())
    # The first batches only (the default 16 x 128 images) give other scores: "all" is not a no-op here.
    some = taylor_scores(model, targets, first_batches(data, 2, batch_size=8, device="cpu"), progress=False)
    assert not np.allclose(some["body.weight"].numpy(), reference, rtol=1e-3)
    # prune(taylor_batches="all") removes exactly the weights the reference ranks lowest.
    pruned = prune(model, "taylor", 0.5, data=data, batch_size=8, taylor_batches="all", progress=False)
    k = round(0.5 * reference.size)
    lowest = np.argsort(reference.ravel(), kind="stable")[:k]
    removed = np.flatnonzero(~pruned.masks["body.weight"].numpy().ravel())
    assert sorted(removed) == sorted(lowest)
    assert pruned.prune_config.taylor_batches == "all"
    with pytest.raises(ValueError, match="taylor_batches 'some' is not one of 'all'"):
        PruneConfig(taylor_batches="some")


def test_taylor_all_streams_batches_one_at_a_time():
    """ "all" takes the batches as they come (an iterable is read once, never materialised as a list)."""
    data = _images(20)
    given = []

    def batches():
        for x, y in data.batches(4):
            given.append(len(y))
            yield x, y

    scores = taylor_scores(_Net(), {"body.weight": _Net().body.weight}, first_batches(batches(), None, batch_size=4,
                           device="cpu"), progress=False)  # fmt: skip
    assert given == [4] * 5 and scores["body.weight"].shape == (6, 64)


# -- a learned MPT classifier -----------------------------------------------------------------------------------
def test_mpt_classifier_is_frozen_and_binary_or_learned():
    from lotterysite.pruning.mpt import reinitialise

    start = _Net()
    reinitialise(start, torch.Generator().manual_seed(0))  # MPT's seeded initialisation, seed 0
    w0 = start.classifier.weight.detach()
    data = _images(32)
    frozen = prune(_Net(), "mpt", 0.5, data=data, batch_size=8, mpt_epochs=1, progress=False)
    # Frozen: sign(w0) * mean |w0| over all its weights (biprop), bias 0.
    torch.testing.assert_close(frozen.classifier.weight.detach(), torch.sign(w0) * w0.abs().mean())
    assert torch.equal(frozen.classifier.bias.detach(), torch.zeros(3))
    learned = prune(_Net(), "mpt", 0.5, data=data, batch_size=8, mpt_epochs=1, mpt_learn_classifier=True,
                    progress=False)  # fmt: skip
    # Learned: real-valued, moved away from w0 by 4 optimizer steps, and a bias learned from its zero start.
    head = learned.classifier.weight.detach()
    assert not torch.equal(head, w0) and (head - w0).abs().max() < 1.0
    assert bool((learned.classifier.bias != 0).any())
    assert "classifier.weight" not in learned.masks and learned.prune_config.mpt_learn_classifier
    with pytest.raises(ValueError, match="mpt_learn_classifier learns the unpruned classifier"):
        PruneConfig(method="mpt", prune_classifier=True, mpt_learn_classifier=True)


# -- what each model records ------------------------------------------------------------------------------------
RECORDED = """
name = "recorded"
[data]
name = "fashion_mnist"
train_subset = 200
eval_subset = 40
[[architectures]]
arch = "lenet5"
[architectures.train]
epochs = 1
optimizer = "sgd"
lr = 0.01
schedule = "step"
augment = true
crop_padding = 3
[[architectures]]
arch = "small_vgg"
options = { width = 4 }
[architectures.train]
epochs = 1
[[pruning]]
method = "magnitude"
amounts = [0.5]
retrain_epochs = 1
retrain_optimizer = "sgd"
retrain_lr = 0.01
retrain_augment = true
bn_recalibration_batches = 3   # asks for 3 batches of 128; the 200 training images give 2
[[pruning]]
method = "random"
amounts = [0.5]
retrain_epochs = 1
bn_recalibration_batches = 0
[corruptions]
names = ["fog"]
severities = [1]
[ship]
samples_per_class = 2
severities = [1]
[curse]
enabled = false
"""


def test_models_record_their_settings_and_the_recalibration_actually_used(tmp_path):
    from lotterysite.checkpoint import read_checkpoint
    from lotterysite.precompute import parse_recipe, precompute
    from lotterysite.store import read_table
    from lotterysite.store.publish import work_dir

    recipe = parse_recipe(RECORDED, str(tmp_path / "recorded.toml"))
    precompute(recipe, store=tmp_path / "store", device="cpu", progress=False)
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    settings = {m["model_id"]: m["settings"] for m in manifest["models"]}
    table = read_table(tmp_path / "store" / "models.arrow").to_pydict()
    bn = dict(zip(table["model_id"], table["bn_recalibration_batches"], strict=True))
    # LeNet-5 has no batch norm: 0 everywhere, retrained or not. small_vgg: the 2 batches there were, kept by the
    # retrained copy (it retrains that very model); 0 where the recipe turns recalibration off.
    assert bn == {
        "lenet5/dense": 0, "lenet5/magnitude/0.5": 0, "lenet5/magnitude+retrain/0.5": 0, "lenet5/random/0.5": 0,
        "lenet5/random+retrain/0.5": 0, "small_vgg/dense": 0, "small_vgg/magnitude/0.5": 2,
        "small_vgg/magnitude+retrain/0.5": 2, "small_vgg/random/0.5": 0, "small_vgg/random+retrain/0.5": 0,
    }  # fmt: skip
    for model_id, n in bn.items():
        if model_id.endswith("dense"):
            continue
        assert settings[model_id]["pruning"]["bn_recalibration_batches"] == n, model_id
    dense = settings["lenet5/dense"]["train"]
    assert (dense["optimizer"], dense["schedule"], dense["augment"], dense["crop_padding"]) == ("sgd", "step", True, 3)
    retrained = settings["small_vgg/magnitude+retrain/0.5"]
    assert retrained["retrain"] == {**TrainConfig().__dict__, "epochs": 1, "optimizer": "sgd", "lr": 0.01,
                                    "augment": True, "batch_size": 128, "seed": 0}  # fmt: skip
    assert "retrain" not in settings["small_vgg/magnitude/0.5"] and retrained["train"]["optimizer"] == "adamw"
    assert retrained["pruning"]["retrain_optimizer"] == "sgd" and retrained["pruning"]["mpt_optimizer"] == "sgd"
    # The checkpoints carry the same settings.
    work = work_dir(tmp_path / "store")
    path = next(work.glob("models/small_vgg__magnitude-retrain__0.5-*.pt"))
    meta = read_checkpoint(path)["meta"]
    assert meta["settings"] == retrained and meta["pruning"]["bn_recalibration_batches"] == 2
