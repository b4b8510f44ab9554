#!/usr/bin/env bash
# Create build/bench-venv with the peers of bench/dag.py (Snakemake, DVC).
#
# A separate venv keeps the peers' large dependency trees out of e3's runtime
# and test environment. Idempotent: an existing venv is reused, and pip is only
# asked to install when bench/requirements.txt changed since the last success.
# Usage: bash bench/setup_peers.sh   (PYTHON=python3.12 to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=build/bench-venv
REQ=bench/requirements.txt
STAMP=$VENV/.requirements.sha256

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    echo "bench peers already installed in $VENV"
    exit 0
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
echo "$want" > "$STAMP"
"$VENV/bin/snakemake" --version | sed 's/^/snakemake /'
"$VENV/bin/dvc" --version | sed 's/^/dvc /'
