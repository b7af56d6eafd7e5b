#!/usr/bin/env bash
# An ablation sweep: the number of experts of Big SoftMoE in CRL, 3 seeds.
#   bash launchers/sweep_example.sh [--ray_address=auto]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
OUT="${OUT:-runs/crl_big_softmoe_num_experts}"
"$PY" -m moe_dopamine.sweep --out="$OUT" \
  --gin_files=gin_configs/crl_big_softmoe.gin \
  --grid="ClassicControlQNetwork.num_experts=2;4;8" \
  --seeds=0,1,2 "$@"
"$PY" -m moe_dopamine.plot "$OUT" --out="$OUT/report"
