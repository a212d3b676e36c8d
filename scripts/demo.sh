#!/usr/bin/env bash
# The main job on the embedded default (Fashion-MNIST from Debian's dataset-fashion-mnist): run the demo recipe
# (train, prune, corrupt, measure -> store/demo), then build the static site from that store into site/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
lotterysite precompute precompute/demo.toml
lotterysite info store/demo
${PYTHON:-python3} -m mkdocs build --strict
echo
echo "Site built in $(pwd)/site - open site/index.html through any static file server, e.g."
echo "  python3 -m http.server --directory site 8000   # then browse http://localhost:8000"
