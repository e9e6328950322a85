#!/usr/bin/env bash
# tests/ingest/test_synth_determinism.sh TNREC_BIN SCRATCH_DIR
# The same seed gives byte-identical archives whatever -j; a sample does
# not depend on how many samples are generated; another seed gives other data.
set -u
tnrec=$1
dir=$2
rm -rf "$dir" && mkdir -p "$dir" || exit 1
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }

"$tnrec" synth "$dir/a" --samples 12 --seed 5 -j 1 >/dev/null || die "synth -j 1 failed"
"$tnrec" synth "$dir/b" --samples 12 --seed 5 -j 2 >/dev/null || die "synth -j 2 failed"
"$tnrec" synth "$dir/c" --samples 12 --seed 6 -j 2 >/dev/null || die "synth seed 6 failed"
"$tnrec" synth "$dir/d" --samples 5 --seed 5 -j 2 >/dev/null || die "synth 5 samples failed"

n=$(find "$dir/a" -name '*.nc' | wc -l)
[ "$n" -eq 12 ] || die "expected 12 files in a, found $n"
cmp -s "$dir/a/catalog.csv" "$dir/b/catalog.csv" || die "catalogs differ between -j 1 and -j 2"
(cd "$dir/a" && find . -name '*.nc' | sort) > "$dir/list_a"
(cd "$dir/b" && find . -name '*.nc' | sort) > "$dir/list_b"
cmp -s "$dir/list_a" "$dir/list_b" || die "file names differ between -j 1 and -j 2"
while read -r f; do
    cmp -s "$dir/a/$f" "$dir/b/$f" || die "$f differs between -j 1 and -j 2"
done < "$dir/list_a"

# the first 5 samples of a 12-sample run are the 5 samples of a 5-sample run
head -n 6 "$dir/a/catalog.csv" | cmp -s - "$dir/d/catalog.csv" || die "catalog depends on --samples"
(cd "$dir/d" && find . -name '*.nc') | while read -r f; do
    cmp -s "$dir/a/$f" "$dir/d/$f" || echo "$f"
done > "$dir/diff_d"
[ -s "$dir/diff_d" ] && die "samples depend on --samples: $(cat "$dir/diff_d")"

# another seed: other names, other bytes
cmp -s "$dir/a/catalog.csv" "$dir/c/catalog.csv" && die "seeds 5 and 6 give the same catalog"
same=0
for f in "$dir"/a/*/*/*.nc; do
    for g in "$dir"/c/*/*/*.nc; do
        cmp -s "$f" "$g" && same=1
    done
done
[ "$same" -eq 0 ] || die "seeds 5 and 6 share a file"
# no temporary files left behind
left=$(find "$dir" -name '*.tmp.*' | wc -l)
[ "$left" -eq 0 ] || die "$left temporary files left"

[ "$fail" -eq 0 ] || exit 1
rm -rf "$dir"
echo "test_synth_determinism: all checks passed"
