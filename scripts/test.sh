#!/usr/bin/env bash
# Installs what the tests need, checks lint and formatting (ruff, configured in pyproject.toml), then runs the whole
# suite (< 15 minutes on 2 CPU cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
${PYTHON:-python3} -m ruff check .
${PYTHON:-python3} -m ruff format --check .
exec ${PYTHON:-python3} -m pytest "$@"
