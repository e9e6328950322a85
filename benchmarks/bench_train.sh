#!/bin/sh
# benchmarks/bench_train.sh: tnrec's CPU trainer against PyTorch on CPU, the
# seed3d model, same batch, same threads, run alternately in one go: each
# round tnrec (float32 training and inference), PyTorch (float32), then
# tnrec in bfloat16, training and inference (bf16 where the CPU has
# avx512_bf16; the "precision" field says what ran).
# usage: bench_train.sh BUILD_DIR [BATCH] [STEPS] [ROUNDS] [THREADS]
set -eu
BUILD=$1 BATCH=${2:-8} STEPS=${3:-3} ROUNDS=${4:-2} THREADS=${5:-2}
HERE=$(dirname "$0")
echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
r=0
while [ "$r" -lt "$ROUNDS" ]; do
  OMP_NUM_THREADS=$THREADS "$BUILD/benchmarks/bench_train" --model seed3d --batch "$BATCH" --steps "$STEPS"
  OMP_NUM_THREADS=$THREADS /usr/bin/python3 "$HERE/bench_train_torch.py" --batch "$BATCH" --steps "$STEPS" --threads "$THREADS"
  OMP_NUM_THREADS=$THREADS "$BUILD/benchmarks/bench_train" --model seed3d --batch "$BATCH" --steps "$STEPS" --precision bf16
  echo "# load $(cut -d' ' -f1-3 /proc/loadavg)"
  r=$((r + 1))
done
