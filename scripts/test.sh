#!/usr/bin/env bash
# The test command: install kgrec with its dev extra into .venv, lint, run the test suite.
#   bash scripts/test.sh [pytest args]
set -euo pipefail
EXTRAS="[dev]" . "$(dirname "$0")/_venv.sh"
ruff check kgrec tests scripts
python -m pytest -q --durations=10 "$@"  # the ten slowest tests close the report
