"""Pruning benchmark: the time of each method on LeNet-5 and small VGG, as a table.

Every method runs on the same trained-shape model and the same Fashion-MNIST subset. As a machine-independent
figure, each time is also given as a ratio to one dense training epoch over that subset, measured in the same
process just before (the CPU here is shared, so absolute seconds drift; the ratio drifts less).

    python bench/pruning.py [--images 4096] [--models lenet5,small_vgg]
"""

import argparse
import time

import torch

from lotterysite.config import TrainConfig
from lotterysite.data import load_dataset
from lotterysite.models import create_model
from lotterysite.pruning import prune, retrain, sparsity_report
from lotterysite.training import default_device, train


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench_model(arch: str, images, device) -> list[tuple[str, float]]:
    def fresh():
        torch.manual_seed(0)
        return create_model(arch, num_classes=10, in_channels=1, image_size=28)

    model = fresh()
    cfg = TrainConfig(epochs=1)
    # Warm up kernels and the allocator on a few batches, so no row is charged for first-call costs.
    train(fresh(), images.head(512), cfg, device=device, progress=False)
    baseline, _ = timed(lambda: train(model, images, cfg, device=device, progress=False))
    rows = [("dense training, 1 epoch (baseline)", baseline)]
    for label, method, options in [
        ("random, global", "random", {"scope": "global"}),
        ("magnitude, global", "magnitude", {"scope": "global"}),
        ("magnitude, layer", "magnitude", {"scope": "layer"}),
        ("taylor, global, 16 batches of 128", "taylor", {"scope": "global", "taylor_batches": 16}),
        ("mpt (biprop), layer, 1 epoch", "mpt", {"mpt_epochs": 1}),
    ]:
        seconds, pruned = timed(
            lambda method=method, options=options: prune(
                model, method, 0.5, data=images, device=device, progress=False, **options
            )
        )
        assert sparsity_report(pruned)["pruned"] > 0
        rows.append((label, seconds))
    pruned = prune(model, "magnitude", 0.9, device=device)
    seconds, _ = timed(lambda: retrain(pruned, images, cfg, device=device, progress=False))
    rows.append(("retraining (masks fixed), 1 epoch", seconds))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096, help="training images per epoch (default 4096)")
    parser.add_argument("--models", default="lenet5,small_vgg", help="comma-separated registry names")
    args = parser.parse_args()
    device = default_device()
    images = load_dataset("fashion_mnist").train.head(args.images)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {len(images)} images/epoch")
    print(f"{'model':<10} {'method':<36} {'seconds':>8} {'x epoch':>8}")
    for arch in args.models.split(","):
        rows = bench_model(arch, images, device)
        baseline = rows[0][1]
        for label, seconds in rows:
            print(f"{arch:<10} {label:<36} {seconds:>8.3f} {seconds / baseline:>8.3f}")


if __name__ == "__main__":
    main()
