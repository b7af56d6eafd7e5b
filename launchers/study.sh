#!/usr/bin/env bash
# The study (moe_dopamine/study.py): single-task protocol runs, the CRL and
# MTRL grids ({baseline, parameter-matched baseline, middle, final, all, big} x
# {softmoe, topk}, big with hardcoded routing), the replay and task-order
# ablations and the adaptive routers, 5 seeds each; then the report.
#
#   bash launchers/study.sh                        # local, one worker per core
#   bash launchers/study.sh --ray_address=auto     # on a running Ray cluster
#   bash launchers/study.sh --parts=protocol,crl_headline --seeds=0,1,2,3,4
#
# It prints the number of runs, how many the results tables already hold, and
# the expected wall time, then runs only the missing ones. Each run is added
# to docs/study/results as soon as it finishes (commit that folder: it is
# what is kept); run folders go to runs/study and let an interrupted run
# resume. Stopped (Ctrl-C) and relaunched, it continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
status=0
"$PY" -m moe_dopamine.study run "$@" || status=$?
"$PY" -m moe_dopamine.study report
exit "$status"
