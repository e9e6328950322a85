#!/bin/sh
# benchmarks/bench_build.sh: `tnrec build` throughput and size, side by side
# with the seed's Python preprocessing and a plain NetCDF read, on the same
# synthetic TorNet samples, in one run.
#
# usage: benchmarks/bench_build.sh [TNREC_BIN] [SAMPLES] [RUNS]
#   TNREC_BIN  default build/bin/tnrec;  SAMPLES default 64;  RUNS default 5
# The samples come from `tnrec synth` (the real file layout, storm-like
# fields). Each run times, one after the other: the seed pipeline, the
# NetCDF read alone, tnrec build -j1 and -j2 (float16, the default) and
# tnrec build -j1 --dtype uint8 (the output type of the seed's pipeline).
# Reported per pipeline: wall samples/s and CPU samples/s (samples per
# CPU-second = per core, which stays meaningful when other jobs share the
# machine), medians over the runs,
# and bytes per sample of each --dtype against the .nc input. Warm page cache.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tnrec=${1:-build/bin/tnrec}
n=${2:-64}
runs=${3:-5}
py=/usr/bin/python3
work=$(mktemp -d "${TMPDIR:-/tmp}/bench_build.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$tnrec" synth "$work/root" --samples "$n" --seed 7 > /dev/null
find "$work/root" -name '*.nc' | sort > "$work/list.txt"
xargs cat < "$work/list.txt" > /dev/null   # warm the page cache
in_bytes=$(xargs du -cb < "$work/list.txt" | tail -1 | cut -f1)

# tnrec_run OUT ARGS...: prints "wall cpu" seconds of one build
tnrec_run() {
    out=$1; shift
    rm -rf "$out"
    /usr/bin/time -f "%e %U %S" -o "$work/time.txt" "$tnrec" build "$work/root" -o "$out" -q "$@"
    awk '{ printf "%s %.3f\n", $1, $2 + $3 }' "$work/time.txt"
}

: > "$work/results.txt"
for r in $(seq 1 "$runs"); do
    seed=$(xargs "$py" "$here/bench_build_seed.py" seed "$work/seed.bin" < "$work/list.txt" | cut -d' ' -f3,4)
    read=$(xargs "$py" "$here/bench_build_seed.py" read /dev/null < "$work/list.txt" | cut -d' ' -f3,4)
    j1=$(tnrec_run "$work/o1" -j1)
    j2=$(tnrec_run "$work/o2" -j2)
    u8=$(tnrec_run "$work/o4" -j1 --dtype uint8)
    echo "run $r (wall cpu seconds): seed $seed | read $read | tnrec -j1 $j1 | tnrec -j2 $j2 | tnrec -j1 uint8 $u8" >&2
    echo "$seed $read $j1 $j2 $u8" >> "$work/results.txt"
done
for f in "$work"/o1/*; do cmp "$f" "$work/o2/$(basename "$f")"; done  # -j1 and -j2 byte-identical

# share of worker time spent inside NetCDF/HDF5 (serialised by one lock)
rm -rf "$work/o3"
"$tnrec" build "$work/root" -o "$work/o3" -j1 2>&1 | sed -n 's/.*of which \([0-9]*\)% inside.*/\1/p' > "$work/lock.txt"

: > "$work/sizes.txt"
for dt in float32 float16 uint8; do
    tnrec_run "$work/d_$dt" --dtype "$dt" -j2 > /dev/null
    echo "$dt $(du -cb "$work"/d_"$dt"/*.tnr | tail -1 | cut -f1)" >> "$work/sizes.txt"
done

"$py" - "$work/results.txt" "$work/sizes.txt" "$n" "$in_bytes" "$runs" "$(cat "$work/lock.txt")" <<'EOF'
import statistics, sys
res = [list(map(float, l.split())) for l in open(sys.argv[1])]
sizes = dict((l.split()[0], int(l.split()[1])) for l in open(sys.argv[2]))
n, nc, runs = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
cols = list(zip(*res))
wall = [n / statistics.median(cols[i]) for i in (0, 2, 4, 6, 8)]
cpu = [n / statistics.median(cols[i]) for i in (1, 3, 5, 7, 9)]
names = ["seed Python preprocessing (xarray + numpy + write uint8), 1 process",
         "NetCDF read of all variables only (netCDF4-python), 1 process",
         "tnrec build -j1 (float16)", "tnrec build -j2 (float16)",
         "tnrec build -j1 --dtype uint8 (the seed's output type)"]
print("%d samples, median of %d runs" % (n, runs))
print()
print("| pipeline | wall samples/s | vs seed | CPU samples/s (per core) | vs seed |")
print("|---|---:|---:|---:|---:|")
for k in range(5):
    print("| %s | %.1f | %.2fx | %.1f | %.2fx |" % (names[k], wall[k], wall[k] / wall[0], cpu[k], cpu[k] / cpu[0]))
print()
print("tnrec -j2 / -j1 wall: %.2fx (CPU per sample -j2 / -j1: %.2fx); "
      "tnrec -j1 / NetCDF read alone, per core: %.2fx" % (wall[3] / wall[2], cpu[2] / cpu[3], cpu[2] / cpu[1]))
lock = float(sys.argv[6]) / 100 if len(sys.argv) > 6 and sys.argv[6] else None
if lock is not None:
    print()
    print("serialised share of worker time (inside NetCDF/HDF5): %.0f%%; Amdahl bound for 2 threads: %.2fx"
          % (lock * 100, 1 / (lock + (1 - lock) / 2)))
print()
print("| --dtype | bytes/sample | vs .nc input (%.0f bytes/sample) |" % (nc / n))
print("|---|---:|---:|")
for dt in ("float32", "float16", "uint8"):
    print("| %s | %.0f | %.3fx |" % (dt, sizes[dt] / n, sizes[dt] / nc))
EOF
