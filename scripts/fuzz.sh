#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS [KIND...]]: build the libFuzzer targets with clang
# and run each (or only fuzz_KIND for the KINDs named: shard, manifest,
# ingest, keras) for SECONDS (default 60) on a copy of its corpus in
# tests/fuzz/corpus/KIND/. New inputs stay in build-fuzz/; a crash leaves
# crash-* files there and fails.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
kinds=" $* "
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DTNREC_FUZZ=ON -DBUILD_TESTING=ON \
  -DTNREC_WITH_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)"
found=0
for target in build-fuzz/tests/*/fuzz_*; do
  [ -x "$target" ] || continue
  case "$target" in *_replay) continue;; esac
  name=$(basename "$target"); kind=${name#fuzz_}
  if [ "$kinds" != "  " ] && [ "${kinds#* $kind }" = "$kinds" ]; then continue; fi
  target=$(realpath "$target")
  found=1
  work=build-fuzz/corpus-$kind
  mkdir -p "$work"
  if [ -d "tests/fuzz/corpus/$kind" ]; then cp -n tests/fuzz/corpus/$kind/* "$work"/ 2>/dev/null || true; fi
  # HDF5 leaks inside its own error path on damaged files: not ours to fix.
  lsan=""
  if [ "$kind" = ingest ] || [ "$kind" = keras ]; then lsan="suppressions=$PWD/tests/ingest/test_build_lsan.supp"; fi
  echo "fuzz: $name for ${secs}s"
  (cd build-fuzz && LSAN_OPTIONS="$lsan" "$target" -max_total_time="$secs" -rss_limit_mb=2048 "corpus-$kind" \
      -artifact_prefix="./crash-$kind-")
done
if [ "$found" = 0 ]; then echo "fuzz: no libFuzzer targets were built" >&2; exit 1; fi
