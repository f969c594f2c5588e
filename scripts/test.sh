#!/usr/bin/env bash
# The whole test suite: set up (idempotent), lint, then every package's tests.
#   scripts/test.sh [pytest args]      # or: make test
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
# shellcheck source=/dev/null
source "$root/env.sh"
cd "$root"
echo "[test] ruff"
ruff check .
ruff format --check .
echo "[test] pytest"
python -m pytest "$@"
