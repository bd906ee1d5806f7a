#!/usr/bin/env bash
# Benchmark a Mobile-Former model on an iPhone/iPad with ios_demo, headless,
# and turn the result(s) into a report (macOS with Xcode 15+):
#
#   ios_demo/run_benchmark.sh --model out/coreml/mobile_former_26m.mlpackage
#   ios_demo/run_benchmark.sh --model out/xnnpack/mobile_former_26m.pte --threads 4
#   ios_demo/run_benchmark.sh --export mobile_former_26m --backend coreml
#
# Steps: (export with quant.export) -> xcrun devicectl device copy to (app's
# Documents/inbox/<run-id>/) -> devicectl device process launch --headless ->
# wait for Documents/results/<run-id>/status.json -> copy the results back ->
# python -m quant.report on each JSON. Written for the bash 3.2 of macOS.
set -euo pipefail

BUNDLE="org.mobileformer.demo"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Shared with android_demo/run_benchmark.sh: die, need_value/need_int, the common options with
# their defaults, and the export / manifest / report steps.
# shellcheck source=SCRIPTDIR/../scripts/phone_bench_lib.sh
source "$here/../scripts/phone_bench_lib.sh"

usage() {
  cat <<EOF
usage: ios_demo/run_benchmark.sh (--model PATH | --export VARIANT [--backend B]) [options]

Runs ios_demo's headless benchmark on a connected iOS device with
xcrun devicectl and copies the mobileformer-latency/1 JSON results
(docs/latency-format.md) back, then runs python -m quant.report on them.

model (one of):
  --model PATH            .pte (ExecuTorch, XNNPACK) or .mlpackage / .mlmodelc (Core ML)
  --export VARIANT        first run: python -m quant.export --backend B --model VARIANT
                          --out OUT_DIR/export/VARIANT-B
  --backend B             coreml (default) or xnnpack, for --export

options:
  --manifest PATH         export manifest (default: <stem>.manifest.json or
                          manifest.json beside the model)
  --iters N               timed runs (default 50)
  --warmup N              untimed runs first (default 10)
  --threads N             ExecuTorch threads, 0 = runtime default (default 4)
  --compute-units U       Core ML: every (default; one JSON per setting), all,
                          cpuOnly, cpuAndGPU, cpuAndNeuralEngine, or a comma list
  --label TEXT            report row label (default: the model file name)
  --etdump                ExecuTorch: also write the ETDump (needs an app built
                          with the event tracer; the Swift PM release has none)
  --device ID             devicectl device identifier, UDID or name (default: the
                          only connected iOS device)
  --out-dir DIR           where results go (default ios_demo/runs)
  --timeout SECONDS       give up waiting (default 1200)
  --python PY             Python for quant.export / quant.report (default: the
                          repo's .venv/bin/python if present, else python3)
  --keep-model            leave the copied model in the app's Documents/inbox
  --no-report             do not run quant.report
  -h, --help              this help

The app must be installed first (ios_demo/README.md). Keep the device unlocked.
EOF
}

backend="coreml" units="every" cleanup=1 timeout=1200 device=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    --backend) need_value "$@"; backend="$2"; shift 2 ;;
    --compute-units) need_value "$@"; units="$2"; shift 2 ;;
    --device) need_value "$@"; device="$2"; shift 2 ;;
    --keep-model) cleanup=0; shift ;;
    *) common_option "$@"; shift "$consumed" ;;
  esac
done

check_common_options PATH
case "$backend" in coreml | xnnpack) ;; *) die "--backend must be coreml or xnnpack, got '$backend'" ;; esac
for u in $(echo "$units" | tr ',' ' '); do
  case "$u" in every | all | cpuOnly | cpuAndGPU | cpuAndNeuralEngine) ;;
    *) die "unknown compute unit '$u' (every, all, cpuOnly, cpuAndGPU, cpuAndNeuralEngine)" ;;
  esac
done

find_python_make_out_dir

# --- the model -------------------------------------------------------------
if [[ -n "$variant" ]]; then
  export_model "$backend" "$backend" "$out_dir/export/$variant-$backend" pte mlpackage
fi
[[ -e "$model" ]] || die "no such model: $model"
resolve_model
case "$name" in
  *.pte | *.mlpackage | *.mlmodelc | *.mlmodel) ;;
  *) die "not a .pte, .mlpackage, .mlmodelc or .mlmodel: $model" ;;
esac
find_manifest

# --- the device ------------------------------------------------------------
command -v xcrun >/dev/null 2>&1 ||
  die "xcrun not found: this needs macOS with Xcode 15 or newer; elsewhere use the Files app way (ios_demo/README.md)"
