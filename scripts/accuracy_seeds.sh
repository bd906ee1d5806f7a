#!/usr/bin/env bash
# Issue 18's multi-seed accuracy experiment: scripts/accuracy.sh once per seed (each its own
# fp32 network, QAT run and exports, in $RUN/seed<N>), then the table of
# scripts/accuracy_table.py in $RUN/table.md. Resumable like accuracy.sh: rerun to continue.
# RUN, SIZE, RECIPE, QAT_STEPS, MODEL, STOCK, CALIB, CALIB_IMAGES as in accuracy.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-0 1 2}
export STOCK=${STOCK:-1}
export MODEL=${MODEL:-mobile_former_26m} SIZE=${SIZE:-32} RECIPE=${RECIPE:-xnnpack-sym-per-tensor}
export QAT_STEPS=${QAT_STEPS:-1800}
RUN=${RUN:-runs/accuracy-seeds}
runs=()
for seed in $SEEDS; do
  run=$RUN/seed$seed
  SEED=$seed RUN=$run FLOAT=$run/float scripts/accuracy.sh
  runs+=("$run")
done
"$PY" scripts/accuracy_table.py "$MODEL" "$RECIPE" "${runs[@]}" | tee "$RUN/table.md"
