#!/bin/sh
# benchmarks/bench_startup.sh BEFORE AFTER [WORKDIR]: start-up cost of two
# `tnrec` binaries side by side, in one run: `tnrec --version` (20 runs)
# and a 64-sample `tnrec build -j1` (5 runs, the output removed before
# each), CPU time (task-clock) and page faults per run as perf stat
# reports them (mean and spread). Made to compare a build that loads the
# CUDA libraries at start with one that loads them on the first GPU call
# (docs/gpu.md); any two binaries work. Needs perf.
# usage: benchmarks/bench_startup.sh /tmp/old/build/bin/tnrec build/bin/tnrec
set -eu
BEFORE=$1 AFTER=$2 WORK=${3:-/tmp/tnrec-bench-startup}
command -v perf > /dev/null || { echo "perf not found (Debian: linux-perf)"; exit 1; }
rm -rf "$WORK" && mkdir -p "$WORK"
"$AFTER" synth "$WORK/x" --samples 64 --seed 7 > /dev/null

# stat NAME REPEAT PRE CMD...: one line "task-clock ms (+-%)  page-faults".
stat() {
    name=$1 repeat=$2 pre=$3; shift 3
    perf stat -x, -r "$repeat" --pre "$pre" -e task-clock,page-faults -o "$WORK/$name.csv" "$@" > /dev/null 2>&1
    awk -F, -v name="$name" '
        $3 == "task-clock" { ms = $1; msv = $4 }
        $3 == "page-faults" { pf = $1; pfv = $4 }
        END { printf "%-22s %10.1f ms (+-%s) %10d page faults (+-%s)\n", name, ms, msv, pf, pfv }' "$WORK/$name.csv"
}

echo "tnrec --version, 20 runs each (mean):"
stat version-before 20 true "$BEFORE" --version
stat version-after 20 true "$AFTER" --version
echo "tnrec build 64 samples -j1, 5 runs each (mean):"
stat build-before 5 "rm -rf $WORK/o" "$BEFORE" build "$WORK/x" -o "$WORK/o" -q -j1
stat build-after 5 "rm -rf $WORK/o" "$AFTER" build "$WORK/x" -o "$WORK/o" -q -j1
rm -rf "$WORK"
