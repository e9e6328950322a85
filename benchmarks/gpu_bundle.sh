#!/usr/bin/env bash
# benchmarks/gpu_bundle.sh [--from-build DIR] [--build-dir DIR] OUT.tar.gz
#
# Packs what a GPU machine needs to check tnrec without building it there
# (a machine with the CUDA libraries but none of tnrec's own dependencies):
#
#   tnrec-gpu/bin/       tnrec, test_gpu_net, tnrec_train_fixture,
#                        bench_gpu_train, bench_train_loader
#   tnrec-gpu/lib/       libtnrec.so.0, libtnrec_cuda.so and every shared
#                        library they need, except glibc's own and CUDA's
#                        (cudart, cuBLAS/cuBLASLt, cuDNN, NCCL, the driver)
#   tnrec-gpu/benchmarks/  gpu_check.sh, bench_gpu_torch.py
#   tnrec-gpu/tests/train/ cli_gpu.sh, ckpt_loss_scale.py
#   tnrec-gpu/BUNDLE.txt   what was built, from what, and where each library came from
#
# Every ELF file gets an $ORIGIN-relative run path (bin/: $ORIGIN/../lib,
# lib/: $ORIGIN), so the bundle runs from wherever it is unpacked; the
# CUDA libraries come from the machine (benchmarks/gpu_check.sh --prebuilt
# finds them and sets LD_LIBRARY_PATH).
#
# By default it builds in its own folder (--build-dir, default
# build-gpu-bundle): Release, CUDA kernels for sm_90 only, MPI and curl off.
# --from-build DIR packs an existing build instead (all five programs must
# be built there); a build with MPI brings Open MPI's libraries along but
# not its run-time plugins, so use it for checks, not for mpirun.
#
# Needs patchelf (scripts/deps.sh), ldd, strip. Exit status: 0 written,
# 77 no CUDA here (no nvcc, or DIR was built without CUDA), 1 failure,
# 2 usage.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
usage() { sed -n '2p' "$0" | sed 's/^# /usage: /' >&2; exit 2; }
from="" bdir="$SRC/build-gpu-bundle" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --from-build) [ $# -ge 2 ] || usage; from=$2; shift 2 ;;
    --build-dir) [ $# -ge 2 ] || usage; bdir=$2; shift 2 ;;
    -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gpu_bundle: unknown option '$1'" >&2; usage ;;
    *) [ -z "$out" ] || usage; out=$1; shift ;;
  esac
done
[ -n "$out" ] || usage
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
die() { echo "gpu_bundle: $*" >&2; exit 1; }
command -v patchelf > /dev/null || die "patchelf is missing (scripts/deps.sh installs it)"
t0=$SECONDS

if [ -n "$from" ]; then
  B=$(cd "$from" && pwd)
  if [ ! -e "$B/libtnrec_cuda.so" ]; then
    echo "gpu_bundle: $B has no CUDA module (built without CUDA): nothing to pack"
    exit 77
  fi
else
  if ! command -v nvcc > /dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
    echo "gpu_bundle: no CUDA toolkit here (nvcc not found): nothing to pack"
    exit 77
  fi
  command -v nvcc > /dev/null || export PATH="/usr/local/cuda/bin:$PATH"
  B=$bdir
  echo "gpu_bundle: building in $B (Release, sm_90, MPI and curl off)"
  mkdir -p "$B"
  cmake -S "$SRC" -B "$B" -DCMAKE_BUILD_TYPE=Release -DTNREC_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DTNREC_WITH_MPI=OFF -DTNREC_WITH_CURL=OFF -DBUILD_TESTING=ON > "$B/gpu_bundle.configure.log" 2>&1 ||
    { tail -20 "$B/gpu_bundle.configure.log" >&2; die "configure failed (log: $B/gpu_bundle.configure.log)"; }
  cmake --build "$B" -j"${TNREC_BUNDLE_JOBS:-2}" --target tnrec_cli tnrec_cuda test_gpu_net tnrec_train_fixture \
    bench_gpu_train bench_train_loader > "$B/gpu_bundle.build.log" 2>&1 ||
    { tail -30 "$B/gpu_bundle.build.log" >&2; die "build failed (log: $B/gpu_bundle.build.log)"; }
  B=$(cd "$B" && pwd)
