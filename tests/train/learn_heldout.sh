#!/bin/sh
# tests/train/learn_heldout.sh: `tnrec train DATA --val VAL -o RUN` with no
# other options learns a signature it was not tuned on. The data is a
# member of benchmarks/signature_family.py kept out of the choice of the
# defaults (docs/train.md, "Defaults from a family of signatures"), drawn
# with a seed the tuning never used, written as NetCDF by netCDF4-python
# (not by tnrec), built as a user would (validation = held-out storms).
# Passes when the validation ROC-AUC reaches MIN_AUC within the default
# epochs.
# usage: learn_heldout.sh TNREC PYTHON GENERATOR WORKDIR [MEMBER] [MIN_AUC]
set -eu
TNREC=$1 PYTHON=$2 GEN=$3 WORK=$4 MEMBER=${5:-meso-full-static} MIN_AUC=${6:-0.9}
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; exit 1; }

"$PYTHON" -c "import netCDF4" 2> /dev/null || { echo "SKIP: python3-netcdf4 missing"; exit 77; }
"$PYTHON" "$GEN" --list | grep -q "^$MEMBER .*held out" || fail "$MEMBER is not a held-out member of $GEN"
"$PYTHON" "$GEN" "$WORK/raw" --member "$MEMBER" --train 300 --test 2 --seed 23 > /dev/null
"$TNREC" build "$WORK/raw" --split train --holdout 0.15 -o "$WORK/train" -q
"$TNREC" build "$WORK/raw" --split train --holdout 0.15 --held-out -o "$WORK/val" -q
"$TNREC" train "$WORK/train" --val "$WORK/val" -o "$WORK/run" -q > "$WORK/train.txt"
cat "$WORK/train.txt"
"$PYTHON" - "$WORK/run/metrics.jsonl" "$MIN_AUC" "$MEMBER" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
best = max(r["val_roc_auc"] for r in rows)
print("learn_heldout: %s, validation ROC-AUC by epoch %s, best %.3f (at least %s)"
      % (sys.argv[3], " ".join("%.2f" % r["val_roc_auc"] for r in rows), best, sys.argv[2]))
sys.exit(0 if best >= float(sys.argv[2]) else 1)
PY
echo "learn_heldout: all checks passed"
