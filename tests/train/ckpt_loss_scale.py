"""The float16 loss scale in checkpoints (format 1.1 and later, train/checkpoint.h).

usage: ckpt_loss_scale.py test TNREC FIXTURE_PROGRAM WORKDIR
       ckpt_loss_scale.py show CHECKPOINT      (prints: minor scale good_steps)

`test` needs no GPU: a CPU run writes scale 0 (none recorded); a scale
put into its checkpoint is carried through a resumed run unchanged; the
same checkpoint rewritten as format 1.0 (without the two fields) still
resumes and evaluates, and reads as scale 0; a checkpoint with a negative
scale is refused with a message naming it. Checksums (XXH3-64) are
recomputed with the system's libxxhash."""
import ctypes
import ctypes.util
import os
import shutil
import struct
import subprocess
import sys

MODEL = "c8,p122,c8,g,d8,o"


def xxh3(data):
    name = ctypes.util.find_library("xxhash") or "libxxhash.so.0"
    lib = ctypes.CDLL(name)
    lib.XXH3_64bits.restype = ctypes.c_uint64
    lib.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    return lib.XXH3_64bits(data, len(data))


def parse(data):
    """Offsets of a checkpoint: (minor, end of the 1.0 fields, body end)."""
    if data[:8] != b"TNRCKPT\0":
        raise SystemExit("not a checkpoint")
    major, minor = struct.unpack_from("<II", data, 8)
    if major != 1:
        raise SystemExit(f"version {major}.{minor}")
    pos = 16
    (clen,) = struct.unpack_from("<Q", data, pos)
    pos += 8 + clen
    for _ in range(2):  # parameters, BN state
        (n,) = struct.unpack_from("<Q", data, pos)
        pos += 8 + 4 * n
    (n,) = struct.unpack_from("<Q", data, pos)  # Adam m, v
    pos += 8 + 8 * n
    pos += 8  # Adam t
    pos += 11 * 8  # epoch .. samples
    (k,) = struct.unpack_from("<Q", data, pos)
    pos += 8 + 12 * k
    return minor, pos, len(data) - 8


def read_scale(path):
    with open(path, "rb") as f:
        data = f.read()
    minor, pos, end = parse(data)
    if struct.unpack_from("<Q", data, end)[0] != xxh3(data[:end]):
        raise SystemExit(f"{path}: checksum mismatch")
    if minor == 0:
        return minor, None, None
    if end != pos + 16:
        raise SystemExit(f"{path}: {end - pos} bytes after the 1.0 fields, 16 expected")
    scale, good = struct.unpack_from("<dQ", data, pos)
    return minor, scale, good


def write(path, body):
    with open(path, "wb") as f:
        f.write(body + struct.pack("<Q", xxh3(body)))


def set_scale(path, scale, good):
    with open(path, "rb") as f:
        data = f.read()
    minor, pos, end = parse(data)
    check(minor >= 1, f"{path}: checkpoint minor version {minor}, 1 or later expected")
    write(path, data[:pos] + struct.pack("<dQ", scale, good) + data[pos + 16:end])


def make_v10(path):
    with open(path, "rb") as f:
        data = f.read()
    _, pos, _ = parse(data)
    write(path, data[:12] + struct.pack("<I", 0) + data[16:pos])


def check(cond, what):
    """An explicit check, which python -O keeps (it drops assert statements)."""
    if not cond:
        raise SystemExit(f"FAIL: {what}")


def run(args, expect=0):
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != expect:
        raise SystemExit(f"FAIL: {' '.join(args)}: exit {p.returncode}, expected {expect}\n{p.stderr}")
    return p


def test(tnrec, fixture, work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    data, rund = os.path.join(work, "data"), os.path.join(work, "run")
    last = os.path.join(rund, "last.tnck")
    run([fixture, data, "24", "3"])
    run([tnrec, "train", data, "-o", rund, "--model", MODEL, "--epochs", "2", "--batch", "8", "--max-steps", "2"])
    minor, scale, good = read_scale(last)
    check((minor, scale, good) == (2, 0.0, 0), f"fresh CPU checkpoint: {minor} {scale} {good}")

    set_scale(last, 1024.0, 7)
    run([tnrec, "train", "--resume", rund, "--epochs", "2", "--max-steps", "1"])
    minor, scale, good = read_scale(last)
    check((minor, scale, good) == (2, 1024.0, 7), f"scale not carried through a resume: {scale} {good}")

    make_v10(last)
    check(read_scale(last) == (0, None, None), f"made a 1.0 checkpoint, read back {read_scale(last)}")
    run([tnrec, "eval", last, data])
    run([tnrec, "train", "--resume", rund, "--epochs", "2"])
    minor, scale, good = read_scale(last)
    check((minor, scale, good) == (2, 0.0, 0), f"1.0 checkpoint resumed: {minor} {scale} {good}")

    set_scale(last, -5.0, 0)
    p = run([tnrec, "train", "--resume", rund, "--epochs", "3"], expect=1)
    check("loss scale" in p.stderr and "last.tnck" in p.stderr, f"bad loss scale refused without naming it: {p.stderr}")
    print("ckpt_loss_scale: passed")
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "show":
        minor, scale, good = read_scale(sys.argv[2])
        print(minor, scale if scale is not None else 0, good if good is not None else 0)
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == "test":
        return test(*sys.argv[2:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
