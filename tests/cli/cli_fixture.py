"""tests/cli/cli_fixture.py: what the CLI checks share: run dump_fixture into
a fresh scratch directory, run `tnrec`, load the fixture's inputs and
compute the values a decoder must return (the rules of records.h)."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np

DTYPES = {"uint8": np.uint8, "int8": np.int8, "uint16": np.uint16, "int16": np.int16,
          "uint32": np.uint32, "int32": np.int32, "uint64": np.uint64, "int64": np.int64,
          "float16": np.float16, "float32": np.float32, "float64": np.float64}


# Sanitizer reports seen in any run: an ASan/UBSan build exits 1 on an
# error, the same code as an expected failure, so the text is checked too.
SANITIZER_REPORTS = []


class Checker:
    def __init__(self, name):
        self.name = name
        self.failures = 0

    def check(self, cond, what):
        if not cond:
            self.failures += 1
            print("FAIL:", what, file=sys.stderr)
        return cond

    def done(self):
        for args, err in SANITIZER_REPORTS:
            self.check(False, "sanitizer report from tnrec %r:\n%s" % (args, err))
        if self.failures:
            print("%s: %d check(s) failed" % (self.name, self.failures), file=sys.stderr)
            return 1
        print("%s: all checks passed" % self.name)
        return 0


def make_fixture(fixture_bin, scratch):
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    r = subprocess.run([fixture_bin, scratch], capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit("dump_fixture failed (exit %d)" % r.returncode)
    with open(os.path.join(scratch, "expected.json")) as f:
        return json.load(f)


def run(tnrec, *args):
    """Runs tnrec; returns (exit code, stdout, stderr)."""
    r = subprocess.run([tnrec] + list(args), capture_output=True, text=True, timeout=120)
    if "Sanitizer" in r.stderr or "runtime error:" in r.stderr:
        SANITIZER_REPORTS.append((list(args), r.stderr))
    return r.returncode, r.stdout, r.stderr


def field_input(scratch, expected, set_name, i, field):
    """The values the fixture gave the encoder for one field of one record."""
    dt = np.float32 if field["encoding"] != "raw" else DTYPES[field["dtype"]]
    path = os.path.join(scratch, "inputs", "%s_%d_%s.bin" % (set_name, i, field["name"]))
    return np.fromfile(path, dtype=np.dtype(dt).newbyteorder("<")).reshape(field["shape"])


def normalised(field, x):
    """(x - offset) / scale in float32, as the encoder computes it."""
    return (x.astype(np.float32) - np.float32(field["offset"])) / np.float32(field["scale"])


def tolerance(field, n):
    """Largest allowed |decoded - normalised| per element (data gates).
    float32: exact. float16: half a unit in the last place of the result
    (2**-11 relative; 2**-25 absolute for subnormals). uint8: half a
    quantisation step (qmax - qmin) / 254 / 2 after clamping, plus float32
    rounding of the decode."""
    enc = field["encoding"]
    if enc == "float32":
        return np.zeros_like(n, dtype=np.float64)
    if enc == "float16":
        return np.maximum(np.abs(n.astype(np.float64)) * 2.0 ** -11, 2.0 ** -25)
    if enc == "uint8":
        step = (field["qmax"] - field["qmin"]) / 254.0
        return np.full(n.shape, step / 2 + 1e-6, dtype=np.float64)
    raise ValueError(enc)


def expected_decoded(field, x):
    """(reference values, no-data mask) of a float-encoded field: the
    normalised value (clamped for uint8), no data where the input was NaN."""
    nodata = np.isnan(x)
    n = normalised(field, x)
    if field["encoding"] == "uint8":
        n = np.clip(n, np.float32(field["qmin"]), np.float32(field["qmax"]))
    n = np.where(nodata, np.float32(field["nodata"]), n).astype(np.float32)
    return n, nodata
