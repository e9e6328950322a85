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
# --tor-fraction: the same bytes at any -j, the catalog's TOR share close
# to F, NUL:WRN still about 61:32, and other samples than the default mix
"$tnrec" synth "$dir/f1" --samples 40 --seed 5 --tor-fraction 0.4 -j 1 >/dev/null || die "synth --tor-fraction -j 1 failed"
"$tnrec" synth "$dir/f2" --samples 40 --seed 5 --tor-fraction 0.4 -j 2 >/dev/null || die "synth --tor-fraction -j 2 failed"
cmp -s "$dir/f1/catalog.csv" "$dir/f2/catalog.csv" || die "--tor-fraction catalogs differ between -j 1 and -j 2"
(cd "$dir/f1" && find . -name '*.nc' | sort) > "$dir/list_f1"
(cd "$dir/f2" && find . -name '*.nc' | sort) > "$dir/list_f2"
cmp -s "$dir/list_f1" "$dir/list_f2" || die "--tor-fraction file names differ between -j 1 and -j 2"
while read -r f; do
    cmp -s "$dir/f1/$f" "$dir/f2/$f" || die "$f differs between -j 1 and -j 2 with --tor-fraction"
done < "$dir/list_f1"
tor=$(awk -F, 'NR > 1 && $5 == "TOR"' "$dir/f1/catalog.csv" | wc -l)
nul=$(awk -F, 'NR > 1 && $5 == "NUL"' "$dir/f1/catalog.csv" | wc -l)
wrn=$(awk -F, 'NR > 1 && $5 == "WRN"' "$dir/f1/catalog.csv" | wc -l)
# 40 * 0.4 = 16 TOR; the Weyl sequence keeps every share within 2 samples
[ "$tor" -ge 14 ] && [ "$tor" -le 18 ] || die "--tor-fraction 0.4 gave $tor TOR of 40"
# the other 24: 61/93 of them NUL (15.7), 32/93 WRN (8.3)
[ "$nul" -ge 14 ] && [ "$nul" -le 18 ] || die "--tor-fraction 0.4 gave $nul NUL of 40"
[ "$wrn" -ge 6 ] && [ "$wrn" -le 10 ] || die "--tor-fraction 0.4 gave $wrn WRN of 40"
tor_default=$(awk -F, 'NR > 1 && $5 == "TOR"' "$dir/a/catalog.csv" | wc -l)
[ "$tor_default" -le 2 ] || die "default mix gave $tor_default TOR of 12"

# no temporary files left behind
left=$(find "$dir" -name '*.tmp.*' | wc -l)
[ "$left" -eq 0 ] || die "$left temporary files left"

[ "$fail" -eq 0 ] || exit 1
rm -rf "$dir"
echo "test_synth_determinism: all checks passed"
