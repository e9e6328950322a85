#!/bin/sh
# tests/train/cli_empty.sh: `tnrec train`, `eval` and `predict` on a
# dataset with no records fail with one message naming it (and, for
# train, whether it is the training or the validation set). The empty
# dataset is written through the records API (the fixture with N=0).
# usage: cli_empty.sh TNREC FIXTURE_PROGRAM WORKDIR
set -eu
TNREC=$1 FIXTURE=$2 WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; [ -f "$WORK/err.txt" ] && cat "$WORK/err.txt"; exit 1; }
export OMP_NUM_THREADS=1

# fails_with TEXT CMD...: exit 1, TEXT on stderr, one error line.
fails_with() {
    text=$1
    shift
    set +e
    "$@" > /dev/null 2> "$WORK/err.txt"; rc=$?
    set -e
    [ $rc -eq 1 ] || fail "exit $rc, expected 1: $*"
    grep -qF -- "$text" "$WORK/err.txt" || fail "stderr lacks: $text"
    [ "$(grep -c 'error' "$WORK/err.txt")" -eq 1 ] || fail "more than one error: $*"
    if grep -q "class weights" "$WORK/err.txt"; then fail "blames class weights: $*"; fi
}

"$FIXTURE" "$WORK/empty" 0 1
"$FIXTURE" "$WORK/data" 16 2
M="c8,p122,c8,g,d8,o"
fails_with "tnrec train: error: training dataset '$WORK/empty' has no records" \
    "$TNREC" train "$WORK/empty" --val "$WORK/data" -o "$WORK/run_a" --model "$M" --epochs 1
fails_with "tnrec train: error: training dataset '$WORK/empty' has no records" \
    "$TNREC" train "$WORK/empty" -o "$WORK/run_b" --model "$M" --epochs 1 --class-weights none
fails_with "tnrec train: error: validation dataset '$WORK/empty' has no records" \
    "$TNREC" train "$WORK/data" --val "$WORK/empty" -o "$WORK/run_c" --model "$M" --epochs 1
"$TNREC" train "$WORK/data" -o "$WORK/run" --model "$M" --epochs 1 --batch 8 > /dev/null
fails_with "tnrec eval: error: dataset '$WORK/empty' has no records" "$TNREC" eval "$WORK/run" "$WORK/empty"
fails_with "tnrec predict: error: dataset '$WORK/empty' has no records" \
    "$TNREC" predict "$WORK/run" "$WORK/empty" -o "$WORK/scores.csv"
[ ! -e "$WORK/scores.csv" ] || fail "predict wrote scores.csv"
echo "cli_empty: all checks passed"
