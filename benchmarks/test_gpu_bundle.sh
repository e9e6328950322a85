#!/usr/bin/env bash
# benchmarks/test_gpu_bundle.sh BUILD_DIR WORK_DIR: the GPU bundle
# (benchmarks/gpu_bundle.sh --from-build BUILD_DIR) unpacked elsewhere runs
# on its own: every packed ELF file resolves everything but glibc and CUDA
# inside the bundle, with no LD_LIBRARY_PATH and nothing from the build
# tree; its run paths are $ORIGIN-relative; `tnrec --version`, a fixture,
# `tnrec verify` and a short CPU training run work from another folder;
# with the CUDA libraries that gpu_check.sh --find-libs finds, the CUDA
# module loads and the GPU programs report SKIPPED (77) for want of a
# device, not for a library. Exit 77 when BUILD_DIR has no CUDA module.
set -euo pipefail
B=$(cd "$1" && pwd) WORK=$2
HERE=$(cd "$(dirname "$0")" && pwd)
rm -rf "$WORK" && mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
fail() { echo "FAIL: $*"; exit 1; }
if [ ! -e "$B/libtnrec_cuda.so" ]; then
  echo "gpu_bundle: SKIPPED: $B was built without CUDA (no libtnrec_cuda.so)"
  exit 77
fi
command -v patchelf > /dev/null || fail "patchelf is missing (scripts/deps.sh installs it)"

set +e
bash "$HERE/gpu_bundle.sh" --from-build "$B" "$WORK/tnrec-gpu.tar.gz"
rc=$?
set -e
[ $rc -eq 77 ] && { echo "gpu_bundle: SKIPPED: nothing to pack"; exit 77; }
[ $rc -eq 0 ] || fail "gpu_bundle.sh exit $rc"

mkdir "$WORK/elsewhere"
tar -C "$WORK/elsewhere" -xzf "$WORK/tnrec-gpu.tar.gz"
R=$WORK/elsewhere/tnrec-gpu
for f in bin/tnrec bin/test_gpu_net bin/tnrec_train_fixture bin/bench_gpu_train bin/bench_train_loader \
         lib/libtnrec.so.0 lib/libtnrec_cuda.so lib/libstdc++.so.6 lib/libgcc_s.so.1 \
         benchmarks/gpu_check.sh benchmarks/bench_gpu_torch.py tests/train/cli_gpu.sh tests/train/ckpt_loss_scale.py BUNDLE.txt; do
  [ -f "$R/$f" ] || fail "$f is not in the bundle"
done
[ -z "$(find "$R" -type l)" ] || fail "the bundle holds symbolic links"
grep -q '^cuda_needs: .*libcudnn.so.9' "$R/BUNDLE.txt" || fail "BUNDLE.txt does not list the CUDA libraries needed"

