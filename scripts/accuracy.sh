#!/usr/bin/env bash
# The accuracy experiment of docs/benchmarks.md: train fp32 on Fashion-MNIST, then measure
# fp32, PTQ int8 (ours and ExecuTorch's stock quantizer) and QAT int8 top-1 on the held-out
# 10,000 test images, each int8 number from the exported .pte run by ExecuTorch.
# Resumable: a finished stage is skipped; an interrupted training continues from its last.pt.
# RECIPE picks the int8 recipe of the PTQ and QAT rows (e.g. xnnpack-per-tensor);
# FLOAT reuses the fp32 model of another run instead of training one; QAT_STEPS sets the QAT length;
# SEED seeds the fp32 training and the QAT run (the calibration images are the same for every seed);
# STOCK=0 leaves out the stock quantizer's row; CALIB and CALIB_IMAGES pick the PTQ calibration
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
# The int8 artifact's file name, as quant.export names it for this recipe.
INT8=$("$PY" -c "import sys; from quant.export import artifact_name; print(artifact_name(sys.argv[1], 'xnnpack', 'int8', sys.argv[2], 'pte', False))" "$MODEL" "$RECIPE" 2>/dev/null)

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

export_args=(--backend xnnpack --model "$MODEL" --calib "$CALIB" --calib-images "$CALIB_IMAGES" --no-progress)
[[ -f "$RUN/ptq/${MODEL}_xnnpack_fp32.pte" ]] || \
  "$PY" -m quant.export "${export_args[@]}" --checkpoint "$FLOAT/final.pt" --input-size "$SIZE" --precision fp32 --out "$RUN/ptq"
[[ -f "$RUN/ptq/$INT8" ]] || \
  "$PY" -m quant.export "${export_args[@]}" --checkpoint "$FLOAT/final.pt" --input-size "$SIZE" --recipe "$RECIPE" --out "$RUN/ptq"
[[ $STOCK == 0 || -f "$RUN/ptq/${MODEL}_xnnpack_int8_stock.pte" ]] || \
  "$PY" -m quant.export "${export_args[@]}" --checkpoint "$FLOAT/final.pt" --input-size "$SIZE" --recipe xnnpack-stock --out "$RUN/ptq"
# Calibrated on other images than the data set's own: PTQ calibrated on 256 of its own, for comparison.
[[ $CALIB == "$DATA" || -f "$RUN/ptq-$DATA/$INT8" ]] || \
  "$PY" -m quant.export "${export_args[@]}" --calib "$DATA" --calib-images 256 --checkpoint "$FLOAT/final.pt" \
    --input-size "$SIZE" --recipe "$RECIPE" --out "$RUN/ptq-$DATA"
[[ -f "$RUN/qat-export/$INT8" ]] || \
  "$PY" -m quant.export "${export_args[@]}" --checkpoint "$RUN/qat/final.pt" --recipe "$RECIPE" --out "$RUN/qat-export"

ptes=("$RUN/ptq/${MODEL}_xnnpack_fp32.pte" "$RUN/ptq/$INT8" "$RUN/qat-export/$INT8")
[[ $STOCK == 0 ]] || ptes+=("$RUN/ptq/${MODEL}_xnnpack_int8_stock.pte")
[[ $CALIB == "$DATA" ]] || ptes+=("$RUN/ptq-$DATA/$INT8")
for pte in "${ptes[@]}"; do
  [[ -f "${pte%.pte}.top1.json" ]] || "$PY" -m quant.evaluate "$pte" --data "$DATA" --json "${pte%.pte}.top1.json"
done
ptq="$RUN/ptq/${INT8%.pte}.top1.json" qat="$RUN/qat-export/${INT8%.pte}.top1.json"
echo "PTQ (A) vs QAT (B):"; "$PY" -m quant.evaluate --compare "$ptq" "$qat"
echo "QAT (A) vs fp32 (B):"; "$PY" -m quant.evaluate --compare "$qat" "$RUN/ptq/${MODEL}_xnnpack_fp32.top1.json"
echo "fp32 training top-1 (PyTorch): $("$PY" -c "import torch,sys; print(round(100*torch.load(sys.argv[1], weights_only=True)['held_out_top1'], 2))" "$FLOAT/final.pt")%"
