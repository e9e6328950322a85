"""tests/cli/check_npy.py: run npy_fixture, then read every file back with
numpy.load and compare with the same formulas computed in numpy; also
check the raw header bytes (magic, version 1.0, 64-byte alignment).

usage: check_npy.py NPY_FIXTURE_BINARY SCRATCH_DIR
"""
import os
import shutil
import subprocess
import sys

import numpy as np

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def main():
    fixture, scratch = sys.argv[1], sys.argv[2]
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    r = subprocess.run([fixture, scratch])
    check(r.returncode == 0, "npy_fixture exited %d" % r.returncode)

    N = 24
    v = np.arange(N, dtype=np.uint64) * np.uint64(37) + np.uint64(11)
    vi = [int(x) for x in v]
    expect = {
        "u8_1d": np.array([(x * 7) % 256 for x in vi], dtype=np.uint8),
        "i8_2d": np.array([(x * 7) % 256 for x in vi], dtype=np.uint8).view(np.int8).reshape(4, 6),
        "u16_3d": np.array([(x * 2741) % 65536 for x in vi], dtype=np.uint16).reshape(2, 3, 4),
        "i16_1d": np.array([(x * 2741) % 65536 - 32768 for x in vi], dtype=np.int16),
        "u32_2d": np.array([(x * 2654435761) % 2**32 for x in vi], dtype=np.uint32).reshape(4, 6),
        "i32_3d": np.array([(x * 2654435761) % 2**32 - 2**31 for x in vi], dtype=np.int32).reshape(2, 3, 4),
        "u64_1d": np.array([(x * 0x9E3779B97F4A7C15) % 2**64 for x in vi], dtype=np.uint64),
        "i64_2d": np.array([(((x * 0x9E3779B97F4A7C15) % 2**64) >> 1) - (2**63 - 1) // 2 for x in vi],
                           dtype=np.int64).reshape(4, 6),
        "f64_0d": np.array(1.0 / 3.0),
        "f64_1d": np.arange(N, dtype=np.float64) / 7.0,
        "f32_empty": np.zeros((0, 3), dtype=np.float32),
        "u8_empty": np.zeros((0,), dtype=np.uint8),
    }
    f32 = np.arange(48, dtype=np.float32) * np.float32(0.25) - np.float32(3.0)
    f32[5] = np.nan
    f32[6] = np.inf
    expect["f32_4d"] = f32.reshape(2, 3, 4, 2)
    f16 = np.array([(k * 2741) % 65536 for k in range(N)], dtype=np.uint16)
    f16[0] = 0x7C00
    f16[1] = 0x3C00
    expect["f16_2d"] = f16.view(np.float16).reshape(4, 6)

    expect["f32_grid"] = (np.arange(4 * 120 * 240 * 2, dtype=np.float32) * np.float32(0.001)).reshape(4, 120, 240, 2)
    expect["replaced"] = expect["f64_1d"]
    shapes = {"f32_grid": "'shape': (4, 120, 240, 2), }", "f64_0d": "'shape': (), }", "u8_1d": "'shape': (24,), }"}

    descr = {np.dtype(np.uint8): "|u1", np.dtype(np.int8): "|i1", np.dtype(np.float16): "<f2",
             np.dtype(np.float32): "<f4", np.dtype(np.float64): "<f8", np.dtype(np.int64): "<i8"}
    for name, want in expect.items():
        path = os.path.join(scratch, name + ".npy")
        if not os.path.exists(path):
            check(False, "%s missing" % path)
            continue
        raw = open(path, "rb").read()
        check(raw[:6] == b"\x93NUMPY", name + ": magic")
        check(raw[6:8] == b"\x01\x00", name + ": version 1.0")
        hlen = int.from_bytes(raw[8:10], "little")
        check((10 + hlen) % 64 == 0, name + ": data not 64-byte aligned")
        header = raw[10:10 + hlen].decode("latin1")
        check(header.endswith("\n"), name + ": header must end in newline")
        check(header.startswith("{'descr': "), name + ": header dict")
        if want.dtype in descr:
            check("'descr': '%s'" % descr[want.dtype] in header, name + ": descr in " + header)
        if name in shapes:
            check(shapes[name] in header, "%s: header %r lacks %r" % (name, header, shapes[name]))
        check(len(raw) == 10 + hlen + want.nbytes, name + ": file size %d" % len(raw))
        got = np.load(path, allow_pickle=False)
        check(got.dtype == want.dtype, "%s: dtype %s, want %s" % (name, got.dtype, want.dtype))
        check(got.shape == want.shape, "%s: shape %s, want %s" % (name, got.shape, want.shape))
        if got.dtype == want.dtype and got.shape == want.shape:
            # Bitwise comparison: NaN payloads and infinities included.
            check(got.tobytes() == want.tobytes(), name + ": values differ")
        check(got.flags.c_contiguous, name + ": not C order")

    if failures:
        print("%d failure(s)" % len(failures), file=sys.stderr)
        return 1
    print("check_npy: %d files ok" % len(expect))
    return 0


if __name__ == "__main__":
    sys.exit(main())