GLIBC_RE='^(ld-linux-x86-64\.so|linux-vdso\.so|libc\.so|libm\.so|libmvec\.so|libpthread\.so|libdl\.so|librt\.so|libresolv\.so|libutil\.so|libanl\.so|libBrokenLocale\.so|libthread_db\.so|libc_malloc_debug\.so|libnss_[a-z0-9]+\.so|libnsl\.so\.1$)'
CUDA_RE='^(libcuda|libcudart|libcublas|libcublasLt|libcudnn(_[a-z_]+)?|libnccl|libnvrtc(-builtins)?|libnvJitLink|libnvidia-[a-z0-9-]+)\.so'
RR=$(readlink -f "$R")
n=0
for f in "$R"/bin/* "$R"/lib/*; do
  rp=$(patchelf --print-rpath "$f")
  case "$f" in
    "$R"/bin/*) [ "$rp" = '$ORIGIN/../lib' ] || fail "${f#"$R"/} has run path '$rp'" ;;
    *) [ "$rp" = '$ORIGIN' ] || fail "${f#"$R"/} has run path '$rp'" ;;
  esac
  while read -r name arrow path rest; do
    [ "$arrow" = "=>" ] || continue
    if [[ $name =~ $GLIBC_RE || $name =~ $CUDA_RE ]]; then
      case "$path" in "$B"/*) fail "${f#"$R"/}: $name from the build tree" ;; esac
      continue
    fi
    [ "$path" != not ] || fail "${f#"$R"/}: $name not found"
    path=$(readlink -f "$path")
    case "$path" in "$RR"/lib/*) ;; *) fail "${f#"$R"/}: $name resolves to $path, outside the bundle" ;; esac
  done < <(cd / && env -u LD_LIBRARY_PATH ldd "$f")
  n=$((n + 1))
done
echo "gpu_bundle: $n ELF files, each resolving its non-glibc, non-CUDA libraries inside the bundle"

# The programs, from another folder, with no library path.
cd "$WORK"
run() { env -u LD_LIBRARY_PATH "$@"; }
run "$R/bin/tnrec" --version | grep -q "cuda" || fail "tnrec --version does not list cuda"
run "$R/bin/tnrec_train_fixture" "$WORK/data" 24 3 > /dev/null || fail "the bundled fixture program"
run "$R/bin/tnrec" verify "$WORK/data" > /dev/null || fail "tnrec verify on the fixture"
OMP_NUM_THREADS=2 run "$R/bin/tnrec" train "$WORK/data" -o "$WORK/cpu" --model "c8,p122,c8,g,d8,o" --epochs 1 \
  --batch 8 > /dev/null || fail "a CPU training run from the bundle"
run "$R/bin/bench_train_loader" "$WORK/data" --batch 8 --epochs 1 --threads 2 | grep -q samples_per_s ||
  fail "bench_train_loader from the bundle"

# The CUDA libraries as the GPU check finds them (CUDA's folders here).
cuda=$(bash "$R/benchmarks/gpu_check.sh" --find-libs --prebuilt "$R" 2> "$WORK/find_libs.txt")
sed 's/^/  /' "$WORK/find_libs.txt"
[ -n "$cuda" ] || fail "gpu_check.sh --find-libs found no CUDA library folder"
case ":$cuda:" in *":$B"*) fail "the CUDA library path points into the build tree: $cuda" ;; esac
! LD_LIBRARY_PATH=$cuda ldd "$R/lib/libtnrec_cuda.so" | grep "not found" || fail "the CUDA module has unresolved libraries"

# No GPU here: each GPU program must skip because there is no device.
skip_check() {  # NAME COMMAND...: exit 77, for want of a device
  local name=$1 rc reason=1
  shift
  [ "$name" = cli_gpu ] && reason=0   # its SKIPPED line quotes its last check, not the device error
  set +e
  LD_LIBRARY_PATH=$cuda TNREC_TEST_TMP=$WORK/tmp_$name timeout 300 "$@" > "$WORK/$name.out" 2>&1
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    echo "gpu_bundle: $name passed: a GPU is here, so nothing to check about skipping"
    return
  fi
  [ $rc -eq 77 ] || { cat "$WORK/$name.out"; fail "$name exit $rc, not 77"; }
  if grep -q "cannot load the CUDA module\|is missing\|comes from another build" "$WORK/$name.out"; then
    cat "$WORK/$name.out"
    fail "$name skipped because the CUDA module did not load"
  fi
  [ $reason = 0 ] || grep -q -i "no usable CUDA device" "$WORK/$name.out" ||
    { cat "$WORK/$name.out"; fail "$name skipped for another reason"; }
  echo "gpu_bundle: $name SKIPPED as it should: $(grep -i -m1 'skipped' "$WORK/$name.out" | cut -c1-160)"
}
skip_check test_gpu_net "$R/bin/test_gpu_net"
skip_check bench_gpu_train "$R/bin/bench_gpu_train" --model seed3d --batch 2 --height 24 --width 48
set +e
LD_LIBRARY_PATH=$cuda "$R/bin/tnrec" train "$WORK/data" -o "$WORK/gpu" --model "c8,p122,c8,g,d8,o" --epochs 1 \
  --device cuda > /dev/null 2> "$WORK/train_cuda.err"
rc=$?
set -e
if [ $rc -ne 0 ]; then
  grep -q "no usable CUDA device" "$WORK/train_cuda.err" || { cat "$WORK/train_cuda.err"; fail "tnrec train --device cuda: exit $rc"; }
  echo "gpu_bundle: tnrec train --device cuda refused as it should: $(head -1 "$WORK/train_cuda.err" | cut -c1-120)"
fi
skip_check cli_gpu sh "$R/tests/train/cli_gpu.sh" "$R/bin/tnrec" "$R/bin/tnrec_train_fixture" "$WORK/tmp_cli_gpu_work" \
  "$(command -v python3)" "$R/tests/train/ckpt_loss_scale.py"

size=$(stat -c %s "$WORK/tnrec-gpu.tar.gz")
echo "gpu_bundle: passed ($(awk -v s="$size" 'BEGIN { printf "%.1f MB", s / 1e6 }') compressed)"
rm -rf "$WORK/elsewhere" "$WORK/data" "$WORK/cpu" "$WORK"/tmp_*
