#!/bin/sh
# tests/train/cli_cuda_libs.sh: commands that need no GPU do not load the
# CUDA libraries; --device cuda loads them (built with CUDA), and a
# missing CUDA module makes it fail with a clear error, leaving nothing.
# What the dynamic loader opens is read from LD_DEBUG=files.
# Exits 77 (skipped) in a build without CUDA.
# usage: cli_cuda_libs.sh TNREC FIXTURE_PROGRAM WORKDIR HAVE_CUDA
set -eu
TNREC=$1 FIXTURE=$2 WORK=$3 HAVE_CUDA=$4
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; exit 1; }
export OMP_NUM_THREADS=1
unset TNREC_CUDA_MODULE
"$FIXTURE" "$WORK/data" 12 5
CUDA_LIBS='libcudart|libcublas|libcudnn|libnccl|libtnrec_cuda'

# loaded NAME CMD...: runs CMD with LD_DEBUG=files; the loader's log is
# in $WORK/NAME.log. Fails if CMD fails or the log is empty.
loaded() {
    name=$1; shift
    LD_DEBUG=files "$@" > "$WORK/$name.out" 2> "$WORK/$name.log" || fail "$name: exit $?"
    grep -q "file=libtnrec.so" "$WORK/$name.log" || fail "$name: no loader log (LD_DEBUG unsupported?)"
}
loaded version "$TNREC" --version
if [ "$HAVE_CUDA" = 1 ]; then
    grep -q "^features:.* cuda" "$WORK/version.out" || fail "--version does not list cuda"
fi
loaded dump "$TNREC" dump "$WORK/data"
loaded dump_records "$TNREC" dump --records "$WORK/data/shard-00000.tnr"
loaded verify "$TNREC" verify "$WORK/data"
for name in version dump dump_records verify; do
    if grep -E "file=.*($CUDA_LIBS)" "$WORK/$name.log"; then fail "'tnrec $name' loaded a CUDA library"; fi
done

M="c4,g,o"
if [ "$HAVE_CUDA" = 1 ]; then
    # The first GPU call loads the module and, through it, the CUDA
    # libraries (with or without a GPU to run on).
    LD_DEBUG=files "$TNREC" train "$WORK/data" -o "$WORK/gpu" --model "$M" --epochs 1 --batch 4 --device cuda \
        > /dev/null 2> "$WORK/train.log" || true
    for lib in libtnrec_cuda libcudnn libcublas libnccl; do
        grep -q "file=.*$lib" "$WORK/train.log" || fail "--device cuda did not load $lib"
    done
    # A missing module: a clear refusal, no run directory.
    set +e
    TNREC_CUDA_MODULE="$WORK/missing/libtnrec_cuda.so" "$TNREC" train "$WORK/data" -o "$WORK/gpu2" --model "$M" \
        --epochs 1 --device cuda > /dev/null 2> "$WORK/err.txt"; rc=$?
    set -e
    cat "$WORK/err.txt"
    [ $rc -eq 1 ] || fail "missing module: exit $rc"
    grep -q "CUDA module '$WORK/missing/libtnrec_cuda.so'" "$WORK/err.txt" || fail "the error does not name the module"
    grep -q "^hint: " "$WORK/err.txt" || fail "no hint"
    [ ! -e "$WORK/gpu2" ] || fail "a refused GPU run left a run directory"
else
    echo "cli_cuda_libs: SKIPPED: this build has no CUDA (the commands that need no GPU loaded no CUDA library; what --device cuda loads was not checked)"
    exit 77
fi
echo "cli_cuda_libs: passed"
