#!/usr/bin/env bash
# scripts/deps.sh: install what tnrec's build and tests need (Debian 12).
# Idempotent: installs only what is missing. Run as root or with sudo.
#   scripts/deps.sh          build + test dependencies
#   scripts/deps.sh --bench  also what the benchmarks compare against
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config git patchelf
  libzstd-dev libxxhash-dev libjansson-dev zlib1g-dev libdeflate-dev libarchive-dev
  libnetcdf-dev libhdf5-dev netcdf-bin hdf5-tools
  libcurl4-openssl-dev libssl-dev
  libcairo2-dev chromium
  libopenmpi-dev openmpi-bin
  clang libclang-rt-14-dev
  nginx-light
  python3 python3-pip python3-venv python3-setuptools python3-numpy python3-netcdf4 python3-xarray python3-sklearn python3-pil python3-h5py
  python3-botocore openssl curl
  python3-torch
)
if [ "${1:-}" = "--bench" ]; then
  pkgs+=(hyperfine time)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "deps: all Debian packages present"
fi

# moto (an S3-compatible server for the mirror tests) comes from PyPI, in a
# virtual environment so that Debian's python3-* packages stay untouched.
moto_venv=${TNREC_MOTO_VENV:-/opt/tnrec-moto}
if [ ! -x "$moto_venv/bin/moto_server" ]; then
  echo "deps: installing moto[server] into $moto_venv"
  $SUDO /usr/bin/python3 -m venv "$moto_venv"
  $SUDO "$moto_venv/bin/pip" install -q 'moto[server]'
else
  echo "deps: moto present in $moto_venv"
fi

# Keras 3 with JAX on the CPU (and netCDF4 beside them) from PyPI, for the
# tests that compare tnrec's tornet-cnn and 'tnrec import keras' with Keras
# itself (TNREC_KERAS_PYTHON in tests/train/CMakeLists.txt). Tests only:
# tnrec never loads them.
keras_venv=${TNREC_KERAS_VENV:-/opt/tnrec-keras}
if ! KERAS_BACKEND=jax "$keras_venv/bin/python" -c "import keras, jax, netCDF4" 2>/dev/null; then
  echo "deps: installing keras, jax and netCDF4 into $keras_venv"
  $SUDO /usr/bin/python3 -m venv "$keras_venv"
  $SUDO "$keras_venv/bin/pip" install -q 'keras==3.15.1' 'jax==0.10.2' 'netCDF4==1.7.5.1.post1'
else
  echo "deps: keras present in $keras_venv"
fi
