"""The demo recipe end to end (target: <= 5 minutes on a 2-core CPU), with stage timings.

Runs `precompute/demo.toml` from scratch into a temporary store (nothing reused) and prints the time of every
stage; as a machine-independent yardstick it also prints the total over one dense LeNet-5 training epoch on the
full Fashion-MNIST measured in the same process.
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from lotterysite.config import TrainConfig
from lotterysite.data import load_dataset
from lotterysite.models import create_model
from lotterysite.precompute import load_recipe, precompute
from lotterysite.training import default_device, train

ROOT = Path(__file__).parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("recipe", nargs="?", default=str(ROOT / "precompute" / "demo.toml"))
    args = parser.parse_args()
    device = default_device()
    data = load_dataset("fashion_mnist")
    torch.manual_seed(0)
    start = time.perf_counter()
    train(create_model("lenet5", num_classes=10, in_channels=1, image_size=28), data.train, TrainConfig(epochs=1),
          device=device, progress=False)  # fmt: skip
    epoch = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        result = precompute(load_recipe(args.recipe), store=Path(tmp) / "store", device=device, progress=False)
    print(f"device {device}, torch threads {torch.get_num_threads()}")
    print(result.report())
    total = result.timings["total"]
    print(f"target <= 300 s: {'met' if total <= 300 else 'MISSED'}")
    print(f"ratio total / one LeNet-5 epoch on 60k images ({epoch:.1f} s): {total / epoch:.1f}x")


if __name__ == "__main__":
    main()
