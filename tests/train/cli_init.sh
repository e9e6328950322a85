#!/bin/sh
# tests/train/cli_init.sh: `tnrec train --init` with the real binary: the
# initialiser is kept in the checkpoint's config and by --resume (a run
# stopped after one epoch and resumed ends bit for bit where an
# uninterrupted one does), initialisers differ, a bad name is a usage error.
# usage: cli_init.sh TNREC FIXTURE_PROGRAM PYTHON WORKDIR
set -eu
TNREC=$1 FIXTURE=$2 PYTHON=$3 WORK=$4
HERE=$(dirname "$0")
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; exit 1; }
export OMP_NUM_THREADS=1

set +e
"$TNREC" train --model tiny --summary --init xavier > /dev/null 2> "$WORK/err.txt"; rc=$?
set -e
[ $rc -eq 2 ] && grep -q "glorot, he, torch" "$WORK/err.txt" || fail "--init xavier: exit $rc"

"$FIXTURE" "$WORK/data" 24 3
M="c8,p122,k8,g,d8,o"
run() { # run NAME INIT EPOCHS
    "$TNREC" train "$WORK/data" --val "$WORK/data" -o "$WORK/$1" --epochs "$3" --batch 8 --model "$M" \
        --init "$2" --lr 0.01 > /dev/null
}
run torch2 torch 2
run he1 he 1
run glorot1 glorot 1
grep -aq '"init": "torch"' "$WORK/torch2/last.tnck" || fail "init not in the checkpoint config"
grep -aq '"init": "he"' "$WORK/he1/last.tnck" || fail "init he not in the checkpoint config"
run torch1 torch 1
"$TNREC" train --resume "$WORK/torch1" --epochs 2 > /dev/null
grep -aq '"init": "torch"' "$WORK/torch1/last.tnck" || fail "resume lost the initialiser"
"$PYTHON" "$HERE/compare_checkpoints.py" "$WORK/torch1/last.tnck" "$WORK/torch2/last.tnck" 0 ||
    fail "resumed torch run differs from the uninterrupted one"
if "$PYTHON" "$HERE/compare_checkpoints.py" "$WORK/he1/last.tnck" "$WORK/glorot1/last.tnck" 0 > /dev/null 2>&1; then
    fail "he and glorot gave the same weights"
fi
echo "cli_init: all checks passed"
