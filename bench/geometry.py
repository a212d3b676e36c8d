"""Cost of measuring the geometry over the bare forward pass, in one process (target: <= 10 % extra).

For each model: the time of `model(x)` over the evaluation set (the baseline) and of `measure_model`, which runs
`forward_features`, the classifier and every metric. Both take the same batches; each is the median of 5 runs.
"""

import statistics
import time

import torch

from lotterysite.data import foolbox_samples, load_dataset
from lotterysite.geometry import measure_model
from lotterysite.models import create_model
from lotterysite.training import default_device


def median_time(fn, repeats=5):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(name, model, images, device, batch_size=1000):
    model.eval().to(device)
    batches = [(x, y) for x, y in images.batches(batch_size, device=device)]

    @torch.no_grad()
    def forward():
        for x, _ in batches:
            model(x)

    def geometry():
        measure_model(model, batches, device=device, autocast=None, channels_last=False)

    forward()  # warm-up
    base = median_time(forward)
    full = median_time(geometry)
    print(f"{name:<34} {len(images):>6} imgs  forward {base * 1e3:8.1f} ms  geometry {full * 1e3:8.1f} ms  "
          f"overhead {100 * (full / base - 1):+6.1f} %")  # fmt: skip


def main():
    device = default_device()
    print(f"device {device}, torch threads {torch.get_num_threads()}")
    fmnist = load_dataset("fashion_mnist").test
    torch.manual_seed(0)
    bench("lenet5, Fashion-MNIST", create_model("lenet5", num_classes=10, in_channels=1, image_size=28), fmnist, device)
    bench(
        "small_resnet, Fashion-MNIST (2k)",
        create_model("small_resnet", num_classes=10, in_channels=1, image_size=28),
        fmnist.head(2000),
        device,
    )
    cifar = foolbox_samples("cifar10")
    reps = cifar.subset(torch.arange(500) % 20)  # 500 real CIFAR-10 images (the 20 shipped ones, repeated)
    bench(
        "resnet18, CIFAR-10 (500)", create_model("resnet18", num_classes=10, in_channels=3, image_size=32), reps, device
    )
    bench(
        "alexnet, CIFAR-10 (500)", create_model("alexnet", num_classes=10, in_channels=3, image_size=32), reps, device
    )


if __name__ == "__main__":
    main()
