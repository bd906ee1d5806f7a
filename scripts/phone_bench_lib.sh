# shellcheck shell=bash disable=SC2034  # the variables set here are read by the scripts
# What android_demo/run_benchmark.sh and ios_demo/run_benchmark.sh share: the options both
# take, finding Python and the model's manifest, quant.export and quant.report. Sourced,
# not run. The functions read and set the scripts' variables (model, manifest, python, ...)
# so that both keep one set of names; they call the script's usage(). Needs $here, the
# calling script's folder. Bash 3.2 (macOS): no associative arrays, ${v,,} or mapfile.

# From this file's place, so that any cwd works.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() {
  echo "run_benchmark.sh: $*" >&2
  exit 1
}

need_value() {
  [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"
}
need_int() {
  [[ "$2" =~ ^[0-9]+$ ]] || die "$1 needs a whole number, got '$2'"
}

# Defaults of the shared options (the scripts set --timeout's and their own).
model="" variant="" manifest="" label="" etdump=0 report=1
iters=50 warmup=10 threads=4
out_dir="${here:?set by the sourcing script}/runs"
python="${PYTHON:-}"

# One shared option at the front of "$@"; sets $consumed for the caller's shift (a function
# cannot shift its caller's arguments). Anything else is an unknown option.
common_option() {
  consumed=2
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --model) need_value "$@"; model="$2" ;;
    --export) need_value "$@"; variant="$2" ;;
    --manifest) need_value "$@"; manifest="$2" ;;
    --iters) need_value "$@"; need_int "$1" "$2"; iters="$2" ;;
    --warmup) need_value "$@"; need_int "$1" "$2"; warmup="$2" ;;
    --threads) need_value "$@"; need_int "$1" "$2"; threads="$2" ;;
    --label) need_value "$@"; label="$2" ;;
    --etdump) etdump=1; consumed=1 ;;
    --out-dir) need_value "$@"; out_dir="$2" ;;
    --timeout) need_value "$@"; need_int "$1" "$2"; timeout="$2" ;;
    --python) need_value "$@"; python="$2" ;;
    --no-report) report=0; consumed=1 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
}

# check_common_options MODEL_ARG: MODEL_ARG is how the usage error names --model's value.
check_common_options() {
  [[ -n "$model" || -n "$variant" ]] || die "give --model $1 or --export VARIANT (see --help)"
  [[ -z "$model" || -z "$variant" ]] || die "give either --model or --export, not both"
  [[ "$iters" -ge 1 ]] || die "--iters must be at least 1"
}

# After all option checks, so that a usage error creates no folder.
find_python_make_out_dir() {
  if [[ -z "$python" ]]; then
    if [[ -x "$repo/.venv/bin/python" ]]; then python="$repo/.venv/bin/python"; else python="python3"; fi
  fi
  mkdir -p "$out_dir"
  out_dir="$(cd "$out_dir" && pwd)"
}

# export_model BACKEND SHOWN DIR EXT...: python -m quant.export --backend BACKEND into DIR, then
# $model = the newest *.EXT there or one folder down. SHOWN names the backend in the progress line.
export_model() {
  local backend="$1" shown="$2" dir="$3" kinds ext f
  shift 3
  mkdir -p "$dir"
  echo "== exporting $variant ($shown) to $dir"
  (cd "$repo" && "$python" -m quant.export --backend "$backend" --model "$variant" --out "$dir") ||
    die "python -m quant.export failed"
  # Top level first: on equal times the first one found wins.
  for ext in "$@"; do for f in "$dir"/*."$ext"; do keep_newer "$f"; done; done
  for ext in "$@"; do for f in "$dir"/*/*."$ext"; do keep_newer "$f"; done; done
  kinds="$(printf '.%s or ' "$@")"
  [[ -n "$model" ]] || die "quant.export wrote no ${kinds% or } under $dir"
}
keep_newer() {
  [[ -e "$1" ]] || return 0  # an unmatched glob stays as the pattern
  if [[ -z "$model" || "$1" -nt "$model" ]]; then model="$1"; fi
}

# $model made absolute; $name, its file name, and $stem, that without the extension.
resolve_model() {
  model="$(cd "$(dirname "$model")" && pwd)/$(basename "$model")"
  name="$(basename "$model")"
  stem="${name%.*}"
}

# Without --manifest: <stem>.manifest.json or manifest.json beside the model, if any.
find_manifest() {
  local candidate
  if [[ -z "$manifest" ]]; then
    for candidate in "$(dirname "$model")/$stem.manifest.json" "$(dirname "$model")/manifest.json"; do
      if [[ -f "$candidate" ]]; then manifest="$candidate"; break; fi
    done
  elif [[ ! -f "$manifest" ]]; then
    die "no such manifest: $manifest"
  fi
}

# report_on RESULT MESSAGE: python -m quant.report on RESULT (with the manifest); MESSAGE if it fails.
report_on() {
  local -a args
  args=("$1")
  if [[ -n "$manifest" ]]; then args+=(--manifest "$manifest"); fi
  (cd "$repo" && "$python" -m quant.report "${args[@]}") || die "$2"
}
