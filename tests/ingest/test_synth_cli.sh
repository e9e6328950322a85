#!/usr/bin/env bash
# tests/ingest/test_synth_cli.sh TNREC_BIN SCRATCH_DIR
# `tnrec synth` arguments and refusals: exit 2 for usage errors, 1 for
# failures, a message naming the path, --force replacing an archive.
set -u
tnrec=$1
dir=$2
rm -rf "$dir" && mkdir -p "$dir" || exit 1
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }

expect() { # expect CODE PATTERN ARGS...: exit code and a stderr pattern
    local code=$1 pat=$2
    shift 2
    "$tnrec" synth "$@" >"$dir/out" 2>"$dir/err"
    local rc=$?
    [ "$rc" -eq "$code" ] || die "'synth $*' exited $rc, want $code: $(cat "$dir/err")"
    grep -q -- "$pat" "$dir/err" || die "'synth $*' said '$(cat "$dir/err")', want /$pat/"
}

"$tnrec" synth --help | grep -q -- "--samples" || die "help lacks --samples"
expect 2 "samples" "$dir/x"
expect 2 "at least 1" "$dir/x" --samples 0
expect 2 "seed must be at least 0, got -3" "$dir/x" --samples 2 --seed -3
expect 2 "seed must be an integer (at least 0), got 'abc'" "$dir/x" --samples 2 --seed abc
expect 2 "samples must be an integer (at least 1), got '1e3'" "$dir/x" --samples 1e3
expect 2 "j must be 1..1024, got 0" "$dir/x" --samples 2 -j 0
expect 2 "unknown option" "$dir/x" --samples 2 --bogus
expect 2 "output directory" --samples 2
expect 2 "needs a value" "$dir/x" --samples
expect 2 "0 < F < 1" "$dir/x" --samples 2 --tor-fraction 0
expect 2 "0 < F < 1" "$dir/x" --samples 2 --tor-fraction 1
expect 2 "tor-fraction takes a number with 0 < F < 1, got 'x'" "$dir/x" --samples 2 --tor-fraction x
expect 2 "tor-fraction takes a number with 0 < F < 1, got '0.5q'" "$dir/x" --samples 2 --tor-fraction 0.5q
expect 2 "needs a value" "$dir/x" --samples 2 --tor-fraction
"$tnrec" synth --help | grep -q -- "--tor-fraction" || die "help lacks --tor-fraction"
[ -e "$dir/x" ] && die "a usage error created the output directory"

: > "$dir/file"
expect 1 "$dir/file/sub" "$dir/file/sub" --samples 1
expect 1 "$dir/file" "$dir/file" --samples 1

"$tnrec" synth "$dir/r" --samples 6 --seed 1 -j2 >"$dir/out" 2>"$dir/err" || die "synth failed: $(cat "$dir/err")"
grep -q "wrote 6 samples" "$dir/out" || die "no summary: $(cat "$dir/out")"
grep -q "samples/s" "$dir/out" || die "no rate in the summary"
expect 1 "already exists" "$dir/r" --samples 3 --seed 2
expect 1 "hint: pass --force" "$dir/r" --samples 3 --seed 2
cp "$dir/r/catalog.csv" "$dir/old_catalog"
"$tnrec" synth "$dir/r" --samples 3 --seed 2 --force >/dev/null 2>"$dir/err" || die "--force failed: $(cat "$dir/err")"
n=$(find "$dir/r" -name '*.nc' | wc -l)
[ "$n" -eq 3 ] || die "after --force $n files, want 3 (old samples must go)"
tail -n +2 "$dir/r/catalog.csv" | wc -l | grep -qx 3 || die "after --force the catalog does not have 3 rows"
cmp -s "$dir/old_catalog" "$dir/r/catalog.csv" && die "--force kept the old catalog"

[ "$fail" -eq 0 ] || exit 1
rm -rf "$dir"
echo "test_synth_cli: all checks passed"
