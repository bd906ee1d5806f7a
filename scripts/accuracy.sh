#!/usr/bin/env bash
# The accuracy experiment of docs/accuracy.md: train fp32 on Fashion-MNIST, then measure
# fp32, PTQ int8 (ours and, for XNNPACK, ExecuTorch's stock quantizer) and QAT int8 top-1 on the
# held-out 10,000 test images, each number from the exported artifact run by its backend's host
# runner (quant.evaluate: ExecuTorch, the MIL reference executor, LiteRT).
# Resumable: a finished stage is skipped; an interrupted training continues from its last.pt.
# RECIPE picks the int8 recipe of the PTQ and QAT rows (e.g. xnnpack-per-tensor), and so the
# backend (coreml, tflite: that backend's artifacts; a Core ML package takes ~45 min per 10,000 images);
# FLOAT reuses the fp32 model of another run instead of training one; QAT_STEPS sets the QAT length;
# SEED seeds the fp32 training and the QAT run (the calibration images are the same for every seed);
# STOCK=0 leaves out the stock quantizer's row (XNNPACK only); CALIB and CALIB_IMAGES pick the PTQ calibration
# images (default: 256 Fashion-MNIST training images).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MODEL=${MODEL:-mobile_former_26m}
SIZE=${SIZE:-64}
RUN=${RUN:-runs/accuracy}
RECIPE=${RECIPE:-xnnpack}
QAT_STEPS=${QAT_STEPS:-600}
SEED=${SEED:-0}
STOCK=${STOCK:-1}
CALIB=${CALIB:-fashion-mnist}
CALIB_IMAGES=${CALIB_IMAGES:-256}
FLOAT=${FLOAT:-$RUN/float}
DATA=fashion-mnist
# The recipe's backend and the fp32 and int8 artifacts' file names, as quant.export names them.
read -r BACKEND FP32 INT8 < <("$PY" -c "
import sys
from quant.backends import BACKENDS
from quant.export import artifact_name
from quant.recipes import get_recipe
model, recipe = sys.argv[1:]
backend = get_recipe(recipe).backend
ext = BACKENDS[backend].formats[0]
print(backend, artifact_name(model, backend, 'fp32', get_recipe(backend), ext, False), artifact_name(model, backend, 'int8', get_recipe(recipe), ext, False))
" "$MODEL" "$RECIPE" 2>/dev/null) || true  # read fails on no output: the line below says why
[[ -n $INT8 ]] || { echo "error: no such recipe: $RECIPE" >&2; exit 2; }
[[ $BACKEND == xnnpack ]] || STOCK=0

resume_flag() { [[ -f "$1/last.pt" && ! -f "$1/final.pt" ]] && echo "--resume $1/last.pt" || true; }

if [[ ! -f "$FLOAT/final.pt" ]]; then
  # shellcheck disable=SC2046
  "$PY" -m quant.train --model "$MODEL" --data "$DATA" --input-size "$SIZE" --steps 2500 --batch-size 64 \
    --lr 2e-3 --warmup-steps 100 --checkpoint-every 250 --seed "$SEED" --out "$FLOAT" $(resume_flag "$FLOAT")
fi
if [[ ! -f "$RUN/qat/final.pt" ]]; then
  # shellcheck disable=SC2046
  "$PY" -m quant.qat --model "$MODEL" --data "$DATA" --input-size "$SIZE" --init "$FLOAT/final.pt" \
    --recipe "$RECIPE" \
    --steps "$QAT_STEPS" --batch-size 64 --lr 1e-4 --warmup-steps 30 \
    --freeze-bn-step $((QAT_STEPS * 2 / 3)) --freeze-observer-step $((QAT_STEPS * 5 / 6)) \
    --checkpoint-every 100 --seed "$SEED" --out "$RUN/qat" $(resume_flag "$RUN/qat")
fi

export_args=(--backend "$BACKEND" --model "$MODEL" --calib "$CALIB" --calib-images "$CALIB_IMAGES" --no-progress)
[[ -e "$RUN/ptq/$FP32" ]] || \
  "$PY" -m quant.export "${export_args[@]}" --checkpoint "$FLOAT/final.pt" --input-size "$SIZE" --precision fp32 --out "$RUN/ptq"
[[ -e "$RUN/ptq/$INT8" ]] || \
  "$PY" -m quant.export "${export_args[@]}" --checkpoint "$FLOAT/final.pt" --input-size "$SIZE" --recipe "$RECIPE" --out "$RUN/ptq"
[[ $STOCK == 0 || -f "$RUN/ptq/${MODEL}_xnnpack_int8_stock.pte" ]] || \
  "$PY" -m quant.export "${export_args[@]}" --checkpoint "$FLOAT/final.pt" --input-size "$SIZE" --recipe xnnpack-stock --out "$RUN/ptq"
# Calibrated on other images than the data set's own: PTQ calibrated on 256 of its own, for comparison.
[[ $CALIB == "$DATA" || -e "$RUN/ptq-$DATA/$INT8" ]] || \
  "$PY" -m quant.export "${export_args[@]}" --calib "$DATA" --calib-images 256 --checkpoint "$FLOAT/final.pt" \
    --input-size "$SIZE" --recipe "$RECIPE" --out "$RUN/ptq-$DATA"
[[ -e "$RUN/qat-export/$INT8" ]] || \
  "$PY" -m quant.export "${export_args[@]}" --checkpoint "$RUN/qat/final.pt" --recipe "$RECIPE" --out "$RUN/qat-export"

artifacts=("$RUN/ptq/$FP32" "$RUN/ptq/$INT8" "$RUN/qat-export/$INT8")
[[ $STOCK == 0 ]] || artifacts+=("$RUN/ptq/${MODEL}_xnnpack_int8_stock.pte")
[[ $CALIB == "$DATA" ]] || artifacts+=("$RUN/ptq-$DATA/$INT8")
for artifact in "${artifacts[@]}"; do
  [[ -f "${artifact%.*}.top1.json" ]] || "$PY" -m quant.evaluate "$artifact" --data "$DATA" --json "${artifact%.*}.top1.json"
done
ptq="$RUN/ptq/${INT8%.*}.top1.json" qat="$RUN/qat-export/${INT8%.*}.top1.json"
echo "PTQ (A) vs QAT (B):"; "$PY" -m quant.evaluate --compare "$ptq" "$qat"
echo "QAT (A) vs fp32 (B):"; "$PY" -m quant.evaluate --compare "$qat" "$RUN/ptq/${FP32%.*}.top1.json"
echo "fp32 training top-1 (PyTorch): $("$PY" -c "import torch,sys; print(round(100*torch.load(sys.argv[1], weights_only=True)['held_out_top1'], 2))" "$FLOAT/final.pt")%"
