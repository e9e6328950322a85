#!/bin/sh
# tests/train/cli_tornet_cnn.sh: the tornet-cnn preset through the real
# `tnrec train / eval / predict`: its summary and parameter count, the
# frame check, and a short run of the whole preset (and of a small spec of
# its layers, resumed) on a small fixture, with the last frame and the
# range-folded masks as the Keras model takes them.
# usage: cli_tornet_cnn.sh TNREC FIXTURE_PROGRAM WORKDIR
set -eu
TNREC=$1 FIXTURE=$2 WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; exit 1; }
export OMP_NUM_THREADS=2

# The summary takes the preset's own input (1 frame, 14 channels).
"$TNREC" train --model tornet-cnn --summary > "$WORK/summary.txt"
grep -q "input: (None, 1, 120, 240, 14)" "$WORK/summary.txt" || fail "tornet-cnn input"
grep -q "Total params: 8,084,225" "$WORK/summary.txt" || fail "tornet-cnn parameter count"
grep -q "(None, 1, 8, 15, 512)" "$WORK/summary.txt" || fail "tornet-cnn 'same' pooling"
[ "$(grep -c 'CoordConv2D+L2' "$WORK/summary.txt")" -eq 10 ] || fail "ten CoordConv2D layers"
"$TNREC" train --model tornet-cnn --summary --channels 12 | grep -q "Total params: 8,083,073" || fail "--channels 12"
set +e
"$TNREC" train --model tornet-cnn --summary --frames 4 2> "$WORK/err.txt"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q -- "--frames 1 --mask" "$WORK/err.txt" || fail "tornet-cnn with 4 frames: exit $rc"
set +e
"$TNREC" train --model "a8,g,m" --summary 2> "$WORK/err.txt"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q "model spec" "$WORK/err.txt" || fail "m after g: exit $rc"

"$FIXTURE" "$WORK/data" 16 5 4 15 22
"$TNREC" train "$WORK/data" --val "$WORK/data" -o "$WORK/runs/full" --model tornet-cnn --frames 1 --mask \
  --epochs 1 --batch 4 --max-steps 2 --quiet > "$WORK/full.txt" 2> "$WORK/full_err.txt"
[ -f "$WORK/runs/full/last.tnck" ] || fail "tornet-cnn run left no checkpoint"
"$TNREC" eval --json "$WORK/runs/full/last.tnck" "$WORK/data" > "$WORK/full_eval.json"
grep -q '"roc_auc"' "$WORK/full_eval.json" || fail "eval of the tornet-cnn checkpoint"

# Without --frames and --mask the preset trains on its own input: 1 frame
# and the range-folded mask (14 channels), as the checkpoint records.
"$TNREC" train "$WORK/data" -o "$WORK/runs/native" --model tornet-cnn \
  --epochs 1 --batch 4 --max-steps 1 --quiet > /dev/null 2> "$WORK/native_err.txt" \
  || fail "tornet-cnn without --frames/--mask: $(cat "$WORK/native_err.txt")"
grep -aq '"frames":1,' "$WORK/runs/native/last.tnck" || grep -aq '"frames": 1,' "$WORK/runs/native/last.tnck" \
  || fail "tornet-cnn's own input: not 1 frame"
grep -aq '"mask": *true' "$WORK/runs/native/last.tnck" || fail "tornet-cnn's own input: no mask"
grep -aq '"channels": *14' "$WORK/runs/native/last.tnck" || fail "tornet-cnn's own input: not 14 channels"
# --frames alone leaves the input to the options: no mask, 12 channels.
"$TNREC" train "$WORK/data" -o "$WORK/runs/frames1" --model tornet-cnn --frames 1 \
  --epochs 1 --batch 4 --max-steps 1 --quiet > /dev/null 2>&1 || fail "tornet-cnn --frames 1"
grep -aq '"channels": *12' "$WORK/runs/frames1/last.tnck" || fail "tornet-cnn --frames 1: not 12 channels"

M="a8/0.001,a8,p122s,e0.1,a16/0.001,p122s,e0.1,h16/0.001,m"
# CoordConv layers take each record's range_limits: a dataset without them
# is refused, a damaged window stops the run naming shard and record; a
# model without CoordConv layers trains on either.
TNREC_FIXTURE_LIMITS=none "$FIXTURE" "$WORK/nolimits" 8 6 1 15 22
TNREC_FIXTURE_LIMITS=damaged "$FIXTURE" "$WORK/badlimits" 8 6 1 15 22
for d in nolimits badlimits; do
  set +e
  "$TNREC" train "$WORK/$d" -o "$WORK/runs/$d" --model "$M" --frames 1 --mask --epochs 1 --batch 4 --quiet \
    > /dev/null 2> "$WORK/err_$d.txt"; rc=$?
  set -e
  [ $rc -eq 1 ] && grep -q "range_limits" "$WORK/err_$d.txt" || fail "CoordConv on $d: exit $rc: $(cat "$WORK/err_$d.txt")"
  "$TNREC" train "$WORK/$d" -o "$WORK/runs/${d}_tiny" --model "c4,g,o" --frames 1 --epochs 1 --batch 4 --quiet \
    > /dev/null 2>&1 || fail "a model without CoordConv on $d"
done
grep -q "no float32\[2\] field 'range_limits'" "$WORK/err_nolimits.txt" || fail "no range_limits: $(cat "$WORK/err_nolimits.txt")"
grep -q "shard '.*': record [0-9]* has range_limits \[5000, 5000\]" "$WORK/err_badlimits.txt" \
  || fail "damaged range_limits: $(cat "$WORK/err_badlimits.txt")"
"$TNREC" train "$WORK/data" --val "$WORK/data" -o "$WORK/runs/small" --model "$M" --frames 1 --mask \
  --epochs 1 --batch 8 --lr 0.01 > "$WORK/small.txt"
grep -q '^epoch 1/1' "$WORK/small.txt" || fail "small run"
"$TNREC" train --resume "$WORK/runs/small" --epochs 2 > "$WORK/resume.txt"
grep -q '^epoch 2/2' "$WORK/resume.txt" || fail "resume to epoch 2"
"$TNREC" predict "$WORK/runs/small" "$WORK/data" -o "$WORK/scores.csv" 2> /dev/null
[ "$(wc -l < "$WORK/scores.csv")" -eq 17 ] || fail "csv rows"
echo "cli_tornet_cnn: all checks passed"
