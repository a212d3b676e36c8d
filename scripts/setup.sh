#!/usr/bin/env bash
# Installs everything lotterysite needs on a fresh Debian-like machine, offline-safe: system packages from apt,
# Python packages from PyPI (torch pinned in pyproject.toml). The site's JavaScript ships inside the package
# (lotterysite/site/vendor/, refreshed by scripts/update-js.sh): no Node needed.
# Usage: scripts/setup.sh [test]   ("test" adds pytest, Playwright, Zensical, ruff, build and Debian's chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
want_tests=${1:-}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Debian packages: the embedded default data set, and chromium for the browser tests.
apt_packages=(dataset-fashion-mnist)
[ "$want_tests" = "test" ] && apt_packages+=(chromium)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
extras=""
[ "$want_tests" = "test" ] && extras="[test]"
$PY -m pip install -q --disable-pip-version-check -e ".${extras}"
# foolbox ships 20 real CIFAR-10 test images; we read them by path and need none of its dependencies.
$PY -m pip install -q --disable-pip-version-check --no-deps "foolbox==3.3.4"
