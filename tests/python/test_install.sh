#!/usr/bin/env bash
# tests/python/test_install.sh: `pip install ./python` into a fresh virtual
# environment (Debian's python3 -m venv --system-site-packages, so numpy
# comes from the system; --no-build-isolation --no-deps --no-index: the
# build backend is the system's setuptools, nothing is downloaded), then
# import it from outside the source tree with TNREC_LIBRARY naming the
# build's libtnrec, and again with the library copied beside the package
# and no TNREC_LIBRARY, and found through a pkg-config file. Exits 77 when venv, pip or setuptools is missing.
#
# usage: test_install.sh SOURCE_DIR SCRATCH_DIR LIBTNREC
set -euo pipefail
src=$1 scratch=$2 lib=$3
unset PYTHONPATH   # the installed package, not the source tree, must answer
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
work=$scratch/install
rm -rf "$work"
mkdir -p "$work"
if ! "$py" -m venv --system-site-packages "$work/venv" >"$work/venv.log" 2>&1; then
  echo "test_install: skipped: python3 -m venv failed (install python3-venv):"; cat "$work/venv.log"; exit 77
fi
vpy=$work/venv/bin/python
if ! "$vpy" -c "import setuptools, numpy" 2>/dev/null; then
  echo "test_install: skipped: setuptools or numpy missing (install python3-setuptools python3-numpy)"; exit 77
fi
if ! "$vpy" -m pip --version >/dev/null 2>&1; then
  echo "test_install: skipped: pip missing in the venv (install python3-pip)"; exit 77
fi
# pip builds in the directory it is given: build a copy, not the source tree
cp -r "$src/python" "$work/pkg"
"$vpy" -m pip install -q --no-build-isolation --no-deps --no-index "$work/pkg"
cd "$work"
TNREC_LIBRARY=$lib "$vpy" - "$scratch/float16" "$work/venv" "$lib" <<'PY'
import os, sys
import tnrec
path, venv, lib = sys.argv[1:]
assert tnrec.__file__.startswith(venv), tnrec.__file__
assert tnrec.library_path == lib, tnrec.library_path
ds = tnrec.open(path)
assert len(ds) == 24 and ds[5]["DBZ"].shape == (4, 120, 240, 2)
b = next(iter(ds.batches(4, threads=1)))
assert b["x"].shape == (4, 4, 120, 240, 12)
print("installed:", tnrec.__file__, "libtnrec", tnrec.library_version)
PY
pkgdir=$("$vpy" -c "import importlib.util, os; print(os.path.dirname(importlib.util.find_spec('tnrec').origin))")
cp "$lib" "$pkgdir/libtnrec.so"
env -u TNREC_LIBRARY "$vpy" -c "
import tnrec, sys
assert tnrec.library_path == '$pkgdir/libtnrec.so', tnrec.library_path
assert len(tnrec.open('$scratch/float16')) == 24
print('beside the package:', tnrec.library_path)"
rm "$pkgdir/libtnrec.so"
# through pkg-config: a tnrec.pc whose libdir is the build's library directory
if command -v pkg-config >/dev/null; then
  mkdir -p "$work/pc"
  printf 'libdir=%s\nName: tnrec\nDescription: test\nVersion: 0.1.0\nLibs: -L${libdir} -ltnrec\n' \
    "$(dirname "$lib")" >"$work/pc/tnrec.pc"
  env -u TNREC_LIBRARY PKG_CONFIG_PATH="$work/pc" "$vpy" -c "
import os, tnrec
assert os.path.dirname(tnrec.library_path) == os.path.dirname('$lib'), tnrec.library_path
assert len(tnrec.open('$scratch/float16')) == 24
print('through pkg-config:', tnrec.library_path)"
else
  echo "test_install: pkg-config not installed; its lookup is not checked"
fi
"$vpy" -m pip uninstall -q -y tnrec
rm -rf "$work"
echo "test_install: ok"
