#!/bin/sh
# tests/train/cli_nodata.sh: `tnrec train --nodata` with the real binary on
# files `tnrec synth` wrote (with no-data gates) and `tnrec build` read:
#  - a dataset built with TorNet's -3 and trained with --nodata 0 feeds the
#    model exactly what a dataset built with --nodata 0 feeds it with
#    --nodata dataset: the two runs' weights are bit for bit the same;
#  - the checkpoint records the value ("nodata": 0, or null for the
#    dataset's own); eval applies it, so the first checkpoint scores both
#    builds alike, while the second refuses the -3 build (no-data value);
#  - the default is 0 for a spec and the dataset's for tornet-cnn;
#  - --resume keeps the value (ends bit for bit as an uninterrupted run);
#  - bad values exit 2 naming the flag.
# usage: cli_nodata.sh TNREC PYTHON WORKDIR
set -eu
TNREC=$1 PYTHON=$2 WORK=$3
HERE=$(dirname "$0")
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; exit 1; }
export OMP_NUM_THREADS=1

set +e
"$TNREC" train "$WORK/none" -o "$WORK/x" --nodata abc > /dev/null 2> "$WORK/err.txt"; rc=$?
set -e
[ $rc -eq 2 ] && grep -q -- "--nodata" "$WORK/err.txt" && grep -q "abc" "$WORK/err.txt" || fail "--nodata abc: exit $rc"
set +e
"$TNREC" train "$WORK/none" -o "$WORK/x" --nodata=nan > /dev/null 2> "$WORK/err.txt"; rc=$?
set -e
[ $rc -eq 2 ] || fail "--nodata=nan: exit $rc"
set +e
"$TNREC" train "$WORK/none" -o "$WORK/x" --nodata 1001 > /dev/null 2> "$WORK/err.txt"; rc=$?
set -e
[ $rc -eq 2 ] && grep -q -- "--nodata takes .*1000" "$WORK/err.txt" || fail "--nodata 1001: exit $rc"

"$TNREC" synth "$WORK/raw" --samples 16 --seed 4 --tor-fraction 0.4 -j 2 -q
"$TNREC" build "$WORK/raw" --split train -o "$WORK/d3" -q
"$TNREC" build "$WORK/raw" --split train -o "$WORK/d0" --nodata 0 -q
"$TNREC" build "$WORK/raw" --split train -o "$WORK/d5" --nodata 5 -q

M="c4,p144,k4,g,d4,o"
train() { # train NAME DATA EPOCHS [options]
    name=$1 data=$2 epochs=$3
    shift 3
    "$TNREC" train "$data" -o "$WORK/$name" --epochs "$epochs" --batch 4 --frames 1 --model "$M" --lr 0.01 -q "$@" > /dev/null
}
train fill0 "$WORK/d3" 1 --nodata 0
train own0 "$WORK/d0" 1 --nodata dataset
train own3 "$WORK/d3" 1 --nodata dataset
train default "$WORK/d3" 1
grep -aq '"nodata": 0' "$WORK/fill0/last.tnck" || fail "--nodata 0 not in the checkpoint config"
grep -aq '"nodata": null' "$WORK/own0/last.tnck" || fail "--nodata dataset not recorded as null"
grep -aq '"nodata": 0' "$WORK/default/last.tnck" || fail "the default for a spec is not 0"
"$PYTHON" "$HERE/compare_checkpoints.py" "$WORK/fill0/last.tnck" "$WORK/own0/last.tnck" 0 ||
    fail "--nodata 0 on the -3 build differs from the --nodata 0 build"
"$PYTHON" "$HERE/compare_checkpoints.py" "$WORK/fill0/last.tnck" "$WORK/default/last.tnck" 0 ||
    fail "the default differs from --nodata 0"
if "$PYTHON" "$HERE/compare_checkpoints.py" "$WORK/fill0/last.tnck" "$WORK/own3/last.tnck" 0 > /dev/null 2>&1; then
    fail "--nodata 0 and the dataset's -3 gave the same weights"
fi

# eval applies the recorded value whatever the dataset stores.
"$TNREC" eval --json "$WORK/fill0/last.tnck" "$WORK/d3" > "$WORK/e3.json"
"$TNREC" eval --json "$WORK/fill0/last.tnck" "$WORK/d5" > "$WORK/e5.json"
cmp -s "$WORK/e3.json" "$WORK/e5.json" || fail "eval of a --nodata 0 model differs between the -3 and 5 builds"
"$TNREC" predict "$WORK/fill0/last.tnck" "$WORK/d5" -o "$WORK/p5.csv" -q
"$TNREC" predict "$WORK/own0/last.tnck" "$WORK/d0" -o "$WORK/p0.csv" -q
cmp -s "$WORK/p5.csv" "$WORK/p0.csv" || fail "predict with the recorded value differs from the --nodata 0 build"
set +e
"$TNREC" eval "$WORK/own0/last.tnck" "$WORK/d3" > /dev/null 2> "$WORK/err.txt"; rc=$?
set -e
[ $rc -ne 0 ] && grep -q "no-data value" "$WORK/err.txt" || fail "the dataset's-value model took the -3 build: exit $rc"

# A validation set built with another value is fine when the run sets it.
train val5 "$WORK/d3" 1 --nodata 0 --val "$WORK/d5"
set +e
train val5own "$WORK/d3" 1 --nodata dataset --val "$WORK/d5" 2> "$WORK/err.txt"; rc=$?
set -e
[ $rc -ne 0 ] && grep -q "no-data value" "$WORK/err.txt" || fail "--nodata dataset took a validation set built with 5"

# --resume keeps the value.
train half "$WORK/d3" 1 --nodata 0.5
train whole "$WORK/d3" 2 --nodata 0.5
"$TNREC" train --resume "$WORK/half" --epochs 2 -q > /dev/null
grep -aq '"nodata": 0.5' "$WORK/half/last.tnck" || fail "resume lost --nodata 0.5"
"$PYTHON" "$HERE/compare_checkpoints.py" "$WORK/half/last.tnck" "$WORK/whole/last.tnck" 0 ||
    fail "resumed --nodata 0.5 run differs from the uninterrupted one"
echo "cli_nodata: all checks passed"
