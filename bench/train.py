"""Trainer benchmark: LeNet-5 on the full Fashion-MNIST must reach >= 88 % test accuracy within 60 s on 2 CPU cores.

Prints the time and accuracy, and, as a machine-independent ratio, the training time over the time of one
inference pass over the training set measured in the same process.
"""

import time

import torch

from lotterysite.config import TrainConfig
from lotterysite.data import load_dataset
from lotterysite.models import create_model
from lotterysite.training import default_device, evaluate, predict_logits, train


def main():
    device = default_device()
    data = load_dataset("fashion_mnist")
    torch.manual_seed(0)
    model = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)

    start = time.perf_counter()
    predict_logits(model, data.train, device=device)
    baseline = time.perf_counter() - start

    cfg = TrainConfig(epochs=4)
    start = time.perf_counter()
    train(model, data.train, cfg, device=device, progress=False)
    seconds = time.perf_counter() - start
    accuracy = evaluate(model, data.test, device=device)

    print(f"device {device}, torch threads {torch.get_num_threads()}")
    print(f"LeNet-5, Fashion-MNIST, {cfg.epochs} epochs: {seconds:.1f} s, test accuracy {accuracy:.2%}")
    print(f"target: >= 88% in <= 60 s -> {'met' if accuracy >= 0.88 and seconds <= 60 else 'MISSED'}")
    print(f"ratio training / one inference pass over the 60k training images: {seconds / baseline:.1f}x")


if __name__ == "__main__":
    main()
