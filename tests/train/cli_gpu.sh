#!/bin/sh
# tests/train/cli_gpu.sh: `tnrec train|eval|predict --device cuda` and the
# multi-process environment checks, through the real binary.
# Without a GPU: each answers with exit 1 and an error with a hint, and no
# run directory is left behind; the NCCL file rendezvous refuses a
# half-given environment; eval --precision fp16 without --device cuda is
# refused. With a GPU: a short run on the fixture, eval and predict on the
# GPU in fp32, fp16 and bf16, the GPU run resumed on the CPU and back in
# fp16, whose checkpoint then carries a loss scale.
# usage: cli_gpu.sh TNREC FIXTURE_PROGRAM WORKDIR PYTHON CKPT_LOSS_SCALE_PY
set -eu
TNREC=$1 FIXTURE=$2 WORK=$3 PYTHON=$4 CKPT_PY=$5
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; cat "$WORK/err.txt" 2>/dev/null; exit 1; }
export OMP_NUM_THREADS=1
"$FIXTURE" "$WORK/data" 24 3
M="c8,p122,c8,g,d8,o"

# Environment of a launcher without MPI: every variable is needed.
set +e
TNREC_WORLD_SIZE=2 "$TNREC" train "$WORK/data" -o "$WORK/envrun" --model "$M" --epochs 1 2> "$WORK/err.txt"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q "TNREC_RANK" "$WORK/err.txt" && grep -q "hint:" "$WORK/err.txt" || fail "TNREC_WORLD_SIZE alone: exit $rc"
# A CPU rank started that way cannot sum: clear error, not a hang.
set +e
TNREC_WORLD_SIZE=2 TNREC_RANK=1 TNREC_NCCL_ID_FILE="$WORK/id" "$TNREC" train "$WORK/data" -o "$WORK/envrun2" \
    --model "$M" --epochs 1 --batch 8 2> "$WORK/err.txt"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q "NCCL" "$WORK/err.txt" || fail "file rendezvous on the CPU: exit $rc"

set +e
"$TNREC" train "$WORK/data" -o "$WORK/bad" --device tpu 2> "$WORK/err.txt"; rc=$?
set -e
[ $rc -eq 2 ] && grep -q "got 'tpu'" "$WORK/err.txt" && grep -q "cpu, cuda" "$WORK/err.txt" || fail "unknown device: exit $rc"

if ! "$TNREC" train "$WORK/data" -o "$WORK/gpu" --model "$M" --epochs 2 --batch 8 --device cuda \
        > "$WORK/train.txt" 2> "$WORK/err.txt"; then
    # Only a missing GPU (or a build without CUDA, or a CUDA library this
    # machine lacks) is a reason to skip; any other failure of the GPU run
    # is a failure of this test.
    if ! grep -q -E "no usable CUDA device|no CUDA device visible|built without CUDA|cannot load the CUDA module .*cannot open shared object file" \
            "$WORK/err.txt"; then
        fail "--device cuda failed for another reason than a missing GPU"
    fi
    cp "$WORK/err.txt" "$WORK/why.txt"
    # No GPU here: the refusal must be clear and leave nothing behind.
    grep -q "hint:" "$WORK/err.txt" || fail "no hint in the --device cuda error"
    grep -q -i "cuda" "$WORK/err.txt" || fail "the --device cuda error does not name CUDA"
    [ ! -e "$WORK/gpu" ] || fail "a refused GPU run left a run directory"
    "$TNREC" train "$WORK/data" -o "$WORK/cpu" --model "$M" --epochs 1 --batch 8 > /dev/null || fail "CPU run"
    set +e
    "$TNREC" eval --device cuda "$WORK/cpu" "$WORK/data" > /dev/null 2> "$WORK/err.txt"; rc=$?
    set -e
    [ $rc -eq 1 ] && grep -q "hint:" "$WORK/err.txt" || fail "eval --device cuda without a GPU: exit $rc"
    set +e
    "$TNREC" predict --device cuda "$WORK/cpu" "$WORK/data" -o "$WORK/p.csv" 2> "$WORK/err.txt"; rc=$?
    set -e
    [ $rc -eq 1 ] && [ ! -e "$WORK/p.csv" ] || fail "predict --device cuda without a GPU: exit $rc"
    set +e
    "$TNREC" eval --precision fp16 "$WORK/cpu" "$WORK/data" > /dev/null 2> "$WORK/err.txt"; rc=$?
    set -e
    [ $rc -eq 1 ] && grep -q -- "--device cuda" "$WORK/err.txt" || fail "eval --precision fp16 on the CPU: exit $rc"
    echo "train_gpu_cli: SKIPPED the GPU run (CPU-side checks passed): $(head -1 "$WORK/why.txt")"
    exit 77
fi
[ "$(grep -c '^epoch ' "$WORK/train.txt")" -eq 2 ] || fail "two progress lines on the GPU"
"$TNREC" eval --device cuda --json "$WORK/gpu" "$WORK/data" > "$WORK/eval_gpu.json" || fail "eval on the GPU"
"$TNREC" eval --json "$WORK/gpu" "$WORK/data" > "$WORK/eval_cpu.json" || fail "eval on the CPU"
"$TNREC" predict --device cuda "$WORK/gpu" "$WORK/data" -o "$WORK/p.csv" || fail "predict on the GPU"
[ "$(wc -l < "$WORK/p.csv")" -eq 25 ] || fail "predict rows"
for prec in fp16 bf16; do
    "$TNREC" eval --device cuda --precision $prec --json "$WORK/gpu" "$WORK/data" > "$WORK/eval_$prec.json" ||
        fail "eval --precision $prec on the GPU"
    "$TNREC" predict --device cuda --precision $prec "$WORK/gpu" "$WORK/data" -o "$WORK/p_$prec.csv" ||
        fail "predict --precision $prec on the GPU"
    [ "$(wc -l < "$WORK/p_$prec.csv")" -eq 25 ] || fail "predict rows ($prec)"
done
"$TNREC" train --resume "$WORK/gpu" --epochs 3 --device cpu > /dev/null || fail "GPU run resumed on the CPU"
"$TNREC" train --resume "$WORK/gpu" --epochs 4 --device cuda --precision fp16 > /dev/null || fail "and back, in fp16"
[ "$(wc -l < "$WORK/gpu/metrics.jsonl")" -eq 4 ] || fail "metrics.jsonl after resumes"
# The fp16 run saved its loss scale (a float32 run records none: 0).
scale=$("$PYTHON" "$CKPT_PY" show "$WORK/gpu/last.tnck" | awk '{print $2}')
"$PYTHON" -c "import sys; sys.exit(0 if float('$scale') >= 1 else 1)" || fail "fp16 checkpoint has loss scale '$scale'"
echo "train_gpu_cli: passed"
