#!/usr/bin/env bash
# scripts/test.sh: configure, build (warnings as errors) and run every test.
#   scripts/test.sh              normal build in build/
#   scripts/test.sh --sanitize   ASan + UBSan build in build-asan/
#   scripts/test.sh --tests REGEX  only the tests whose names match REGEX
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build
flags=(-DTNREC_WERROR=ON)
sanitize=0 select=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) sanitize=1; shift ;;
    --tests) [ $# -ge 2 ] || { echo "test.sh: --tests needs a REGEX" >&2; exit 2; }
             select=(-R "$2"); shift 2 ;;
    *) echo "test.sh: unknown option '$1' (--sanitize, --tests REGEX)" >&2; exit 2 ;;
  esac
done
if [ "$sanitize" = 1 ]; then
  dir=build-asan
  flags+=(-DTNREC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
  # Leak checks are on; tests run the real binary many times.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
fi
# mpirun refuses root unless told; tests run as whoever runs this script.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

cmake -S . -B "$dir" "${flags[@]}"
cmake --build "$dir" -j"$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j2 "${select[@]}"
