#!/usr/bin/env bash
# Configure and build mfbench (Release) against the ExecuTorch SDK of a Python
# environment. Quiet, and idempotent: an existing build dir is reused.
#
#   native/build.sh [BUILD_DIR [CMAKE_ARGS...]]   (default: <repo>/build/native)
#   PYTHON=.venv/bin/python native/build.sh
#   native/build.sh build/native-notrace -DMFBENCH_EVENT_TRACER=OFF   (latency only, as the apps' release builds)
#
# Prints the path of the mfbench executable on success.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build_dir="${1:-$here/../build/native}"
shift $(( $# > 0 ? 1 : 0 ))
python="${PYTHON:-python3}"
jobs="$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)"

mkdir -p "$build_dir"
build_dir="$(cd "$build_dir" && pwd)"
log="$build_dir/build.log"

# Show the log only when something failed.
if ! { cmake -S "$here/mfbench" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
         -DPYTHON="$(command -v "$python" || echo "$python")" "$@" &&
       cmake --build "$build_dir" --parallel "$jobs"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "native/build.sh: build failed (log: $log)" >&2
  exit 1
fi
echo "$build_dir/mfbench"
