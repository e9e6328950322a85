#!/usr/bin/env bash
# benchmarks/bench_loader_tf.sh BUILD NC_DIR SCRATCH [ROUNDS] [EPOCHS] [THREADS]
#   THREADS: comma list of thread counts, "all" = nproc (default 1,2,all)
# The tnrec loader (bench_train_loader) beside tf.data on the seed's uint8
# TFRecords, built from the same .nc samples, in one run.
#   TF_PYTHON   a python with tensorflow (default python3)
#   SEED_PYTHON a python with numpy, xarray, netCDF4 (default /usr/bin/python3)
#   BASE_BUILD  another build's directory: its bench_train_loader runs too
#               ("base u8", "base f16"), for before / after on the same load
# Builds SCRATCH/f16 and SCRATCH/u8 with `tnrec build`, SCRATCH/seed.tfrecord
# with bench_loader_tf.py (once; delete SCRATCH to rebuild), then runs
# ROUNDS rounds, each: tnrec uint8, tnrec float16 and tf.data at every
# thread count, one after the other, so the three see the same load.
# Batch 32, 4 x 120 x 240 x 12 float32, page cache warm (a warm-up epoch
# each). Prints every run's JSON, then the medians over rounds.
#   ZSTD_LEVEL  --zstd-level of both tnrec builds (default: tnrec's, 2 for
#               float16 and 1 for uint8; e.g. -5 for zstd's fast levels)
set -eu
build=$1 nc=$2 dir=$3
rounds=${4:-3} epochs=${5:-2}
# THREADS: a comma list; "all" is this machine's core count (nproc). The
# default, 1,2,all, gives each count once (1,2 on a 2-core machine).
threads=$(echo "${6:-1,2,all}" | tr ',' '\n' | sed "s/^all$/$(nproc)/" | sort -nu | paste -sd, -)
tfpy=${TF_PYTHON:-python3}
seedpy=${SEED_PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
level=()
[ -n "${ZSTD_LEVEL:-}" ] && level=(--zstd-level "$ZSTD_LEVEL")
[ -d "$dir/f16" ] || "$build/bin/tnrec" build "$nc" -o "$dir/f16" --dtype float16 -q "${level[@]}"
[ -d "$dir/u8" ] || "$build/bin/tnrec" build "$nc" -o "$dir/u8" --dtype uint8 -q "${level[@]}"
if [ ! -f "$dir/seed.tfrecord" ]; then
    find "$nc" -name '*.nc' | sort > "$dir/nc.txt"
    xargs "$seedpy" "$here/bench_loader_tf.py" seed "$dir/seed.u8" < "$dir/nc.txt"
    "$tfpy" "$here/bench_loader_tf.py" tfrecord "$dir/seed.u8" "$dir/seed.tfrecord" 2>/dev/null
    rm -f "$dir/seed.u8"
fi
n=$(python3 -c "import json,sys; print(sum(s['records'] for s in json.load(open(sys.argv[1]))['shards']))" "$dir/u8/manifest.json" 2>/dev/null || echo 0)
bps() { du -sb "$1" | awk -v n="$n" '{printf "%d", $1 / n}'; }
echo "samples $n; bytes per sample: tnrec uint8 $(bps "$dir/u8"), tnrec float16 $(bps "$dir/f16"), tf.data uint8 TFRecord $(bps "$dir/seed.tfrecord")"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
out=$dir/runs.jsonl
: > "$out"
for r in $(seq "$rounds"); do
    for t in ${threads//,/ }; do
        for k in u8 f16; do
            line=$("$build/benchmarks/bench_train_loader" "$dir/$k" --batch 32 --epochs "$epochs" --threads "$t")
            echo "{\"round\": $r, \"reader\": \"tnrec $k\", \"load\": $(cut -d' ' -f1 /proc/loadavg), \"run\": $line}" | tee -a "$out"
        done
        if [ -n "${BASE_BUILD:-}" ]; then
            for k in u8 f16; do
                line=$("$BASE_BUILD/benchmarks/bench_train_loader" "$dir/$k" --batch 32 --epochs "$epochs" --threads "$t")
                echo "{\"round\": $r, \"reader\": \"base $k\", \"load\": $(cut -d' ' -f1 /proc/loadavg), \"run\": $line}" | tee -a "$out"
            done
        fi
        line=$("$tfpy" "$here/bench_loader_tf.py" read "$dir/seed.tfrecord" "$t" 32 "$epochs" 2>/dev/null | tail -n 1)
        echo "{\"round\": $r, \"reader\": \"tf.data u8\", \"load\": $(cut -d' ' -f1 /proc/loadavg), \"run\": $line}" | tee -a "$out"
    done
done
python3 - "$out" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
keys = sorted({(r["reader"], r["run"]["threads"]) for r in runs}, key=lambda k: (k[1], k[0]))
med = {}
print("| reader | threads | samples/s (wall) | samples per CPU-second | rounds |")
print("|---|---|---|---|---|")
for k in keys:
    rs = [r["run"] for r in runs if (r["reader"], r["run"]["threads"]) == k]
    w = statistics.median(x["samples_per_s"] for x in rs)
    c = statistics.median(x["samples_per_cpu_s"] for x in rs)
    med[k] = (w, c)
    print("| %s | %d | %.1f | %.1f | %d |" % (k[0], k[1], w, c, len(rs)))
for t in sorted({k[1] for k in keys}):
    tf = med.get(("tf.data u8", t))
    for k in ("tnrec u8", "tnrec f16", "base u8", "base f16"):
        if tf and (k, t) in med:
            w, c = med[(k, t)]
            print("%s / tf.data at %d thread(s): wall %.2fx, per CPU-second %.2fx" % (k, t, w / tf[0], c / tf[1]))
    # issue 18's goals: per CPU-second uint8 >= 1.0x and float16 >= 0.6x
    # tf.data's; wall samples/s >= tf.data's for both
    for k, goal in (("u8", 1.0), ("f16", 0.6)):
        if tf and ("tnrec " + k, t) in med:
            w, c = med[("tnrec " + k, t)]
            print("goal at %d thread(s): tnrec %s per CPU-second %.2fx >= %.1fx %s; wall %.2fx >= 1.0x %s" % (
                t, k, c / tf[1], goal, "met" if c / tf[1] >= goal else "NOT met",
                w / tf[0], "met" if w / tf[0] >= 1.0 else "NOT met"))
    for k in ("u8", "f16"):
        a, b = med.get(("tnrec " + k, t)), med.get(("base " + k, t))
        if a and b:
            print("tnrec %s after / before at %d thread(s): wall %.2fx, per CPU-second %.2fx" % (k, t, a[0] / b[0], a[1] / b[1]))
PY
