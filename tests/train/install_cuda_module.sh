#!/bin/sh
# tests/train/install_cuda_module.sh: `cmake --install` puts the CUDA
# module beside the installed libtnrec, and the installed tnrec loads that
# one (not the build tree's) on --device cuda, and no CUDA library before.
# Exits 77 (skipped) in a build without CUDA.
# usage: install_cuda_module.sh CMAKE BUILD_DIR WORKDIR HAVE_CUDA FIXTURE_PROGRAM
set -eu
CMAKE=$1 BUILD=$2 WORK=$3 HAVE_CUDA=$4 FIXTURE=$5
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; exit 1; }
unset TNREC_CUDA_MODULE
DESTDIR="$WORK/dest" "$CMAKE" --install "$BUILD" --prefix /opt/tnrec > "$WORK/install.log" || fail "cmake --install"
root="$WORK/dest/opt/tnrec"
tnrec=$root/bin/tnrec
[ -x "$tnrec" ] || fail "no installed tnrec"
module=$(find "$root" -name libtnrec_cuda.so)
if [ "$HAVE_CUDA" = 0 ]; then
    [ -z "$module" ] || fail "a build without CUDA installed $module"
    # What the test is for (the installed module found and loaded) cannot
    # be checked without one.
    echo "install_cuda_module: SKIPPED: this build has no CUDA module (configured without the CUDA toolkit); checked only that none was installed"
    exit 77
fi
[ -n "$module" ] || fail "libtnrec_cuda.so not installed"
[ -e "$(dirname "$module")/libtnrec.so.0" ] || fail "the module is not beside libtnrec: $module"
LD_DEBUG=files "$tnrec" --version > /dev/null 2> "$WORK/version.log" || fail "installed tnrec --version"
if grep -E "file=.*(libtnrec_cuda|libcudnn|libcublas|libnccl)" "$WORK/version.log"; then
    fail "installed tnrec --version loaded a CUDA library"
fi
"$FIXTURE" "$WORK/data" 8 5
LD_DEBUG=files "$tnrec" train "$WORK/data" -o "$WORK/run" --model c4,g,o --epochs 1 --batch 4 --device cuda \
    > /dev/null 2> "$WORK/train.log" || true
opened=$(grep -o "file=[^ ]*libtnrec_cuda.so" "$WORK/train.log" | sort -u)
[ -n "$opened" ] || fail "no module was loaded"
for f in $opened; do
    case "$f" in
    "file=$root/"*) ;;
    *) fail "not the installed module was loaded: $f" ;;
    esac
done
echo "install_cuda_module: passed"
