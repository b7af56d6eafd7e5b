#!/usr/bin/env bash
# Creates (or updates) the virtual environment .venv with moe_dopamine and its
# pinned stack. Safe to run again: an up-to-date venv is left as it is.
# Usage: bash launchers/setup_venv.sh   (VENV=path to use another folder)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3

stamp="$VENV/.moe_dopamine_installed"
if [ -f "$stamp" ] && [ "$stamp" -nt setup.py ]; then
  exit 0
fi
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -e '.[test]'
# dopamine-rl imports baselines.common.atari_wrappers without declaring it;
# baselines' own requirements cannot install, so it goes in alone.
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps baselines==0.1.5
"$VENV/bin/python" -c 'import moe_dopamine.train' 
touch "$stamp"
echo "moe_dopamine installed in $VENV"
