#!/bin/sh
# benchmarks/bench_build.sh: `tnrec build` throughput and size, side by side
# with the seed's Python preprocessing and a plain NetCDF read, on the same
# synthetic TorNet samples, in one run.
#
# usage: benchmarks/bench_build.sh [TNREC_BIN] [SAMPLES] [RUNS]
#   TNREC_BIN  default build/bin/tnrec;  SAMPLES default 64;  RUNS default 5
# Prints one line per run and a Markdown summary (medians, ratios, bytes per
# sample for each --dtype against the .nc input). The files are written by
# tests/ingest/test_build_samples.py (netCDF4/xarray, one shuffle+deflate
# chunk per variable, like TorNet). All timings use a warm page cache.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tnrec=${1:-build/bin/tnrec}
n=${2:-64}
runs=${3:-5}
py=/usr/bin/python3
work=$(mktemp -d "${TMPDIR:-/tmp}/bench_build.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$py" "$here/../tests/ingest/test_build_samples.py" "$work/root" --count "$n" --seed 42 --years 2013
find "$work/root" -name '*.nc' | sort > "$work/list.txt"
cat "$work/list.txt" | xargs cat > /dev/null   # warm the page cache
in_bytes=$(cat "$work/list.txt" | xargs du -cb | tail -1 | cut -f1)

now() { "$py" -c 'import time; print("%.6f" % time.time())'; }
rate_of() { # label, command...: prints samples/s of one run
    label=$1; shift
    t0=$(now); "$@" > /dev/null 2>&1; t1=$(now)
    "$py" -c "print('%.3f' % ($n / ($t1 - $t0)))"
}

: > "$work/results.txt"
for r in $(seq 1 "$runs"); do
    s=$("$py" "$here/bench_build_seed.py" seed "$work/seed.bin" $(cat "$work/list.txt") | cut -d' ' -f4)
    rd=$("$py" "$here/bench_build_seed.py" read /dev/null $(cat "$work/list.txt") | cut -d' ' -f4)
    rm -rf "$work/o1" "$work/o2"
    t1=$(rate_of j1 "$tnrec" build "$work/root" -o "$work/o1" -j1 -q)
    t2=$(rate_of j2 "$tnrec" build "$work/root" -o "$work/o2" -j2 -q)
    echo "run $r: seed $s  read $rd  tnrec-j1 $t1  tnrec-j2 $t2 samples/s" >&2
    echo "$s $rd $t1 $t2" >> "$work/results.txt"
done
cmp "$work/o1/manifest.json" "$work/o2/manifest.json"

for dt in float32 float16 uint8; do
    rm -rf "$work/d_$dt"
    "$tnrec" build "$work/root" -o "$work/d_$dt" --dtype "$dt" -j2 -q
    echo "$dt $(du -cb "$work"/d_"$dt"/*.tnr | tail -1 | cut -f1)" >> "$work/sizes.txt"
done

"$py" - "$work/results.txt" "$work/sizes.txt" "$n" "$in_bytes" "$runs" <<'EOF'
import statistics, sys
res = [list(map(float, l.split())) for l in open(sys.argv[1])]
sizes = dict((l.split()[0], int(l.split()[1])) for l in open(sys.argv[2]))
n, nc, runs = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
med = [statistics.median(c) for c in zip(*res)]
seed, read, j1, j2 = med
print("| pipeline (%d samples, median of %d runs) | samples/s | vs seed |" % (n, runs))
print("|---|---:|---:|")
print("| seed Python preprocessing (xarray + numpy + write), 1 process | %.1f | 1.00x |" % seed)
print("| NetCDF read of all variables only (netCDF4-python), 1 process | %.1f | %.2fx |" % (read, read / seed))
print("| tnrec build -j1 (float16) | %.1f | %.2fx |" % (j1, j1 / seed))
print("| tnrec build -j2 (float16) | %.1f | %.2fx |" % (j2, j2 / seed))
print()
print("tnrec -j2 / -j1: %.2fx; tnrec -j1 / NetCDF read alone: %.2fx" % (j2 / j1, j1 / read))
print()
print("| --dtype | bytes/sample | vs .nc input (%.0f bytes/sample) |" % (nc / n))
print("|---|---:|---:|")
for dt in ("float32", "float16", "uint8"):
    print("| %s | %.0f | %.2fx |" % (dt, sizes[dt] / n, sizes[dt] / nc))
EOF
