#!/usr/bin/env bash
# scripts/demo.sh [OUTDIR]: the main job on the embedded default.
# Installs dependencies, builds tnrec, synthesises a small TorNet-like
# archive (a third of it TOR, so a few hundred samples hold enough
# tornadoes to learn from), builds its train split into record shards with
# 15 % of its storms held out as a validation set, and its test split;
# trains the tiny model, keeping the epoch best on the validation set;
# scores that model once on the test split (samples that neither trained
# nor chose it) and fails unless the test ROC-AUC reaches 0.9.
# Everything is seeded: the same machine gives the same numbers each run.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/demo}
samples=${TNREC_DEMO_SAMPLES:-600}
epochs=${TNREC_DEMO_EPOCHS:-8}
min_auc=${TNREC_DEMO_MIN_AUC:-0.9}

bash scripts/deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)"
tnrec=build/bin/tnrec

rm -rf "$out"
mkdir -p "$out"
now() { date +%s.%N; }
t0=$(now)
ts=$t0
step() { echo; echo "== $*"; }
took() { # took NAME: seconds since the previous mark
    local t
    t=$(now)
    timings+=("$(awk -v a="$t" -v b="$ts" -v n="$1" 'BEGIN { printf "%-6s %6.1f s", n, a - b }')")
    ts=$t
}
timings=()
step "tnrec synth: $samples synthetic TorNet samples, a third of them TOR"
$tnrec synth "$out/tornet" --samples "$samples" --seed 1 --tor-fraction 0.33
took synth
step "tnrec build: train split (15 % of its storms held out for validation) and test split to float16 shards"
$tnrec build "$out/tornet" --split train --holdout 0.15 -o "$out/train"
$tnrec build "$out/tornet" --split train --holdout 0.15 --held-out -o "$out/val"
$tnrec build "$out/tornet" --split test -o "$out/test"
took build
$tnrec dump "$out/train" | sed -n '2p;7,8p'
$tnrec dump "$out/val" | sed -n '2p;7,8p'
$tnrec verify "$out/train" "$out/val" "$out/test"
took verify
step "tnrec train: the tiny preset, $epochs epochs, validated on the held-out storms"
$tnrec train "$out/train" --val "$out/val" -o "$out/run" --model tiny \
    --epochs "$epochs" --batch 8 --seed 1
took train
step "tnrec eval: the epoch best on validation (best.tnck), once, on the untouched test split"
$tnrec eval "$out/run" "$out/test" --json > "$out/eval.json"
/usr/bin/python3 - "$out/eval.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
f = lambda v: "   n/a" if v is None else "%6.4f" % v
keys = ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "far", "f1", "csi")
print("%-8s %5s " % ("test", "n") + " ".join("%9s" % k for k in keys))
rows = [("all", m)] + sorted(m["categories"].items())
for name, r in rows:
    print("%-8s %5d " % (name, r["n"]) + " ".join("%9s" % f(r.get(k)) for k in keys))
PY
took eval
echo
echo "== timings"
printf '%s\n' "${timings[@]}"
awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "total  %6.1f s (synth to eval)\n", a - b }'
auc=$(/usr/bin/python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))["roc_auc"]; print("nan" if v is None else "%.4f" % v)' "$out/eval.json")
if /usr/bin/python3 -c 'import sys; a = float(sys.argv[1]); sys.exit(0 if a == a and a >= float(sys.argv[2]) else 1)' "$auc" "$min_auc"; then
    echo "demo: test ROC-AUC $auc >= $min_auc (metrics in $out/eval.json)"
else
    echo "demo: FAIL: test ROC-AUC $auc < $min_auc (metrics in $out/eval.json)" >&2
    exit 1
fi

# Pictures, when this tnrec draws (cairo): the run's report on the test
# split and one test sample. They do not change the pass rule above.
if $tnrec --version | grep -qw cairo; then
    step "tnrec report and tnrec plot: pictures of the run"
    if $tnrec report "$out/run" --eval "$out/test" -o "$out/report.html" >/dev/null &&
        $tnrec plot "$out/test" --record 0 -o "$out/sample.png" >/dev/null; then
        echo "report  $out/report.html"
        echo "sample  $out/sample.png"
    else
        echo "demo: the pictures were not written (see the error above)" >&2
    fi
fi
