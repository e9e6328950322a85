#!/usr/bin/env bash
# benchmarks/bench_scale.sh [BUILD_DIR] [SHARDS...]: a dataset of TorNet's
# 203,133 tiny records (benchmarks/bench_scale.c) per shard count, then the
# wall time and peak memory (/usr/bin/time -v) of 'tnrec verify', 'tnrec
# dump' and 'tnrec dump --records' on it, with the default descriptor limit
# and under 'ulimit -n 256'. Results: docs/benchmarks.md, "Scale".
set -eu
build=${1:-build}
shift || true
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(200 2000 20000)
tmp=$(mktemp -d /tmp/bench_scale.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

measure() { # LABEL COMMAND...: one table row
    local label=$1
    shift
    /usr/bin/time -v "$@" >"$tmp/out" 2>"$tmp/time" || { tail -3 "$tmp/time" >&2; exit 1; }
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$tmp/time")
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$tmp/time")
    printf '| %s | %s s | %s MiB |\n' "$label" "$wall" "$rss"
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for s in "${counts[@]}"; do
    d="$tmp/ds$s"
    "$build/benchmarks/bench_scale" "$d" 203133 "$s"
    n=$(find "$d" -name '*.tnr' | wc -l)
    echo "| command ($n shards, manifest $(stat -c %s "$d/manifest.json") bytes) | wall | peak RSS |"
    echo "|---|---:|---:|"
    measure "verify" "$build/bin/tnrec" verify "$d"
    measure "verify -j 2" "$build/bin/tnrec" verify -j 2 "$d"
    measure "dump" "$build/bin/tnrec" dump "$d"
    measure "dump --records" "$build/bin/tnrec" dump --records "$d"
    measure "verify, ulimit -n 256" bash -c 'ulimit -n 256 && exec "$0" verify "$1"' "$build/bin/tnrec" "$d"
    rm -rf "$d"
done
