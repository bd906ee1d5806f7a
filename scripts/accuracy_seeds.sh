#!/usr/bin/env bash
# Issue 18's multi-seed accuracy experiment: scripts/accuracy.sh once per seed (each its own
# fp32 network, QAT run and exports, in $RUN/seed<N>), then the table of
# scripts/accuracy_table.py in $RUN/table.md and its results file $RUN/accuracy.json (what
# docs/results/accuracy_*.json are copies of). Resumable like accuracy.sh: rerun to continue.
# RUN, SIZE, RECIPE, QAT_STEPS, MODEL, STOCK, CALIB, CALIB_IMAGES as in accuracy.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-0 1 2}
export STOCK=${STOCK:-0}
# Defaults: the PTQ-loss case of docs/accuracy.md: our recipe calibrated on 2 'digits' images
# (another distribution), PTQ calibrated on 256 Fashion-MNIST images beside it.
export MODEL=${MODEL:-mobile_former_26m} SIZE=${SIZE:-32} RECIPE=${RECIPE:-xnnpack}
export QAT_STEPS=${QAT_STEPS:-1800} CALIB=${CALIB:-digits} CALIB_IMAGES=${CALIB_IMAGES:-2}
RUN=${RUN:-runs/accuracy-seeds}
runs=()
for seed in $SEEDS; do
  run=$RUN/seed$seed
  SEED=$seed RUN=$run FLOAT=$run/float scripts/accuracy.sh
  runs+=("$run")
done
# Written whole or not at all: a killed run leaves no half table.
"$PY" scripts/accuracy_table.py "$MODEL" "$RECIPE" "${runs[@]}" --json "$RUN/accuracy.json" > "$RUN/.table.md.partial"
mv "$RUN/.table.md.partial" "$RUN/table.md" && cat "$RUN/table.md"