fi

# name in the bundle | file in the build
progs=("tnrec|$B/bin/tnrec" "test_gpu_net|$B/tests/train/test_gpu_net"
       "tnrec_train_fixture|$B/tests/train/tnrec_train_fixture"
       "bench_gpu_train|$B/benchmarks/bench_gpu_train" "bench_train_loader|$B/benchmarks/bench_train_loader")
for p in "${progs[@]}" "x|$B/libtnrec.so.0" "x|$B/libtnrec_cuda.so"; do
  [ -f "${p#*|}" ] || die "${p#*|} is missing: build the targets tnrec_cli tnrec_cuda test_gpu_net tnrec_train_fixture bench_gpu_train bench_train_loader in $B"
done

# Libraries left to the target machine: glibc's own, and CUDA's (the
# toolkit's or the driver's; they must match the driver there).
GLIBC_RE='^(ld-linux-x86-64\.so|linux-vdso\.so|libc\.so|libm\.so|libmvec\.so|libpthread\.so|libdl\.so|librt\.so|libresolv\.so|libutil\.so|libanl\.so|libBrokenLocale\.so|libthread_db\.so|libc_malloc_debug\.so|libnss_[a-z0-9]+\.so|libnsl\.so\.1$)'
CUDA_RE='^(libcuda|libcudart|libcublas|libcublasLt|libcudnn(_[a-z_]+)?|libnccl|libnvrtc(-builtins)?|libnvJitLink|libnvidia-[a-z0-9-]+)\.so'

stage=$(mktemp -d "${TMPDIR:-/tmp}/tnrec-gpu-bundle.XXXXXX")
trap 'rm -rf "$stage"' EXIT
R=$stage/tnrec-gpu
mkdir -p "$R/bin" "$R/lib" "$R/benchmarks" "$R/tests/train"
elfs=()
for p in "${progs[@]}"; do cp "${p#*|}" "$R/bin/${p%%|*}"; elfs+=("${p#*|}"); done
cp "$B/libtnrec.so.0" "$R/lib/libtnrec.so.0"
cp "$B/libtnrec_cuda.so" "$R/lib/libtnrec_cuda.so"
elfs+=("$B/libtnrec.so.0" "$B/libtnrec_cuda.so")
cp "$SRC/benchmarks/gpu_check.sh" "$SRC/benchmarks/bench_gpu_torch.py" "$R/benchmarks/"
cp "$SRC/tests/train/cli_gpu.sh" "$SRC/tests/train/ckpt_loss_scale.py" "$R/tests/train/"

# Every library the build's programs load (ldd gives the whole closure),
# resolved as the build itself resolves them.
declare -A lib_src=()
cuda_needs=()
for e in "${elfs[@]}"; do
  while read -r name path; do
    if [[ $name =~ $GLIBC_RE ]]; then continue; fi
    if [[ $name =~ $CUDA_RE ]]; then
      [[ " ${cuda_needs[*]} " == *" $name "* ]] || cuda_needs+=("$name")
      continue
    fi
    [ "$name" = libtnrec.so.0 ] && continue
    [ "$path" != not ] || die "$(basename "$e") needs $name, which is not found here"
    lib_src[$name]=$(readlink -f "$path")
  done < <(ldd "$e" | awk '$2 == "=>" { print $1, $3 }')
done
for name in "${!lib_src[@]}"; do cp "${lib_src[$name]}" "$R/lib/$name"; done
chmod -R u+w "$R"

