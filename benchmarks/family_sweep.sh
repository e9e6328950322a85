#!/usr/bin/env bash
# Defaults from evidence (docs/train.md, "Defaults from a family of
# signatures"): for each member of benchmarks/signature_family.py, write its
# archive, build it the way a user would (validation = held-out storms of
# the training split, `--holdout 0.15`; the test split apart), once with
# no-data stored as the default and once with `--nodata 0`, and run
# benchmarks/meso_sweep.sh's configurations on each, scoring the last
# checkpoint on the test split.
#
# usage: benchmarks/family_sweep.sh OUTDIR MEMBER[,MEMBER...] [NAME=ARGS]...
#   OUTDIR   archives, datasets, runs and OUTDIR/MEMBER-{nd3,nd0}/table.md
#   MEMBER   members of signature_family.py (--list shows them)
#   NAME=ARGS  configurations, as in meso_sweep.sh; a NAME starting with
#            "nd0-" runs on the --nodata 0 build, any other on the default
#            build (default set: defaults and nd0-defaults, tnrec train with
#            no options)
# environment: as meso_sweep.sh (EPOCHS, BATCH and MODEL default to empty
#   here: tnrec train's own defaults), TRAIN (300), TESTN (60), SEED (1)
# example:
#   benchmarks/family_sweep.sh /tmp/family meso,hook defaults= nd0-b8="--batch 8"
set -u
if [ $# -lt 2 ]; then sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; fi
out=$1 members=$2; shift 2
here=$(cd "$(dirname "$0")" && pwd)
TNREC=${TNREC:-build/bin/tnrec} TRAIN=${TRAIN:-300} TESTN=${TESTN:-60} SEED=${SEED:-1}
export TNREC EPOCHS=${EPOCHS-} BATCH=${BATCH-} MODEL=${MODEL-}
[ $# -gt 0 ] || set -- "defaults=" "nd0-defaults="
mkdir -p "$out"

build_variant() {  # ROOT DIR [build options]: train (held-in), val (held-out), test
  local root=$1 dir=$2; shift 2
  [ -f "$dir/.built" ] && return 0
  rm -rf "$dir" && mkdir -p "$dir"
  "$TNREC" build "$root" --split train --holdout 0.15 -q -o "$dir/train" "$@" &&
    "$TNREC" build "$root" --split train --holdout 0.15 --held-out -q -o "$dir/val" "$@" &&
    "$TNREC" build "$root" --split test -q -o "$dir/test" "$@" && touch "$dir/.built"
}

for m in ${members//,/ }; do
  raw=$out/$m/raw
  if [ ! -f "$raw/catalog.csv" ]; then
    rm -rf "$raw"
    /usr/bin/python3 "$here/signature_family.py" "$raw" --member "$m" --train "$TRAIN" --test "$TESTN" \
      --seed "$SEED" || { echo "family_sweep: cannot write $m" >&2; exit 1; }
  fi
  build_variant "$raw" "$out/$m/nd3" || { echo "family_sweep: cannot build $m" >&2; exit 1; }
  build_variant "$raw" "$out/$m/nd0" --nodata 0 || { echo "family_sweep: cannot build $m --nodata 0" >&2; exit 1; }
  nd3=() nd0=()
  for cfg in "$@"; do
    case $cfg in nd0-*) nd0+=("$cfg") ;; *) nd3+=("$cfg") ;; esac
  done
  for v in nd3 nd0; do
    eval "cfgs=(\"\${$v[@]}\")"
    [ ${#cfgs[@]} -gt 0 ] || continue
    TEST=$out/$m/$v/test "$here/meso_sweep.sh" "$out/$m/$v/train" "$out/$m/$v/val" "$out/$m-$v" "${cfgs[@]}"
  done
done
