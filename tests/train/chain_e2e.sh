#!/bin/sh
# tests/train/chain_e2e.sh: the main job end to end at a tiny scale, as
# scripts/demo.sh runs it: synth (more TOR than TorNet's mix), build the
# train and test splits, train the tiny preset one epoch, eval on the test
# split. Asserts that every step runs and that eval --json has its keys;
# not the AUC (one epoch on a hundred samples learns little).
# usage: chain_e2e.sh TNREC PYTHON WORKDIR
set -eu
TNREC=$1 PYTHON=$2 WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; exit 1; }
export OMP_NUM_THREADS=2

"$TNREC" synth "$WORK/tornet" --samples 120 --seed 3 --tor-fraction 0.33 -j 2 > "$WORK/synth.txt" \
    || fail "synth"
"$TNREC" build "$WORK/tornet" --split train -o "$WORK/train" > "$WORK/build_train.txt" || fail "build train"
"$TNREC" build "$WORK/tornet" --split test -o "$WORK/test" > "$WORK/build_test.txt" || fail "build test"
"$TNREC" train "$WORK/train" --val "$WORK/test" -o "$WORK/run" --model tiny --epochs 1 --batch 8 \
    > "$WORK/train.txt" || fail "train"
[ "$(grep -c '^epoch ' "$WORK/train.txt")" -eq 1 ] || fail "one epoch line: $(cat "$WORK/train.txt")"
[ -f "$WORK/run/best.tnck" ] || fail "no best.tnck"
"$TNREC" eval "$WORK/run" "$WORK/test" --json > "$WORK/eval.json" || fail "eval"
"$PYTHON" - "$WORK/eval.json" "$WORK/test/manifest.json" <<'PY'
import json, sys
def check(cond, what):  # explicit: python -O drops assert statements
    if not cond:
        raise SystemExit("FAIL: %s" % (what,))
e = json.load(open(sys.argv[1]))
for k in ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "far", "f1", "csi",
          "csi_best", "csi_best_threshold", "n", "positives", "tp", "fp", "fn", "tn",
          "loss", "categories"):
    check(k in e, "eval --json lacks " + k)
for c in ("TOR", "NUL", "WRN"):
    check(c in e["categories"], "eval --json lacks category " + c)
n = e["n"]
check(n > 0 and e["tp"] + e["fp"] + e["fn"] + e["tn"] == n, e)
check(0 < e["positives"] < n, "test split needs both classes: %r" % e)
check(e["roc_auc"] is not None and 0.0 <= e["roc_auc"] <= 1.0, e["roc_auc"])
PY
echo "chain_e2e: synth, build, train, eval ran; eval --json complete"