xcrun devicectl --version >/dev/null 2>&1 || die "xcrun devicectl not found: needs Xcode 15 or newer (xcode-select -p)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/mfbench-ios.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

if [[ -z "$device" ]]; then
  xcrun devicectl list devices --json-output "$tmp/devices.json" >/dev/null 2>&1 ||
    die "xcrun devicectl list devices failed"
  device="$("$python" - "$tmp/devices.json" <<'PY'
import json, sys
devices = json.load(open(sys.argv[1])).get("result", {}).get("devices", [])
phones = [d for d in devices
          if str(d.get("hardwareProperties", {}).get("platform", "")).lower() == "ios"
          and d.get("hardwareProperties", {}).get("reality") != "virtual"]
connected = [d for d in phones if d.get("connectionProperties", {}).get("tunnelState") == "connected"]
print("\n".join(d.get("identifier", "") for d in (connected or phones) if d.get("identifier")))
PY
)" || die "cannot read devicectl's device list"
  case "$(printf '%s' "$device" | grep -c .)" in
    0) die "no paired iOS device found (xcrun devicectl list devices): connect and unlock one, trust this Mac" ;;
    1) ;;
    *) die "several iOS devices: choose one with --device ($(tr '\n' ' ' <<<"$device"))" ;;
  esac
fi
echo "== device $device"

dctl() { xcrun devicectl "$@"; }
container=(--device "$device" --domain-type appDataContainer --domain-identifier "$BUNDLE")

run_id="$(date +%Y%m%d-%H%M%S)"
inbox="Documents/inbox/$run_id"

echo "== copying $name into the app's $inbox"
dctl device copy to "${container[@]}" --source "$model" --destination "$inbox/$name" >/dev/null ||
  die "copy failed: is $BUNDLE installed on the device (ios_demo/README.md)? Is the device unlocked?"
if [[ -n "$manifest" ]]; then
  dctl device copy to "${container[@]}" --source "$manifest" --destination "$inbox/$stem.manifest.json" >/dev/null ||
    die "copying the manifest failed"
fi

args=(--headless --model "inbox/$run_id/$name" --iters "$iters" --warmup "$warmup" --threads "$threads"
  --compute-units "$units" --out-dir results --run-id "$run_id")
if [[ -n "$label" ]]; then args+=(--label "$label"); fi
if [[ "$etdump" == 1 ]]; then args+=(--etdump); fi
if [[ "$cleanup" == 1 ]]; then args+=(--cleanup); fi

echo "== running $name: $iters runs after $warmup warm-up (Core ML units: $units; ExecuTorch threads: $threads)"
dctl device process launch --device "$device" --terminate-existing "$BUNDLE" -- "${args[@]}" >/dev/null ||
  die "launch failed: is the device unlocked and the app's developer certificate trusted (Settings > General > VPN & Device Management)?"

# devicectl does not overwrite: copy into fresh local names every time.
deadline=$((SECONDS + timeout))
attempt=0
while :; do
  attempt=$((attempt + 1))
  if dctl device copy from "${container[@]}" --source "Documents/results/$run_id/status.json" \
    --destination "$tmp/status-$attempt.json" >/dev/null 2>&1 && [[ -s "$tmp/status-$attempt.json" ]]; then
    break
  fi
  [[ $SECONDS -lt $deadline ]] || die "no status.json after ${timeout}s: look at the app on the device"
  sleep 5
done
status="$tmp/status-$attempt.json"

ok="$("$python" -c 'import json,sys; print("yes" if json.load(open(sys.argv[1]))["ok"] else "no")' "$status")"
if [[ "$ok" != "yes" ]]; then
  die "the benchmark failed on the device: $("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"])' "$status")"
fi

result_dir="$out_dir/$stem-$run_id"
mkdir -p "$result_dir"
results=()
while IFS= read -r file; do
  [[ -n "$file" ]] || continue
  dctl device copy from "${container[@]}" --source "Documents/results/$run_id/$file" \
    --destination "$result_dir/$file" >/dev/null || die "copying $file back failed"
  case "$file" in *.json) results+=("$result_dir/$file") ;; esac
done < <("$python" -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["files"]))' "$status")
[[ ${#results[@]} -gt 0 ]] || die "the app reported no result files"

echo "== results in $result_dir"
if [[ "$report" == 1 ]]; then
  for result in "${results[@]}"; do report_on "$result" "python -m quant.report failed on $result"; done
fi
