"""tests/cli/check_checksum.py: every record's checksum is checked when it
is read, and the error says so.

A zstd frame carries its own content checksum, so a damaged record would
fail to decode even without the record checksum; what this test asks is
that the record checksum (XXH3 of the stored frame, docs/format.md) is
what catches the damage first, before any decompression. For each record
of a bare shard and for three places in it (the frame header, the middle,
the last byte, which is zstd's own checksum), one flipped byte must make
  - `tnrec verify` name exactly that record with "checksum mismatch",
  - `tnrec dump --record I` fail with "record I checksum mismatch",
  - and `tnrec dump --record J` of every other record still succeed.
The checksums in the index are also recomputed here with libxxhash
(ctypes) over the intact frames.

usage: check_checksum.py DUMP_FIXTURE TNREC SCRATCH_DIR
"""
import ctypes
import ctypes.util
import json
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_fixture as cf  # noqa: E402


def flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))


def main():
    fixture, tnrec, scratch = sys.argv[1], sys.argv[2], sys.argv[3]
    c = cf.Checker("check_checksum")
    lib = ctypes.util.find_library("xxhash")
    if not lib:
        print("check_checksum: SKIPPED: libxxhash not found (scripts/deps.sh installs libxxhash-dev)")
        return 77
    xxh = ctypes.CDLL(lib)
    xxh.XXH3_64bits.restype = ctypes.c_uint64
    xxh.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]

    cf.make_fixture(fixture, scratch)
    single = os.path.join(scratch, "single.tnr")
    rc, out, err = cf.run(tnrec, "dump", "--records", "--json", single)
    c.check(rc == 0, "dump --records --json: exit %d: %s" % (rc, err))
    recs = json.loads(out)["records"] if rc == 0 else []
    c.check(len(recs) == 3, "the fixture's bare shard has 3 records, not %d" % len(recs))
    with open(single, "rb") as f:
        data = f.read()
    for r in recs:
        frame = data[r["offset"]:r["offset"] + r["size"]]
        want = r.get("checksum")
        got = xxh.XXH3_64bits(frame, len(frame))
        if isinstance(want, str):
            want = int(want, 16)
        c.check(want is None or got == want, "record %d: XXH3 of the frame %016x, index says %r" % (r["index"], got, want))

    line = re.compile(r"^(.*): record (\d+): (.+)$")
    bad = os.path.join(scratch, "damaged.tnr")
    cases = 0
    for r in recs:
        i = r["shard_index"]
        for where, off in (("frame header", 4), ("middle", r["size"] // 2), ("last byte", r["size"] - 1)):
            shutil.copy(single, bad)
            flip_byte(bad, r["offset"] + off)
            what = "record %d, %s" % (i, where)
            rc, out, err = cf.run(tnrec, "verify", bad)
            hits = [m for m in map(line.match, out.splitlines()) if m]
            c.check(rc == 1 and len(hits) == 1, "%s: verify exit %d, %d bad-record lines: %r" % (what, rc, len(hits), out))
            if hits:
                c.check(int(hits[0].group(2)) == i, "%s: verify names record %s" % (what, hits[0].group(2)))
                c.check("checksum mismatch" in hits[0].group(3), "%s: verify says %r, want a checksum mismatch"
                        % (what, hits[0].group(3)))
            rc, out, err = cf.run(tnrec, "dump", "--record", str(i), bad)
            c.check(rc == 1 and ("record %d checksum mismatch" % i) in err,
                    "%s: dump --record %d: exit %d, %r" % (what, i, rc, err))
            for j in range(len(recs)):
                if j != i:
                    rc, out, err = cf.run(tnrec, "dump", "--record", str(j), bad)
                    c.check(rc == 0, "%s: dump --record %d (intact) exit %d: %s" % (what, j, rc, err))
            cases += 1
    c.check(cases == 9, "%d damage cases run, want 9" % cases)
    return c.done()


if __name__ == "__main__":
    sys.exit(main())
