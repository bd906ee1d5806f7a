#!/usr/bin/env bash
# The latency, size and AArch64 figures of docs/results.md: for each variant (MODELS, default all
# seven), export ExecuTorch's stock fp32 and int8 (the float model as it is) and this project's fp32
# and int8 (.pte, XNNPACK), plus LiteRT int8/fp32 for 26m and a --profile-blocks build, then time
# them all with quant.bench on 1 thread, side by side, and count their AArch64 instructions
# (quant.bench --arm64, -cpu cortex-a76, three warm-ups: 96m's stock fp32 settles only then; ARM64=0 skips it).
# Random (seeded) weights: latency, size and op coverage do not depend on them.
# Resumable: an artifact that exists is not exported again (EXPORT_ONLY=1: no timing yet).
# Time on a quiet machine: export wall times and latencies move with load.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/benchmarks}
THREADS=${THREADS:-1}
ITERATIONS=${ITERATIONS:-200}
MODELS=${MODELS:-"mobile_former_26m mobile_former_52m mobile_former_96m mobile_former_151m mobile_former_214m mobile_former_294m mobile_former_508m"}
ARM64=${ARM64:-1}

export_once() {  # export_once ARTIFACT ARGS...: export unless ARTIFACT is already there
  local artifact=$1; shift
  [[ -f "$artifact" ]] || "$PY" -m quant.export --no-progress "$@"
}

for model in $MODELS; do
  dir="$OUT/$model"
  common=(--backend xnnpack --model "$model" --out "$dir")
  export_once "$dir/${model}_xnnpack_fp32_stock.pte" "${common[@]}" --precision fp32 --recipe xnnpack-stock
  export_once "$dir/${model}_xnnpack_fp32.pte" "${common[@]}" --precision fp32
  export_once "$dir/${model}_xnnpack_int8_stock.pte" "${common[@]}" --recipe xnnpack-stock
  export_once "$dir/${model}_xnnpack_int8.pte" "${common[@]}"
  artifacts=("$dir/${model}_xnnpack_fp32_stock.pte" "$dir/${model}_xnnpack_fp32.pte" "$dir/${model}_xnnpack_int8_stock.pte"
             "$dir/${model}_xnnpack_int8.pte")
  if [[ $model == mobile_former_26m ]]; then
    export_once "$dir/${model}_xnnpack_int8_blocks.pte" "${common[@]}" --profile-blocks
    artifacts+=("$dir/${model}_xnnpack_int8_blocks.pte")
    if "$PY" -c "import litert_torch, ai_edge_litert" 2>/dev/null; then
      export_once "$dir/${model}_tflite_fp32.tflite" --backend tflite --model "$model" --out "$dir" --precision fp32
      export_once "$dir/${model}_tflite_int8.tflite" --backend tflite --model "$model" --out "$dir"
      artifacts+=("$dir/${model}_tflite_fp32.tflite" "$dir/${model}_tflite_int8.tflite")
    fi
  fi
  [[ -n "${EXPORT_ONLY:-}" ]] && continue
  "$PY" -m quant.bench "${artifacts[@]}" --threads "$THREADS" --iterations "$ITERATIONS" --out "$dir/bench" --name "$model"
  [[ $ARM64 == 0 ]] || "$PY" -m quant.bench --arm64 --warmup 3 --iterations 4 "${artifacts[@]:0:4}" --out "$dir/arm64" --name "$model"
done
# Export wall time, size and validation of every artifact, from the manifests.
"$PY" - "$OUT" <<'PYEOF'
import json, pathlib, sys
for m in sorted(pathlib.Path(sys.argv[1]).glob("*/*.manifest.json")):
    d = json.loads(m.read_text()); v = d.get("validation", {})
    print(f"{m.name.removesuffix('.manifest.json'):42s} {d['size_bytes'] / 1e6:6.2f} MB  export {d['timings_s']['total']:6.1f} s"
          f"  SQNR {v.get('sqnr_db_vs_fp32', float('nan')):5.1f} dB  top-1 agree {v.get('top1_agreement_vs_fp32', float('nan'))}")
PYEOF
