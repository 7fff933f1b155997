#!/usr/bin/env bash
# The test command: lint (ruff) and the test suite (pytest), in .venv (created on first use).
#   tests/run.sh               everything
#   tests/run.sh --quick       the inner loop: no test that trains a model or runs a command
#   tests/run.sh -k metric     extra arguments go to pytest
# Tests run on every core (pytest-xdist, one worker a core; PYTEST_WORKERS=1: in one process).
set -euo pipefail
cd "$(dirname "$0")/.."
source src/ensure_venv.sh
echo "==> ruff"
ruff check src tests notebooks
ruff format --check src tests
quick=()
if [[ "${1:-}" == --quick ]]; then
    quick=(-m "not slow")
    shift
fi
echo "==> pytest"
python -m pytest -n "${PYTEST_WORKERS:-auto}" ${quick[@]+"${quick[@]}"} "$@"
