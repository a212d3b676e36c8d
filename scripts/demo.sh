#!/usr/bin/env bash
# The main job on the embedded default (Fashion-MNIST from Debian's dataset-fashion-mnist): train the dense
# LeNet-5 and print its geometry summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
lotterysite train --data fashion_mnist --arch lenet5 --epochs 4 --out runs/demo/lenet5-dense.pt
