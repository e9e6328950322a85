#!/bin/sh
# benchmarks/gpu_check.sh [OUT_DIR]: everything a GPU machine should check,
# in one go, within 8 minutes: build with CUDA, the GPU tests, seed3d
# training samples/s at global batch 32, 64 and 128 (fp16 and fp32), the
# loader's decode rate on the same machine, `tnrec train` with the input
# pipeline on and off, and a short report.
#
# OUT_DIR defaults to $OUT, else ./gpu-check. Written there: report.md (the
# summary), build.log, tests.log, bench_gpu.jsonl, bench_loader.jsonl,
# pipe_on.jsonl and pipe_off.jsonl (metrics.jsonl of the pipeline runs),
# nvidia-smi.txt. Each stage has its own time limit so a hang cannot eat
# the machine's time; the report says which stages failed. Exit status: 0
# when the build and the GPU tests passed, else 1.
set -u
cd "$(dirname "$0")/.."
OUTDIR=${1:-${OUT:-gpu-check}}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
REPORT=$OUTDIR/report.md
BUILD=${TNREC_GPU_BUILD:-build-gpu}
JOBS=$(nproc)
T0=$(date +%s)
status=0
elapsed() { echo $(( $(date +%s) - T0 )); }
# Each stage's time limit: its own cap, cut so the whole check ends by
# DEADLINE seconds (under 8 minutes with the report written).
DEADLINE=${TNREC_GPU_CHECK_SECONDS:-460}
limit() { r=$(( DEADLINE - $(elapsed) )); [ "$r" -lt 1 ] && r=1; [ "$r" -lt "$1" ] && echo "$r" || echo "$1"; }
say() { echo "$*" | tee -a "$REPORT"; }

: > "$REPORT"
say "# tnrec GPU check, $(date -u +%FT%TZ)"
say ""
say "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
say "- host: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
if command -v nvidia-smi > /dev/null 2>&1; then
  nvidia-smi > "$OUTDIR/nvidia-smi.txt" 2>&1
  say "- GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"
else
  say "- GPU: nvidia-smi not found"
fi
say "- nvcc: $(nvcc --version 2>/dev/null | tail -1)"

# 1. Build (Hopper only, to save time; Release).
say ""
say "## Build"
if timeout "$(limit 90)" cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTNREC_WITH_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90 -DBUILD_TESTING=ON > "$OUTDIR/build.log" 2>&1 &&
   timeout "$(limit 180)" cmake --build "$BUILD" -j"$JOBS" --target tnrec_cli test_gpu_net tnrec_train_fixture \
      bench_gpu_train bench_train_loader >> "$OUTDIR/build.log" 2>&1; then
  say "built in $(elapsed) s"
else
  say "BUILD FAILED (see build.log):"
  tail -20 "$OUTDIR/build.log" | sed 's/^/    /' | tee -a "$REPORT"
  exit 1
fi

# 2. GPU tests (device vs CPU path, CLI on the GPU).
say ""
say "## GPU tests"
if timeout "$(limit 180)" ctest --test-dir "$BUILD" -R 'gpu' --output-on-failure -V > "$OUTDIR/tests.log" 2>&1; then
  if grep -E -q '(test_gpu_net|train_gpu_cli) .*\*\*\*Skipped' "$OUTDIR/tests.log"; then
    say "SKIPPED: no usable GPU (see tests.log); nothing on the device was checked"
    status=1
  else
    say "passed ($(elapsed) s so far)"
  fi
else
  say "FAILED (see tests.log)"
  status=1
fi
grep -E '^[0-9]+: (  |test_gpu_net|train_gpu_cli)' "$OUTDIR/tests.log" |
  sed 's/^[0-9]*: /    /' | head -60 >> "$REPORT"
grep -E 'tests passed|Skipped|Failed' "$OUTDIR/tests.log" | sed 's/^/    /' >> "$REPORT"

