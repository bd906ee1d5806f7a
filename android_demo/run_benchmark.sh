#!/usr/bin/env bash
# Benchmark a Mobile-Former .pte on an Android phone with android_demo, headless,
# and turn the result into a report:
#
#   android_demo/run_benchmark.sh --model out/xnnpack/mobile_former_26m.pte
#   android_demo/run_benchmark.sh --export mobile_former_26m --iters 100 --threads 4
#
# Steps: (export with quant.export) -> adb push model + manifest ->
# am start BenchmarkActivity -> wait for the result JSON -> adb pull ->
# python -m quant.report RESULT.json --manifest MANIFEST.
set -euo pipefail

PKG="org.mobileformer.demo"
ACTIVITY="$PKG/.BenchmarkActivity"
DEVICE_DIR="/data/local/tmp/mobileformer"
# The app's external files dir: the app writes there without permissions, adb reads it.
DEVICE_RESULTS="/sdcard/Android/data/$PKG/files/results"
TAG="MobileFormerBench"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Shared with ios_demo/run_benchmark.sh: die, need_value/need_int, the common options with
# their defaults, and the export / manifest / report steps.
# shellcheck source=SCRIPTDIR/../scripts/phone_bench_lib.sh
source "$here/../scripts/phone_bench_lib.sh"

usage() {
  cat <<EOF
usage: android_demo/run_benchmark.sh (--model PATH.pte | --export VARIANT) [options]

Runs android_demo's headless benchmark on a connected Android device (adb) and
writes the mobileformer-latency/1 JSON (docs/latency-format.md) to the output
directory, then runs python -m quant.report on it.

model (one of):
  --model PATH.pte        an exported ExecuTorch program (XNNPACK); its manifest is
                          PATH's <stem>.manifest.json or manifest.json beside it
  --export VARIANT        first run: python -m quant.export --backend xnnpack
                          --model VARIANT --out OUT_DIR/export/VARIANT

options:
  --manifest PATH         export manifest (default: found beside the model)
  --iters N               timed runs (default 50)
  --warmup N              untimed runs first (default 10)
  --threads N             XNNPACK threads, 0 = runtime default (default 4)
  --label TEXT            report row label (default: the model file name)
  --engine E              auto | mfbench | aar (default auto: the native core if
                          the installed APK has it, else the release AAR)
  --etdump                also write and pull the ETDump (native core with the
                          event tracer only)
  --out-dir DIR           where results go (default android_demo/runs)
  --serial SERIAL         adb device serial (default: the only connected device)
  --timeout SECONDS       give up waiting for the result (default 900)
  --python PY             Python for quant.export / quant.report (default: the
                          repo's .venv/bin/python if present, else python3)
  --no-report             do not run quant.report
  -h, --help              this help

The app must be installed first (android_demo/README.md: ./gradlew installRelease).
EOF
}

engine="auto" timeout=900 serial="${ANDROID_SERIAL:-}"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --engine) need_value "$@"; engine="$2"; shift 2 ;;
    --serial) need_value "$@"; serial="$2"; shift 2 ;;
    *) common_option "$@"; shift "$consumed" ;;
  esac
done

check_common_options PATH.pte
case "$engine" in auto | mfbench | aar) ;; *) die "--engine must be auto, mfbench or aar, got '$engine'" ;; esac

find_python_make_out_dir

# --- the model -------------------------------------------------------------
if [[ -n "$variant" ]]; then
  export_model xnnpack XNNPACK "$out_dir/export/$variant" pte
fi
[[ -f "$model" ]] || die "no such model: $model"
[[ "$model" == *.pte ]] || die "not a .pte: $model (Core ML models run on iOS: ios_demo/run_benchmark.sh)"
resolve_model
find_manifest

# --- the device ------------------------------------------------------------
command -v adb >/dev/null 2>&1 ||
  die "adb not found: install Android platform-tools and put adb on PATH (see android_demo/README.md)"

