#!/usr/bin/env bash
# The test command: set up the machine (scripts/bootstrap.sh), then run the whole suite,
# unit and end-to-end (sandbox machines), in parallel on all cores. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/pytest -n auto --dist loadfile "$@"