# 3. Training benchmark: seed3d, global batch 32/64/128, one GPU.
say ""
say "## Training samples/s (seed3d, 4x120x240x12, forward+backward+Adam, one GPU)"
: > "$OUTDIR/bench_gpu.jsonl"
for prec in fp16 fp32; do
  timeout "$(limit 60)" "$BUILD/benchmarks/bench_gpu_train" --model seed3d --batch 32,64,128 --steps 15 --warmup 3 \
      --precision "$prec" >> "$OUTDIR/bench_gpu.jsonl" 2>> "$OUTDIR/bench_gpu.err" ||
    say "bench_gpu_train $prec failed: $(tail -1 "$OUTDIR/bench_gpu.err")"
done
say ""
say "| precision | batch | step s | train samples/s | infer samples/s | 171,666-sample epoch s |"
say "|---|---|---|---|---|---|"
/usr/bin/python3 - "$OUTDIR/bench_gpu.jsonl" <<'EOF' | tee -a "$REPORT"
import json, sys
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    print("| %s | %d | %.4f | %.0f | %.0f | %.0f |" % (r["precision"], r["batch"], r["train_step_s"],
          r["train_samples_per_s"], r["infer_samples_per_s"], r["epoch_171666_s"]))
EOF
head -1 "$OUTDIR/bench_gpu.jsonl" | sed 's/.*"device": "\([^"]*\)".*/device: \1/' | tee -a "$REPORT"

# 4. Loader decode rate on the same machine (full-size fixture samples).
say ""
say "## Loader decode rate (shards -> NDHWC float32 batches of 128, same machine)"
DATA=$OUTDIR/loader_data
rm -rf "$DATA"
if timeout "$(limit 45)" "$BUILD/tests/train/tnrec_train_fixture" "$DATA" 384 1 4 120 240 > /dev/null 2>&1; then
  T=$JOBS
  timeout "$(limit 45)" "$BUILD/benchmarks/bench_train_loader" "$DATA" --batch 128 --epochs 3 \
      --threads "$(( T / 4 > 0 ? T / 4 : 1 )),$(( T / 2 > 0 ? T / 2 : 1 )),$T" > "$OUTDIR/bench_loader.jsonl" 2>&1 ||
    say "bench_train_loader failed"
  sed 's/^/    /' "$OUTDIR/bench_loader.jsonl" | tee -a "$REPORT"
else
  say "could not write the loader fixture"
fi

# 5. Input pipeline: the real trainer on the same fixture, the copy of
# batch k+1 overlapping step k (on) and not (TNREC_GPU_STAGE=0), side by
# side; the second epoch is the steady one.
say ""
say "## Input pipeline (tnrec train, seed3d fp16, batch 64, 384 full-size samples, epoch 2 of 2)"
if [ -d "$DATA" ]; then
  say ""
  say "| pipeline | samples/s | data wait s | steps copied during the step before |"
  say "|---|---|---|---|"
  for mode in on off; do
    stage=1
    [ "$mode" = off ] && stage=0
    rm -rf "$OUTDIR/pipe_$mode"
    if TNREC_GPU_STAGE=$stage timeout "$(limit 60)" "$BUILD/bin/tnrec" train "$DATA" -o "$OUTDIR/pipe_$mode" \
         --model seed3d --batch 64 --epochs 2 --lr 5e-4 --clipvalue 1 --class-weights none --device cuda \
         --precision fp16 --threads "$JOBS" > "$OUTDIR/pipe_$mode.log" 2>&1; then
      cp "$OUTDIR/pipe_$mode/metrics.jsonl" "$OUTDIR/pipe_$mode.jsonl"
      /usr/bin/python3 - "$OUTDIR/pipe_$mode.jsonl" "$mode" <<'EOF' | tee -a "$REPORT"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]
print("| %s | %.0f | %.2f | %d |" % (sys.argv[2], r["samples_per_s"], r["data_wait_s"], r.get("gpu_staged_steps", -1)))
EOF
    else
      say "| $mode | failed: $(tail -1 "$OUTDIR/pipe_$mode.log") | | |"
    fi
    rm -rf "$OUTDIR/pipe_$mode"
  done
fi
rm -rf "$DATA"

say ""
say "total $(elapsed) s; exit status $status"
exit $status
