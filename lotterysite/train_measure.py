"""`lotterysite train` and `lotterysite measure` end to end, one model at a time (the whole study, many models at
once, is `lotterysite.precompute`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .config import DataConfig, ModelConfig, TrainConfig, to_dict
from .data import DataSplits, load_dataset
from .geometry import measure_model
from .models import create_model
from .summary import class_table, format_table
from .training import train


def load_data(cfg: DataConfig) -> DataSplits:
    splits = load_dataset(cfg.name, cfg.root, trust_pickles=cfg.trust_pickles)
    return DataSplits(splits.train.head(cfg.train_subset), splits.test.head(cfg.test_subset))


@dataclass
class TrainResult:
    model: torch.nn.Module
    test_accuracy: float
    seconds: float
    report: str


def geometry_report(model, data: DataSplits, device) -> tuple[float, str]:
    geometry, labels = measure_model(model, data.test.batches(1024, device=device), device=device)
    rows = class_table(geometry, labels, data.classes)
    return rows[-1]["accuracy"], format_table(rows)


def train_dense(
    data_cfg: DataConfig, model_cfg: ModelConfig, train_cfg: TrainConfig, *, out: Path, device
) -> TrainResult:
    """Train `model_cfg.arch` on `data_cfg`, write the checkpoint to `out`, summarise its test-set geometry."""
    data = load_data(data_cfg)
    torch.manual_seed(train_cfg.seed)
    model = create_model(
        model_cfg.arch,
        num_classes=data.train.num_classes,
        in_channels=data.train.in_channels,
        image_size=data.train.image_size,
        **model_cfg.options,
    )
    start = time.perf_counter()
    train(model, data.train, train_cfg, device=device, desc=model_cfg.arch)
    seconds = time.perf_counter() - start
    save_checkpoint(
        out,
        model,
        in_channels=data.train.in_channels,
        image_size=data.train.image_size,
        options=model_cfg.options,
        meta={"data": to_dict(data_cfg), "model": to_dict(model_cfg), "train": to_dict(train_cfg)},
    )
    accuracy, table = geometry_report(model, data, device)
    report = (
        f"{model_cfg.arch} on {data_cfg.name}: test accuracy {accuracy:.2%} after {train_cfg.epochs} epochs "
        f"({seconds:.1f} s on {device}); checkpoint {out}\n{table}"
    )
    return TrainResult(model, accuracy, seconds, report)


def measure_checkpoint(path: Path, data_cfg: DataConfig, *, device) -> str:
    data = load_data(data_cfg)
    model, payload = load_checkpoint(
        path, num_classes=data.test.num_classes, in_channels=data.test.in_channels, image_size=data.test.image_size
    )
    accuracy, table = geometry_report(model, data, device)
    return f"{payload['arch']} ({path}) on {data_cfg.name}: test accuracy {accuracy:.2%}\n{table}"
