"""Pruning benchmark: the time of each method on LeNet-5 and small VGG, as a table; with --latency, the inference
latency that structured (channel) pruning buys against the dense model and against masks.

Every method runs on the same trained-shape model and the same Fashion-MNIST subset. As a machine-independent
figure, each time is also given as a ratio to one dense training epoch over that subset, measured in the same
process just before (the CPU here is shared, so absolute seconds drift; the ratio drifts less).

--latency: each model pruned by magnitude at several amounts, with masks and with channels; the median forward
time at batch 1 and at a large batch (`lotterysite.cost.latency_ms`), measured in one process, in rounds that
alternate dense and pruned so that drift of a shared machine falls on both; ratios are dense / pruned (speed-up).

    python bench/pruning.py [--images 4096] [--models lenet5,small_vgg]
    python bench/pruning.py --latency [--models small_resnet,resnet18] [--amounts 0.3,0.5,0.7,0.9] [--threads 1]
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


SHAPES = {"lenet5": (1, 28), "small_vgg": (1, 28), "small_resnet": (1, 28)}  # others: CIFAR, 3 x 32 x 32


def bench_latency(arch: str, amounts: list[float], device, *, batch: int, rounds: int) -> None:
    from statistics import median

    from lotterysite.cost import latency_ms, macs_per_image, parameter_count

    c, s = SHAPES.get(arch, (3, 32))
    torch.manual_seed(0)
    dense = create_model(arch, num_classes=10, in_channels=c, image_size=s).to(device).eval()
    x = torch.rand(batch, c, s, s, generator=torch.Generator().manual_seed(0)).to(device)
    data = [(x[:64], torch.zeros(len(x[:64]), dtype=torch.long, device=device))]
    models = [("dense", 0.0, dense)]
    for amount in amounts:
        for granularity in ("weight", "channel"):
            pruned = prune(dense, "magnitude", amount, granularity=granularity, data=data, device=device,
                           progress=False, bn_recalibration_batches=0)  # fmt: skip
            models.append((granularity, amount, pruned.eval()))
    times = {i: ([], []) for i in range(len(models))}
    for _ in range(rounds):  # dense and every pruned model in turn, every round
        for i, (_, _, m) in enumerate(models):
            times[i][0].append(latency_ms(m, x[:1], repeats=20, warmup=3))
            times[i][1].append(latency_ms(m, x, repeats=3, warmup=1))
    b1 = {i: median(t[0]) for i, t in times.items()}
    bb = {i: median(t[1]) for i, t in times.items()}
    print(f"{'model':<14} {'pruning':<8} {'amount':>6} {'params':>10} {'MMACs':>9} {'b1 ms':>8} {'x dense':>7} "
          f"{f'b{batch} ms':>9} {'x dense':>7}")  # fmt: skip
    for i, (granularity, amount, m) in enumerate(models):
        print(f"{arch:<14} {granularity:<8} {amount:>6.0%} {parameter_count(m):>10} "
              f"{macs_per_image(m, x[:1]) / 1e6:>9.2f} {b1[i]:>8.3f} {b1[0] / b1[i]:>7.2f} {bb[i]:>9.2f} "
              f"{bb[0] / bb[i]:>7.2f}")  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096, help="training images per epoch (default 4096)")
    parser.add_argument("--models", default=None, help="comma-separated registry names")
    parser.add_argument("--latency", action="store_true", help="latency of channel and weight pruning vs dense")
    parser.add_argument("--amounts", default="0.3,0.5,0.7,0.9", help="--latency: fractions of weights removed")
    parser.add_argument("--batch", type=int, default=256, help="--latency: the large batch")
    parser.add_argument("--rounds", type=int, default=5, help="--latency: alternating rounds (median over them)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = default_device()
    if args.latency:
        print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
        for arch in (args.models or "small_resnet,resnet18").split(","):
            amounts = [float(a) for a in args.amounts.split(",")]
            bench_latency(arch, amounts, device, batch=args.batch, rounds=args.rounds)
        return
    args.models = args.models or "lenet5,small_vgg"
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
