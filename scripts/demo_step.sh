#!/bin/sh
# scripts/demo_step.sh LOGDIR NAME COMMAND...: one step of `make demo`. Runs COMMAND with its
# output in LOGDIR/NAME.log (steps run side by side, so their output is not interleaved) and
# prints one line: the step, its wall time, ok or FAILED with the log's last lines.
logdir=$1 name=$2
shift 2
mkdir -p "$logdir"
start=$(date +%s)
if "$@" > "$logdir/$name.log" 2>&1; then
    printf '%-16s %5d s  ok      (%s)\n' "$name" $(( $(date +%s) - start )) "$logdir/$name.log"
else
    rc=$?
    printf '%-16s %5d s  FAILED  (%s)\n' "$name" $(( $(date +%s) - start )) "$logdir/$name.log"
    tail -n 20 "$logdir/$name.log" >&2
    exit $rc
fi
