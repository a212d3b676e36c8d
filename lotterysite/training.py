"""Seeded training of the dense baseline, and plain evaluation, on CPU or CUDA."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .config import TrainConfig
from .data import ImageSet
from .errors import LotterysiteError


class TrainingError(LotterysiteError):
    """A training that cannot go on (its loss became NaN or infinite); the message names the model and the fix."""


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def augment_batch(x: torch.Tensor, generator: torch.Generator, pad: int = 2, flip: bool = True) -> torch.Tensor:
    """Random crops of the image zero-padded by `pad` pixels on each side (shifts of up to `pad` pixels, the CIFAR
    pad-and-crop) and horizontal flips of half the images, drawn per image, batched."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    out = padded[
        torch.arange(n, device=x.device)[:, None, None, None],
        torch.arange(c, device=x.device)[None, :, None, None],
        rows,
        cols,
    ]
    if flip:
        flips = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        out = torch.where(flips[:, None, None, None], out.flip(-1), out)
    return out


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(schedule: str, step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """The learning rate at optimizer step `step` (0-based) as a fraction of the peak (config.SCHEDULES)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "step":
        return 0.1 ** ((progress >= 0.5) + (progress >= 0.75))
    if schedule == "constant":
        return 1.0
    raise ValueError(f"schedule {schedule!r} is not one of 'cosine', 'step', 'constant'")


def make_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    """The learning-rate scheduler `cfg.schedule` names, stepped once per optimizer step."""
    lr_factor(cfg.schedule, 0, total_steps, cfg.warmup_steps)  # an unknown schedule fails here, before any step
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(cfg.schedule, step, total_steps, cfg.warmup_steps)
    )


@dataclass
class History:
    epochs: list[dict] = field(default_factory=list)  # one {"epoch", "loss", "train_acc", "test_acc", "seconds"} each

    @property
    def final_test_acc(self) -> float | None:
        return self.epochs[-1].get("test_acc") if self.epochs else None


def _autocast(device: torch.device, enabled: bool):
    # bfloat16 keeps float32's range, so no gradient scaler is needed; CPU autocast is slower than float32 here.
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


def train(
    model: nn.Module,
    train_set: ImageSet,
    cfg: TrainConfig,
    *,
    device: torch.device | str = "cpu",
    test_set: ImageSet | None = None,
    params=None,
    after_step=None,
    progress: bool = True,
    desc: str = "train",
) -> History:
    """Train `model` in place with cross-entropy; returns per-epoch loss and accuracies.

    `params` restricts what the optimizer updates (default: all parameters); `after_step(model)` runs after every
    optimizer step (pruning uses it to hold masks fixed while retraining).
    """
    device = torch.device(device)
    seed_everything(cfg.seed)
    model.to(device)
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    optimizer = make_optimizer(params, cfg)
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    scheduler = make_schedule(optimizer, cfg, cfg.epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(cfg.seed)
    history = History()
    for epoch in range(cfg.epochs):
        model.train()
        start = time.perf_counter()
        total_loss = torch.zeros((), device=device)
        total_correct = torch.zeros((), device=device, dtype=torch.long)
        batches = train_set.batches(cfg.batch_size, shuffle=True, seed=cfg.seed * 1000 + epoch, device=device)
        bar = tqdm(batches, total=steps_per_epoch, desc=f"{desc} {epoch + 1}/{cfg.epochs}", unit="batch",
                   disable=not progress, leave=False, dynamic_ncols=True)  # fmt: skip
        for x, y in bar:
            if cfg.augment:
                x = augment_batch(x, generator, pad=cfg.crop_padding, flip=cfg.flip)
            with _autocast(device, cfg.amp):
                logits = model(x)
                loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if after_step is not None:
                after_step(model)
            # Accumulate on the device: a .item() per step would synchronise CUDA every batch.
            total_loss += loss.detach() * len(y)
            total_correct += (logits.argmax(1) == y).sum()
        record = {
            "epoch": epoch + 1,
            "loss": float(total_loss) / len(train_set),
            "train_acc": float(total_correct) / len(train_set),
            "seconds": time.perf_counter() - start,
        }
        if not math.isfinite(record["loss"]):
            raise TrainingError(
                f"{desc}: the training diverged (mean loss {record['loss']} in epoch {epoch + 1}, lr = {cfg.lr:g}); "
                "nothing of it is kept: lower the learning rate ([architectures.train] lr, or the pruning's "
                "retrain_lr / mpt_lr) or add warmup_steps, and rerun"
            )
        if test_set is not None:
            record["test_acc"] = evaluate(model, test_set, device=device, amp=cfg.amp)
        history.epochs.append(record)
        if progress:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k != "epoch")
            tqdm.write(f"{desc} epoch {epoch + 1}/{cfg.epochs}: {shown}")
    model.eval()
    return history


@torch.no_grad()
def predict_logits(
    model: nn.Module, images: ImageSet, *, device: torch.device | str = "cpu", batch_size: int = 1024, amp: bool = True
) -> torch.Tensor:
    device = torch.device(device)
    model.eval().to(device)
    out = []
    for x, _ in images.batches(batch_size, device=device):
        with _autocast(device, amp):
            out.append(model(x).float().cpu())
    return torch.cat(out) if out else torch.empty(0, 0)


def evaluate(model: nn.Module, images: ImageSet, *, device: torch.device | str = "cpu", amp: bool = True) -> float:
    """Top-1 accuracy of `model` on `images`."""
    if len(images) == 0:
        return float("nan")
    logits = predict_logits(model, images, device=device, amp=amp)
    return float((logits.argmax(1) == images.labels).float().mean())
