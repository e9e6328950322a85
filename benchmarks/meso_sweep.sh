#!/usr/bin/env bash
# Which tnrec settings learn the velocity couplet of benchmarks/meso_signature.py
# (docs/train.md, "Why the couplet is not learned"): one `tnrec train` run per
# configuration, each changing one thing against tiny on all six variables,
# and one line per run with the training and validation ROC-AUC by epoch.
#
# usage: benchmarks/meso_sweep.sh TRAIN VAL OUTDIR [NAME=ARGS]...
#   TRAIN, VAL  datasets from `tnrec build` (e.g. the meso archive's train and
#               test splits, or --holdout 0.15 and --holdout 0.15 --held-out)
#   OUTDIR      run directories and table.md are written here
#   NAME=ARGS   configurations, as extra `tnrec train` options (default: the
#               set below); every run also gets the common options
# environment: TNREC (default build/bin/tnrec), EPOCHS (4), BATCH (8),
#   MODEL (tiny); an empty EPOCHS, BATCH or MODEL leaves that option to
#   tnrec train's default; SEEDS ("1"), NICE (5), JOBS (1, loader threads);
#   TEST: a dataset the last epoch's checkpoint is also scored on (a column
#   "test ROC-AUC" then; nothing is selected on it)
# example:
#   python3 benchmarks/meso_signature.py /tmp/meso/raw --train 300 --test 60 --tor 0.2
#   build/bin/tnrec build /tmp/meso/raw --split train -o /tmp/meso/tr
#   build/bin/tnrec build /tmp/meso/raw --split test -o /tmp/meso/te
#   SEEDS="1 2 3" benchmarks/meso_sweep.sh /tmp/meso/tr /tmp/meso/te /tmp/meso/sweep \
#       all6="" vel="--variables VEL"
# A finished run (OUTDIR/NAME-sSEED/done) is not run again.
set -u
if [ $# -lt 3 ]; then sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; fi
train=$1 val=$2 out=$3; shift 3
TNREC=${TNREC:-build/bin/tnrec} EPOCHS=${EPOCHS-4} BATCH=${BATCH-8} MODEL=${MODEL-tiny}
SEEDS=${SEEDS:-1} NICE=${NICE:-5} JOBS=${JOBS:-1} TEST=${TEST:-}
common=()
[ -n "$MODEL" ] && common+=(--model "$MODEL")
[ -n "$BATCH" ] && common+=(--batch "$BATCH")
[ -n "$EPOCHS" ] && common+=(--epochs "$EPOCHS")
if [ $# -eq 0 ]; then
  set -- "all6=" \
         "all6-torch=--init torch" \
         "all6-lr3e-4=--lr 3e-4" \
         "all6-cw-none=--class-weights none" \
         "dbz-vel=--variables DBZ,VEL" \
         "vel=--variables VEL" \
         "vel-torch=--variables VEL --init torch" \
         "vel-fullres=--variables VEL --model k16,p122,k16,p122,k16,p222,k32,g,d16,o"
fi
mkdir -p "$out"
table=$out/table.md
[ -f "$table" ] || printf '| configuration | seed | training ROC-AUC by epoch | validation ROC-AUC by epoch | test ROC-AUC | s per epoch |\n|---|---|---|---|---|---|\n' > "$table"
for cfg in "$@"; do
  name=${cfg%%=*} args=${cfg#*=}
  for seed in $SEEDS; do
    run=$out/$name-s$seed
    if [ -f "$run/done" ]; then continue; fi
    rm -rf "$run"
    # shellcheck disable=SC2086  # ARGS are options, split on purpose
    nice -n "$NICE" "$TNREC" train "$train" --val "$val" -o "$run" "${common[@]}" \
      --seed "$seed" -j "$JOBS" -q $args > "$run.log" 2>&1 \
      || { echo "meso_sweep: $name seed $seed failed, see $run.log" >&2; continue; }
    test_auc=-
    if [ -n "$TEST" ]; then
      test_auc=$(nice -n "$NICE" "$TNREC" eval "$run/last.tnck" "$TEST" --json -q 2>> "$run.log" |
                 python3 -c 'import json, sys; print("%.3f" % json.load(sys.stdin)["roc_auc"])') || test_auc=failed
    fi
    python3 - "$run/metrics.jsonl" "$name" "$seed" "$test_auc" >> "$table" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
f = lambda k: " ".join("%.2f" % r[k] for r in rows)
s = [r["seconds"] for r in rows]
print("| %s | %s | %s | %s | %s | %.0f-%.0f |" % (sys.argv[2], sys.argv[3], f("roc_auc"), f("val_roc_auc"),
                                                sys.argv[4], min(s), max(s)))
PY
    touch "$run/done"
    tail -n 1 "$table"
  done
done