if [[ -z "$serial" ]]; then
  devices="$(adb devices | awk 'NR > 1 && $2 == "device" {print $1}')"
  count="$(printf '%s' "$devices" | grep -c . || true)"
  case "$count" in
    0) die "no Android device in state 'device' (adb devices): connect one, enable USB debugging, accept the prompt" ;;
    1) serial="$devices" ;;
    *) die "several devices connected ($(tr '\n' ' ' <<<"$devices")): choose one with --serial" ;;
  esac
fi
adb_() { adb -s "$serial" "$@"; }
[[ "$(adb_ get-state 2>/dev/null || true)" == "device" ]] || die "device $serial is not ready (adb -s $serial get-state)"
adb_ shell pm path "$PKG" >/dev/null 2>&1 ||
  die "$PKG is not installed on $serial: build and install android_demo first (README: ./gradlew installRelease)"

# Quote one argument for the device shell (adb joins the arguments into a command line).
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

stamp="$(date +%Y%m%d-%H%M%S)"
device_model="$DEVICE_DIR/$name"
device_out="$DEVICE_RESULTS/$stem-$stamp.json"

echo "== pushing $name to $serial:$DEVICE_DIR"
adb_ shell mkdir -p "$DEVICE_DIR" >/dev/null
adb_ push "$model" "$device_model" >/dev/null
if [[ -n "$manifest" ]]; then
  adb_ push "$manifest" "$DEVICE_DIR/$stem.manifest.json" >/dev/null
fi
adb_ shell "rm -f $(q "$device_out") $(q "$device_out.error")" >/dev/null

# --- run -------------------------------------------------------------------
start=(am start -W -S -n "$ACTIVITY"
  --es model "$(q "$device_model")"
  --ei iters "$iters" --ei warmup "$warmup" --ei threads "$threads"
  --es out "$(q "$device_out")"
  --es engine "$engine")
if [[ -n "$label" ]]; then start+=(--es label "$(q "$label")"); fi
if [[ "$etdump" == 1 ]]; then start+=(--ez etdump true); fi

echo "== running $name on $serial: $iters runs after $warmup warm-up, threads $threads, engine $engine"
adb_ logcat -c >/dev/null 2>&1 || true
adb_ shell "${start[*]}" >/dev/null

# The app's error line in the log, for when it could not write <out>.error either
# (logcat was cleared before the start, so only this run's lines are there).
logged_error() { adb_ logcat -d -s "$TAG:E" 2>/dev/null | tr -d '\r' | sed -n 's/.*MFBENCH_ERROR //p' | head -n 1; }

deadline=$((SECONDS + timeout))
while :; do
  state="$(adb_ shell "if [ -f $(q "$device_out") ]; then echo done; elif [ -f $(q "$device_out.error") ]; then echo error; fi" | tr -d '\r')"
  [[ "$state" == "done" ]] && break
  if [[ "$state" == "error" ]]; then
    message="$(adb_ shell cat "$(q "$device_out.error")" | tr -d '\r')"
    die "the benchmark failed on the device: $message"
  fi
  message="$(logged_error)"
  [[ -z "$message" ]] || die "the benchmark failed on the device: $message"
  [[ $SECONDS -lt $deadline ]] || die "no result after ${timeout}s (adb -s $serial logcat -s $TAG)"
  sleep 2
done

# --- read back -------------------------------------------------------------
result="$out_dir/$stem-$stamp.json"
adb_ pull "$device_out" "$result" >/dev/null
if [[ "$etdump" == 1 ]]; then
  adb_ pull "${device_out%.json}.etdp" "${result%.json}.etdp" >/dev/null 2>&1 ||
    echo "run_benchmark.sh: no ETDump on the device (the installed APK has no event tracer?)" >&2
fi
adb_ logcat -d -s "$TAG:I" | grep MFBENCH_RESULT | tail -n 1 || true
echo "== result: $result"

if [[ "$report" == 1 ]]; then report_on "$result" "python -m quant.report failed"; fi
