#!/usr/bin/env bash
# Installs what the tests need, checks lint and formatting (ruff, configured in pyproject.toml; oxlint for the site's
# JavaScript), then runs the whole suite (< 15 minutes on 2 CPU cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
${PYTHON:-python3} -m ruff check .
${PYTHON:-python3} -m ruff format --check .
# The site's JavaScript (not the vendored, minified Vega builds): oxlint from the test extra, a binary beside Python's
# scripts. Errors fail the run; warnings are printed.
"$(${PYTHON:-python3} -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/oxlint" lotterysite/site/assets
exec ${PYTHON:-python3} -m pytest "$@"
