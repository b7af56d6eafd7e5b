#!/usr/bin/env bash
# Runs a study spec (default: studies/classic_control.toml) in resumable
# pieces, then regenerates its report (moe_dopamine/study.py).
#
#   bash launchers/study.sh                                  # local, one run per core
#   bash launchers/study.sh --ray_address=auto               # on a running Ray cluster
#   bash launchers/study.sh --spec=studies/mine.toml --parts=a,b --seeds=0-4
#   bash launchers/study.sh --time_limit=2h30m               # start only runs that end in time
#
# It prints the runs of each part, how many the results tables already hold
# and the expected wall time, then runs only the missing ones. Each run is
# added to the spec's results tables as soon as it finishes (commit that
# folder: it is what is kept); run folders go to the spec's runs_dir and let
# an interrupted run resume. Stopped (Ctrl-C) and relaunched, it continues
# where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
spec=()
for arg in "$@"; do
  case "$arg" in --spec=*|--results=*|--out=*) spec+=("$arg") ;; esac
done
status=0
"$PY" -m moe_dopamine.study run "$@" || status=$?
"$PY" -m moe_dopamine.study report "${spec[@]}"
exit "$status"
