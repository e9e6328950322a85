"""tests/python/pycommon.py: shared by the Python package's tests.

Every test gets: TNREC (the tnrec binary), SCRATCH (the fixture
directory, made by make_fixture.py: a synthetic TorNet in SCRATCH/src and
the same samples built as SCRATCH/float32, SCRATCH/float16, SCRATCH/uint8)
through argv, and imports the package from the source tree with
TNREC_LIBRARY naming the build's libtnrec (set by ctest)."""
import os
import sys

SKIP = 77
DTYPES = ("float32", "float16", "uint8")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)
    return cond


def finish(name):
    if failures:
        print("%s: %d failure(s)" % (name, len(failures)), file=sys.stderr)
        sys.exit(1)
    print("%s: ok" % name)
    sys.exit(0)


def args():
    if len(sys.argv) < 3:
        print("usage: %s TNREC_BINARY SCRATCH_DIR [...]" % sys.argv[0], file=sys.stderr)
        sys.exit(2)
    tnrec_bin, scratch = sys.argv[1], sys.argv[2]
    if not os.path.exists(os.path.join(scratch, "ready")):
        print("fixture %s missing (make_fixture.py runs first)" % scratch, file=sys.stderr)
        sys.exit(1)
    return tnrec_bin, scratch, sys.argv[3:]
