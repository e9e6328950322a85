#!/bin/sh
# tests/train/cli_data_check.sh: `tnrec eval`, `predict` and `train
# --resume` refuse a dataset that does not hold the data the checkpoint
# was trained on (other normalisation, encoding, frames or variables),
# naming the dataset, the checkpoint and the first difference; a new run
# refuses a validation set unlike its training set; checkpoints from
# before format 1.2 (no data_schema) are still accepted, with a warning.
# usage: cli_data_check.sh TNREC PYTHON OLD_FORMAT_SCRIPT WORKDIR
set -eu
TNREC=$1 PY=$2 OLDFMT=$3 WORK=$4
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; [ -f "$WORK/err.txt" ] && cat "$WORK/err.txt"; exit 1; }
export OMP_NUM_THREADS=1

# refused CMD...: exit 1 and one error naming every path given after --names.
refused() {
    set +e
    "$@" > "$WORK/out.txt" 2> "$WORK/err.txt"; rc=$?
    set -e
    [ $rc -eq 1 ] || fail "exit $rc, expected 1: $*"
}
has() { grep -qF -- "$1" "$WORK/err.txt" || fail "stderr lacks: $1"; }

"$TNREC" synth "$WORK/tornet" --samples 24 --seed 3 --tor-fraction 0.33 -j 1 > /dev/null
B="$TNREC build $WORK/tornet --split all"
$B -o "$WORK/same" > /dev/null
$B -o "$WORK/norm" --norm VEL=-10:30 > /dev/null
$B -o "$WORK/uint8" --dtype uint8 > /dev/null
$B -o "$WORK/frames3" --frames 3 > /dev/null
$B -o "$WORK/twovars" --variables DBZ,VEL > /dev/null
cp -r "$WORK/same" "$WORK/train"
cp -r "$WORK/same" "$WORK/val"
"$TNREC" train "$WORK/train" --val "$WORK/val" -o "$WORK/run" --model tiny --epochs 1 --batch 8 > /dev/null
CK="$WORK/run/best.tnck"

# The data it was trained on: scored, no warning.
"$TNREC" eval "$WORK/run" "$WORK/same" > /dev/null 2> "$WORK/err.txt" || fail "eval on the same data"
[ ! -s "$WORK/err.txt" ] || fail "eval on the same data printed: $(cat "$WORK/err.txt")"

refused "$TNREC" eval "$WORK/run" "$WORK/norm"
has "dataset '$WORK/norm' does not match the training data of checkpoint '$CK'"
has "field VEL: normalisation offset 10 in '$WORK/norm', 0 in '$CK'"
refused "$TNREC" eval --json "$CK" "$WORK/uint8"
has "field DBZ: encoding uint8 in '$WORK/uint8', float16 in '$CK'"
refused "$TNREC" predict "$WORK/run" "$WORK/frames3" -o "$WORK/scores.csv"
has "field DBZ: shape 3x120x240x2 in '$WORK/frames3', 4x120x240x2 in '$CK'"
[ ! -e "$WORK/scores.csv" ] || fail "predict left scores.csv"
refused "$TNREC" eval "$WORK/run" "$WORK/twovars"
has "field KDP: missing in '$WORK/twovars', present in '$CK'"

# A new run: the validation set must hold the training set's kind of data.
refused "$TNREC" train "$WORK/same" --val "$WORK/norm" -o "$WORK/run_newval" --model tiny --epochs 1
has "validation dataset '$WORK/norm' does not match training dataset '$WORK/same': field VEL"

# Resume: the datasets the run names were rebuilt with other settings.
"$TNREC" train "$WORK/train" --val "$WORK/val" -o "$WORK/run2" --model tiny --epochs 2 --batch 8 --max-steps 1 > /dev/null
rm -rf "$WORK/train" && cp -r "$WORK/norm" "$WORK/train"
refused "$TNREC" train --resume "$WORK/run2"
has "training dataset '$WORK/train' does not match the training data of checkpoint '$WORK/run2/last.tnck': field VEL"
rm -rf "$WORK/train" && cp -r "$WORK/same" "$WORK/train"
rm -rf "$WORK/val" && cp -r "$WORK/uint8" "$WORK/val"
refused "$TNREC" train --resume "$WORK/run2"
has "validation dataset '$WORK/val' does not match the training data of checkpoint '$WORK/run2/last.tnck': field DBZ: encoding"
rm -rf "$WORK/val" && cp -r "$WORK/same" "$WORK/val"

# Checkpoints written before format 1.2: used as before, with a warning.
cp "$CK" "$WORK/old.tnck"
"$PY" "$OLDFMT" "$WORK/old.tnck"
"$TNREC" eval "$WORK/old.tnck" "$WORK/same" > /dev/null 2> "$WORK/err.txt" || fail "old checkpoint refused"
has "warning: checkpoint '$WORK/old.tnck' predates checkpoint format 1.2"
"$TNREC" eval "$WORK/old.tnck" "$WORK/norm" > /dev/null 2> "$WORK/err.txt" || fail "old checkpoint refused on other data"
has "warning"
"$PY" "$OLDFMT" "$WORK/run2/last.tnck"
"$TNREC" train --resume "$WORK/run2" > /dev/null 2> "$WORK/err.txt" || fail "old checkpoint not resumed"
has "warning: checkpoint '$WORK/run2/last.tnck' predates"
# The resumed run records the schema again.
"$TNREC" eval "$WORK/run2/last.tnck" "$WORK/same" > /dev/null 2> "$WORK/err.txt" || fail "eval after resume"
[ ! -s "$WORK/err.txt" ] || fail "resumed run's checkpoint still without data_schema"
echo "cli_data_check: all checks passed"
