#!/bin/sh
# tests/train/cli_train.sh: the real `tnrec train / eval / predict` on a
# small fixture: summary, usage errors, a run, resume, eval --json, CSV.
# usage: cli_train.sh TNREC FIXTURE_PROGRAM WORKDIR [PYTHON COMPARE_CHECKPOINTS]
# (with PYTHON, a resumed bf16 run is compared with an uninterrupted one)
set -eu
TNREC=$1 FIXTURE=$2 WORK=$3 PY=${4:-} CMP=${5:-}
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; exit 1; }
export OMP_NUM_THREADS=1

"$TNREC" train --model seed3d --summary > "$WORK/summary.txt"
grep -q "Total params: 886,337" "$WORK/summary.txt" || fail "seed3d summary"
grep -q "(None, 2, 15, 30, 128)" "$WORK/summary.txt" || fail "seed3d shapes"
"$TNREC" train --model seed3d --summary --channels 14 --frames 3 | grep -q "(None, 3, 120, 240, 32)" || fail "summary options"
set +e
"$TNREC" train > /dev/null 2> "$WORK/err.txt"; rc=$?
set -e
[ $rc -eq 2 ] || fail "no dataset: exit $rc"
set +e
"$TNREC" train --model "c8,zz,g,o" --summary 2> "$WORK/err.txt"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q "model spec: unknown layer 'zz'" "$WORK/err.txt" || fail "bad spec: exit $rc"

"$FIXTURE" "$WORK/data" 24 3
M="c8,p122,c8,g,d8,o"
"$TNREC" train "$WORK/data" --val "$WORK/data" -o "$WORK/runs/run" --epochs 2 --batch 8 --model "$M" --lr 0.01 > "$WORK/train.txt"
[ "$(grep -c '^epoch ' "$WORK/train.txt")" -eq 2 ] || fail "two progress lines"
[ "$(wc -l < "$WORK/runs/run/metrics.jsonl")" -eq 2 ] || fail "metrics.jsonl lines"
for f in epoch-0001.tnck epoch-0002.tnck last.tnck best.tnck; do [ -f "$WORK/runs/run/$f" ] || fail "missing $f"; done
set +e
"$TNREC" train "$WORK/data" --val "$WORK/data" -o "$WORK/runs/run" --model "$M" 2> "$WORK/err.txt"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q -- "--resume" "$WORK/err.txt" || fail "second run in the same directory"
"$TNREC" train --resume "$WORK/runs/run" --epochs 3 > "$WORK/resume.txt"
grep -q '^epoch 3/3' "$WORK/resume.txt" || fail "resume to epoch 3"
[ "$(wc -l < "$WORK/runs/run/metrics.jsonl")" -eq 3 ] || fail "metrics.jsonl after resume"

"$TNREC" eval --json "$WORK/runs/run" "$WORK/data" > "$WORK/eval.json"
for k in roc_auc pr_auc accuracy precision recall far f1 csi csi_best categories TOR NUL WRN; do
  grep -q "\"$k\"" "$WORK/eval.json" || fail "eval --json lacks $k"
done
"$TNREC" eval "$WORK/runs/run/last.tnck" "$WORK/data" | grep -q "^all " || fail "eval table"
"$TNREC" predict "$WORK/runs/run" "$WORK/data" -o "$WORK/scores.csv" 2> /dev/null
[ "$(head -1 "$WORK/scores.csv")" = "key,event_id,time,category,label,probability" ] || fail "csv header"
[ "$(wc -l < "$WORK/scores.csv")" -eq 25 ] || fail "csv rows"
set +e
"$TNREC" eval "$WORK/nothing" "$WORK/data" 2> "$WORK/err.txt"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q "nothing" "$WORK/err.txt" || fail "missing checkpoint"
# Precision on the CPU: fp16 is the GPU's and leaves nothing behind; bf16
# trains (bfloat16 products where the CPU has avx512_bf16, float32
# elsewhere), resumes, and its checkpoint scores.
set +e
"$TNREC" train "$WORK/data" -o "$WORK/runs/fp16" --epochs 1 --batch 8 --model "$M" --precision fp16 2> "$WORK/err.txt"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q "GPU only" "$WORK/err.txt" || fail "train --precision fp16 on the CPU: exit $rc"
[ ! -e "$WORK/runs/fp16" ] || fail "a refused fp16 run left a run directory"
B="c16,p122,c16,g,d8,o"
"$TNREC" train "$WORK/data" -o "$WORK/runs/bf16" --epochs 1 --batch 8 --model "$B" --precision bf16 > "$WORK/bf16.txt" ||
  fail "train --precision bf16"
"$TNREC" train --resume "$WORK/runs/bf16" --epochs 2 --precision bf16 > /dev/null || fail "resume in bf16"
[ "$(wc -l < "$WORK/runs/bf16/metrics.jsonl")" -eq 2 ] || fail "bf16 metrics.jsonl lines"
grep -q '"loss": null' "$WORK/runs/bf16/metrics.jsonl" && fail "a bf16 loss is not finite"
"$TNREC" eval "$WORK/runs/bf16" "$WORK/data" | grep -q "^all " || fail "eval of a bf16 run"
if [ -n "$PY" ] && [ -n "$CMP" ]; then
  # bf16 steps are deterministic at a given thread count: resuming gives
  # the uninterrupted run's weights to the bit.
  "$TNREC" train "$WORK/data" -o "$WORK/runs/bf16-straight" --epochs 2 --batch 8 --model "$B" --precision bf16 > /dev/null ||
    fail "train --precision bf16, two epochs"
  "$PY" "$CMP" "$WORK/runs/bf16/last.tnck" "$WORK/runs/bf16-straight/last.tnck" 0 || fail "bf16 resume is not exact"
fi
echo "cli_train: all checks passed"
