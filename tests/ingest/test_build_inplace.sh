#!/usr/bin/env bash
# tests/ingest/test_build_inplace.sh TNREC_BIN ALLOC_MODULE SCRATCH_DIR
# 'tnrec build --shard-size 1M -j 1' of 30 samples (20+ shards), a build in
# 2 parts joined by 'tnrec merge', then verify and dump, all with
# tests/alloc_inplace.c preloaded: realloc grows blocks in place where it
# can, so an array whose capacity is kept when the block did not move is
# overrun, and the allocator aborts the command naming the block.
set -u
tnrec=$1
module=$2
dir=$3
rm -rf "$dir" && mkdir -p "$dir" || exit 1
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }
run() { LD_PRELOAD="$module" "$tnrec" "$@"; }

"$tnrec" synth "$dir/archive" --samples 30 --seed 3 -j 2 >/dev/null || exit 1
run build "$dir/archive" --shard-size 1M -j 1 -q -o "$dir/whole" 2>"$dir/err" || die "build: $(tail -3 "$dir/err")"
n=$(find "$dir/whole" -name '*.tnr' | wc -l)
[ "$n" -ge 17 ] || die "the build wrote $n shards, want at least 17"
run build "$dir/archive" --shard-size 1M -j 1 -q --part 0/2 -o "$dir/p0" 2>"$dir/err" || die "part 0: $(tail -3 "$dir/err")"
run build "$dir/archive" --shard-size 1M -j 1 -q --part 1/2 -o "$dir/p1" 2>"$dir/err" || die "part 1: $(tail -3 "$dir/err")"
run merge "$dir/p0" "$dir/p1" -o "$dir/merged" >/dev/null 2>"$dir/err" || die "merge: $(tail -3 "$dir/err")"
for d in whole merged; do
    run verify "$dir/$d" >"$dir/out" 2>&1 || die "verify $d: $(tail -3 "$dir/out")"
    run dump --records "$dir/$d" >"$dir/out" 2>&1 || die "dump $d: $(tail -3 "$dir/out")"
done
[ $fail -eq 0 ] && rm -rf "$dir"
exit $fail
