#!/usr/bin/env bash
# Creates (or updates) the virtual environment .venv with moe_dopamine and its
# pinned stack. Safe to run again: an up-to-date venv is left as it is.
# Usage: bash launchers/setup_venv.sh   (VENV=path to use another folder,
#        PYTHON=interpreter to use another Python 3.11 or 3.12)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"

# The pinned stack installs on Python 3.11 and 3.12 (setup.py python_requires):
# TensorFlow 2.18 has no 3.13 wheels and pandas 3 needs 3.11.
if [ -z "${PYTHON:-}" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null; then
      PYTHON="$candidate"
      break
    fi
  done
fi
if [ -z "${PYTHON:-}" ] || ! command -v "$PYTHON" >/dev/null; then
  echo "setup_venv.sh: error: no Python found (tried ${PYTHON:-python3.11, python3.12, python3})." \
       "Fix: install Python 3.11 or 3.12, or set PYTHON=/path/to/python3.11." >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 12))'; then
  found="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo unknown)"
  echo "setup_venv.sh: error: $PYTHON is Python $found; moe_dopamine's pinned stack needs 3.11 or 3.12." \
       "Fix: install python3.11 (or 3.12), or set PYTHON=/path/to/python3.11." >&2
  exit 1
fi

stamp="$VENV/.moe_dopamine_installed"
if [ -f "$stamp" ] && [ "$stamp" -nt setup.py ]; then
  exit 0
fi
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -e '.[test]'
# dopamine-rl imports baselines.common.atari_wrappers without declaring it;
# baselines' own requirements cannot install, so it goes in alone.
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps baselines==0.1.5
# The import check's TensorFlow banners are shown only if it fails.
if ! out="$("$VENV/bin/python" -c 'import moe_dopamine.train' 2>&1)"; then
  echo "$out" >&2
  echo "setup_venv.sh: error: moe_dopamine does not import in $VENV (output above)." >&2
  exit 1
fi
touch "$stamp"
echo "moe_dopamine installed in $VENV ($("$VENV/bin/python" --version))"
