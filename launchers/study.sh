#!/usr/bin/env bash
# The study's comparison grid: {baseline, middle, final, all, big} x
# {softmoe, topk} plus big_hardcoded (one expert per task) and the baseline
# matched to Big's parameter count, in MTRL and in CRL (CartPole then
# MountainCar), over seeds; then the figures and summary.
#
#   bash launchers/study.sh quick   # 2 seeds, small budget: ~1 h on 2 cores
#   bash launchers/study.sh full    # 5 seeds, the configs' budgets, on Ray
#
# Extra arguments go to moe_dopamine.sweep (e.g. --ray_address=auto).
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE="${1:-quick}"
shift || true
PY="${PYTHON:-.venv/bin/python}"

gin_files=()
for setting in mtrl crl; do
  gin_files+=("--gin_files=gin_configs/${setting}_baseline.gin")
  gin_files+=("--gin_files=gin_configs/${setting}_baseline_matched.gin")
  for placement in middle final all big; do
    for router in softmoe topk; do
      gin_files+=("--gin_files=gin_configs/${setting}_${placement}_${router}.gin")
    done
  done
  gin_files+=("--gin_files=gin_configs/${setting}_big_hardcoded.gin")
done

case "$SCALE" in
  quick)
    OUT="${OUT:-runs/study_quick}"
    args=(--seeds=0,1
          --gin_bindings=MultiTaskEnvironment.iterations_per_task=6
          --gin_bindings=Runner.num_iterations=12
          --gin_bindings=Runner.training_steps=1000
          --gin_bindings=MoERunner.evaluation_episodes=5)
    ;;
  full)
    OUT="${OUT:-runs/study_full}"
    args=(--seeds=0,1,2,3,4 --ray_address="${RAY_ADDRESS:-auto}")
    ;;
  *)
    echo "usage: bash launchers/study.sh quick|full [sweep arguments]" >&2
    exit 2
    ;;
esac

"$PY" -m moe_dopamine.sweep --out="$OUT" "${gin_files[@]}" "${args[@]}" "$@"
for setting in mtrl crl; do
  "$PY" -m moe_dopamine.plot "$OUT"/${setting}_* --out="$OUT/report/$setting"
done
echo "reports: $OUT/report/{mtrl,crl}/summary.md"
