#!/usr/bin/env bash
# tests/ingest/test_scale.sh TNREC_BIN SCRATCH_DIR
# A dataset of 1,000 shards (one record each) under 'ulimit -n 256': build,
# verify, dump, the same build in 10 parts joined by 'tnrec merge' (equal to
# the whole build, shard for shard and manifest byte for byte), and one
# training epoch from it. Any command that holds a descriptor per shard
# runs out of descriptors here.
#
# 100 synthetic samples are written once and linked (hard links) under 10
# directories: 1,000 inputs with distinct keys for the cost of 100.
set -u
tnrec=$1
dir=$2
rm -rf "$dir" && mkdir -p "$dir" || exit 1
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }
step() { echo "-- $* ($SECONDS s)"; }

ulimit -n 256 || { echo "cannot lower the descriptor limit" >&2; exit 1; }
nshards=1000
copies=10

step "synth $((nshards / copies)) samples, $copies linked copies"
"$tnrec" synth "$dir/archive" --samples $((nshards / copies)) --seed 7 -j 2 --deflate-level 1 >/dev/null || exit 1
for k in $(seq 0 $((copies - 1))); do
    mkdir -p "$dir/inputs/c$k" && cp -al "$dir/archive/train" "$dir/archive/test" "$dir/inputs/c$k/" || exit 1
done

opts=(--frames 1 --variables DBZ --dtype uint8 --shard-records 1 -j 2 -q)
step "build the whole dataset"
"$tnrec" build "$dir/inputs" "${opts[@]}" -o "$dir/whole" || die "build failed"
n=$(find "$dir/whole" -name '*.tnr' | wc -l)
[ "$n" -eq "$nshards" ] || die "the build wrote $n shards, want $nshards"

step "verify and dump"
"$tnrec" verify -j 2 "$dir/whole" >"$dir/verify.out" 2>&1 || die "verify failed: $(tail -3 "$dir/verify.out")"
grep -q "^ok: $nshards records in $nshards shards" "$dir/verify.out" || die "verify said: $(tail -1 "$dir/verify.out")"
"$tnrec" dump "$dir/whole" >"$dir/dump.out" 2>&1 || die "dump failed: $(tail -3 "$dir/dump.out")"
"$tnrec" dump --records "$dir/whole" >"$dir/records.out" 2>&1 || die "dump --records failed: $(tail -3 "$dir/records.out")"
n=$(grep -c 'c[0-9]/t' "$dir/records.out")
[ "$n" -eq "$nshards" ] || die "dump --records listed $n records, want $nshards"

step "build in $copies parts and merge"
parts=()
for k in $(seq 0 $((copies - 1))); do
    "$tnrec" build "$dir/inputs" "${opts[@]}" --part "$k/$copies" -o "$dir/part$k" || die "part $k failed"
    parts+=("$dir/part$k")
done
"$tnrec" merge "${parts[@]}" -o "$dir/merged" >"$dir/merge.out" 2>&1 || die "merge failed: $(tail -3 "$dir/merge.out")"
cmp -s "$dir/whole/manifest.json" "$dir/merged/manifest.json" || die "the merged manifest differs from the whole build's"
for f in "$dir"/whole/*.tnr; do
    cmp -s "$f" "$dir/merged/${f##*/}" || { die "merged shard ${f##*/} differs from the whole build's"; break; }
done
"$tnrec" verify "$dir/merged" >"$dir/verify2.out" 2>&1 || die "verify of the merge failed: $(tail -3 "$dir/verify2.out")"

step "train one epoch"
"$tnrec" train "$dir/merged" --val "$dir/whole" -o "$dir/run" --model p144,k4,g,o --epochs 1 --batch 50 \
    --variables DBZ --frames 1 >"$dir/train.out" 2>&1 || die "train failed: $(tail -3 "$dir/train.out")"
[ "$(wc -l <"$dir/run/metrics.jsonl" 2>/dev/null)" = 1 ] || die "no epoch in metrics.jsonl"

step "done"
[ $fail -eq 0 ] && rm -rf "$dir"
exit $fail
