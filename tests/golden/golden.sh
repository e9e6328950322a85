#!/usr/bin/env bash
# golden.sh TNREC EXPECTED [--record | --determinism-only]
# Byte-identity of tnrec's outputs across changes to the code: a small,
# seeded chain (synth, build in every encoding, train, eval, predict, dump)
# is run and the SHA-256 of each output is compared with EXPECTED.
#
# Shards, manifests and dump output do not depend on the CPU. Checkpoints,
# eval JSON and predict CSV do: the convolution kernels are compiled for
# AVX-512, AVX2+FMA and plain x86-64 and chosen at run time, and each
# rounds differently. EXPECTED therefore holds those hashes per ISA
# ("avx512f:", "avx2:" or "default:" before the name). On a CPU whose ISA
# has no recorded hashes, the model outputs are checked for determinism
# (two runs, same bytes) instead, and the script says so.
#
# --determinism-only checks the model outputs for determinism even where
# hashes are recorded (the sanitizer build, compiled without optimisation).
# --record rewrites EXPECTED's lines for this CPU's ISA. Do that only for
# a change that is meant to change outputs, and say so in its commit.
set -euo pipefail
tnrec=$1 expected=$2 record=${3-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

isa=default
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
case " $flags " in
  *" avx512f "*) isa=avx512f ;;
  *" avx2 "*" fma "*|*" fma "*" avx2 "*) isa=avx2 ;;
esac

cd "$work"
"$tnrec" synth tornet --samples 48 --seed 5 --tor-fraction 0.33 >/dev/null
for dt in float16 float32 uint8; do
  "$tnrec" build tornet --split train --dtype "$dt" -j 2 -o "train-$dt" --quiet
  "$tnrec" build tornet --split test --dtype "$dt" -j 1 -o "test-$dt" --quiet
  "$tnrec" dump "train-$dt" > "dump-$dt.txt"
  "$tnrec" dump --json --record 3 "test-$dt" > "dump-record-$dt.json"
done
"$tnrec" build tornet --split train --holdout 0.25 --dtype float16 -o holdout --quiet

model_chain() { # model_chain DIR: train, eval and predict into DIR
  mkdir -p "$1"
  "$tnrec" train train-float16 --val test-float16 -o "$1/run" --model tiny \
    --epochs 2 --batch 8 --seed 1 -j 2 --quiet >/dev/null
  "$tnrec" eval "$1/run" test-float16 --json > "$1/eval.json"
  "$tnrec" predict "$1/run/last.tnck" test-float16 -o "$1/predict.csv" --quiet >/dev/null
}
model_chain m1

hashes() { # the name and SHA-256 of each output, one per line
  local f
  for f in train-*/* test-*/* holdout/* dump-*; do
    printf 'any:%s %s\n' "$f" "$(sha256sum < "$f" | cut -d' ' -f1)"
  done
  for f in m1/run/best.tnck m1/run/epoch-0001.tnck m1/run/epoch-0002.tnck \
           m1/run/last.tnck m1/eval.json m1/predict.csv; do
    printf '%s:%s %s\n' "$isa" "${f#m1/}" "$(sha256sum < "$f" | cut -d' ' -f1)"
  done
}
hashes | LC_ALL=C sort > got.txt

if [ "$record" = --record ]; then
  { grep -v -e '^any:' -e "^$isa:" "$expected" 2>/dev/null || true; cat got.txt; } |
    LC_ALL=C sort > new.txt
  cp new.txt "$expected"
  echo "golden: recorded $(wc -l < got.txt) hashes for any CPU and $isa in $expected"
  exit 0
fi

fail=0
want() { grep -e "^$1:" "$expected" | LC_ALL=C sort; }
if ! diff <(want any) <(grep '^any:' got.txt); then
  echo "golden: shard, manifest or dump output changed (< expected, > now)" >&2
  fail=1
fi
if [ -n "$(want "$isa")" ] && [ "$record" != --determinism-only ]; then
  if ! diff <(want "$isa") <(grep "^$isa:" got.txt); then
    echo "golden: checkpoint, eval or predict output changed on $isa (< expected, > now)" >&2
    fail=1
  fi
else
  echo "golden: model hashes not compared ($isa, ${record:-none recorded}); checking that two runs give the same bytes"
  model_chain m2
  for f in run/best.tnck run/last.tnck eval.json predict.csv; do
    cmp "m1/$f" "m2/$f" || { echo "golden: $f differs between two identical runs" >&2; fail=1; }
  done
fi
[ $fail = 0 ] && echo "golden: ok, $(wc -l < got.txt) outputs checked ($isa)"
exit $fail