# Our own files: no debug sections (a RelWithDebInfo build would double
# the size); then the run paths.
strip --strip-debug "$R"/bin/* "$R/lib/libtnrec.so.0" "$R/lib/libtnrec_cuda.so"
for f in "$R"/bin/*; do patchelf --set-rpath '$ORIGIN/../lib' "$f"; done
for f in "$R"/lib/*; do patchelf --set-rpath '$ORIGIN' "$f"; done

# Self-check: with nothing on the library path, each packed file resolves
# everything but glibc and CUDA inside the bundle.
bad=0 RR=$(readlink -f "$R")
for f in "$R"/bin/* "$R"/lib/*; do
  while read -r name path; do
    [[ $name =~ $GLIBC_RE || $name =~ $CUDA_RE ]] && continue
    [ "$path" = not ] || path=$(readlink -f "$path")
    case "$path" in "$RR"/lib/*) ;; *) echo "gpu_bundle: ${f#"$R"/} resolves $name to $path" >&2; bad=1 ;; esac
  done < <(env -u LD_LIBRARY_PATH ldd "$f" | awk '$2 == "=>" { print $1, $3 }')
done
[ "$bad" = 0 ] || die "the bundle is not self-contained"

# What it is.
cache() { sed -n "s/^$1:[A-Z]*=//p" "$B/CMakeCache.txt" | head -1; }
hdr_version() {  # FILE MAJOR MINOR PATCH: the version a header defines
  local f
  f=$(find /usr/local/cuda/include /usr/include "$(cache CUDAToolkit_INCLUDE_DIR)" -maxdepth 1 -name "$1" 2> /dev/null | head -1)
  [ -n "$f" ] || { echo unknown; return; }
  awk -v a="$2" -v b="$3" -v c="$4" '$1 == "#define" && $2 == a { x = $3 } $1 == "#define" && $2 == b { y = $3 }
       $1 == "#define" && $2 == c { z = $3 } END { print x "." y "." z }' "$f"
}
{
  echo "tnrec GPU bundle"
  echo "source: $(git -C "$SRC" describe --always --dirty 2> /dev/null || echo unknown) ($(git -C "$SRC" log -1 --format=%cI 2> /dev/null || echo '?'))"
  echo "built: $(date -u +%FT%TZ) on $(. /etc/os-release 2> /dev/null && echo "$PRETTY_NAME"), $(ldd --version | head -1)"
  echo "build: $B, type $(cache CMAKE_BUILD_TYPE), CUDA architectures $(cache CMAKE_CUDA_ARCHITECTURES), MPI $(cache TNREC_WITH_MPI), curl $(cache TNREC_WITH_CURL)"
  echo "version: $("$B/bin/tnrec" --version 2>&1 | tr '\n' ' ')"
  echo "compiled against: $(nvcc --version 2> /dev/null | tail -1 | sed 's/^Build //'), cuDNN $(hdr_version cudnn_version.h CUDNN_MAJOR CUDNN_MINOR CUDNN_PATCHLEVEL), NCCL $(hdr_version nccl.h NCCL_MAJOR NCCL_MINOR NCCL_PATCH)"
  echo "cuda_needs: ${cuda_needs[*]}"
  echo "glibc_needs: $(cat "$R"/bin/* "$R"/lib/* | grep -a -o 'GLIBC_2\.[0-9]*' | sort -u -V | tail -1) (newest symbol version referenced)"
  echo
  echo "libraries (bundled name, bytes, from, Debian package):"
  for name in $(printf '%s\n' "${!lib_src[@]}" | sort); do
    f=${lib_src[$name]}
    pkg=$(dpkg -S "$f" 2> /dev/null | head -1 | cut -d: -f1 || true)
    [ -n "$pkg" ] || pkg=$(dpkg -S "${f#/usr}" 2> /dev/null | head -1 | cut -d: -f1 || true)
    printf '  %-28s %10d  %s  %s\n' "$name" "$(stat -c %s "$R/lib/$name")" "${lib_src[$name]}" "${pkg:--}"
  done
} > "$R/BUNDLE.txt"

mkdir -p "$(dirname "$out")"
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner -cf - tnrec-gpu | gzip > "$out.tmp.$$"
mv "$out.tmp.$$" "$out"
size=$(stat -c %s "$out")
echo "gpu_bundle: wrote $out: $(awk -v s="$size" 'BEGIN { printf "%.1f MB", s / 1e6 }') compressed," \
     "$(du -sb "$R" | awk '{ printf "%.1f MB", $1 / 1e6 }') unpacked, ${#lib_src[@]} libraries beside libtnrec," \
     "in $((SECONDS - t0)) s"
[ "$size" -le 40000000 ] || echo "gpu_bundle: warning: over 40 MB" >&2
