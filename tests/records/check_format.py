#!/usr/bin/env python3
"""tests/records/check_format.py: reads what format_fixture wrote using only
docs/format.md, numpy, and libzstd / libxxhash through ctypes (no libtnrec),
and checks every byte layout, checksum, encoding and the manifest.

Usage: check_format.py <format_fixture binary> <scratch dir>"""
import ctypes
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

zstd = ctypes.CDLL("libzstd.so.1")
zstd.ZSTD_getFrameContentSize.restype = ctypes.c_ulonglong
zstd.ZSTD_getFrameContentSize.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
zstd.ZSTD_decompress.restype = ctypes.c_size_t
zstd.ZSTD_decompress.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
zstd.ZSTD_isError.argtypes = [ctypes.c_size_t]
xxh = ctypes.CDLL("libxxhash.so.0")
xxh.XXH3_64bits.restype = ctypes.c_uint64
xxh.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]

DTYPES = {1: "u1", 2: "i1", 3: "<u2", 4: "<i2", 5: "<u4", 6: "<i4", 7: "<u8", 8: "<i8", 9: "<f2", 10: "<f4", 11: "<f8"}
DTYPE_NAMES = {1: "uint8", 2: "int8", 3: "uint16", 4: "int16", 5: "uint32", 6: "int32", 7: "uint64", 8: "int64",
               9: "float16", 10: "float32", 11: "float64"}
ENC_NAMES = {0: "raw", 1: "float32", 2: "float16", 3: "uint8"}
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)


def xxh3(b):
    return xxh.XXH3_64bits(bytes(b), len(b))


def name(raw):
    s = raw.split(b"\0", 1)[0]
    check(raw[len(s):] == b"\0" * (len(raw) - len(s)), "name is NUL-padded")
    return s.decode()


def parse_shard(path):
    b = open(path, "rb").read()
    check(b[:8] == b"\x89TNR\r\n\x1a\n", "magic")
    major, minor, hlen, flags, level, nfields = struct.unpack_from("<HHIIiI", b, 8)
    check((major, minor) == (1, 0), "version 1.0")
    check(hlen == 28 + 200 * nfields + 8, "header length")
    check(struct.unpack_from("<Q", b, hlen - 8)[0] == xxh3(b[:hlen - 8]), "header checksum")
    check(level == 3, "zstd level in the header")
    fields = []
    for i in range(nfields):
        p = 28 + 200 * i
        enc, dt, ndim, shuf = b[p + 32:p + 36]
        shape = struct.unpack_from("<4I", b, p + 36)
        dims = [name(b[p + 52 + 32 * d:p + 84 + 32 * d]) for d in range(4)]
        off, scale, nodata, qmin, qmax = struct.unpack_from("<5f", b, p + 180)
        check(all(x == 0 for x in shape[ndim:]), "shape beyond ndim is 0")
        fields.append(dict(name=name(b[p:p + 32]), encoding=enc, dtype=dt, shape=list(shape[:ndim]), dims=dims[:ndim],
                           shuffle=shuf, offset=off, scale=scale, nodata=nodata, qmin=qmin, qmax=qmax))
    tr = b[-48:]
    io, isz, count, icheck, tcheck = struct.unpack_from("<5Q", tr, 0)
    check(tr[40:] == b"TNRIDX\r\n", "end magic")
    check(tcheck == xxh3(tr[:32]), "trailer checksum")
    check(io + isz == len(b) - 48, "index ends where the trailer starts")
    idx = b[io:io + isz]
    check(icheck == xxh3(idx), "index checksum")
    keys = idx[80 * count:]
    recs, expect = [], hlen
    for i in range(count):
        (off, size, raw, csum, event, episode, t, label, cat, ef, klen, koff) = struct.unpack_from("<4Q3q3iIQ", idx, 80 * i)
        check(off == expect, "records tile the file")
        expect = off + size
        frame = b[off:off + size]
        check(csum == xxh3(frame), "record checksum")
        check(frame[:4] == b"\x28\xb5\x2f\xfd" and frame[4] & 0x04, "zstd frame with content checksum")
        check(zstd.ZSTD_getFrameContentSize(frame, size) == raw, "frame declares raw size")
        out = ctypes.create_string_buffer(raw)
        n = zstd.ZSTD_decompress(out, raw, frame, size)
        check(not zstd.ZSTD_isError(n) and n == raw, "record decompresses")
        recs.append(dict(payload=out.raw[:raw], label=label, category=cat, ef=ef, event_id=event, episode_id=episode,
                         time=t, key=keys[koff:koff + klen].decode(), checksum=csum))
    check(expect == io, "index follows the last record")
    return dict(fields=fields, records=recs, index_checksum=icheck, size=len(b))


def stored_size(f):
    return {0: int(DTYPES[f["dtype"]][-1]), 1: 4, 2: 2, 3: 1}[f["encoding"]]


def unpack_field(f, payload, pos):
    n = int(np.prod(f["shape"])) if f["shape"] else 1
    es = stored_size(f)
    raw = np.frombuffer(payload, np.uint8, n * es, pos)
    if f["shuffle"] and es > 1:  # byte b of element k at b * n + k
        raw = raw.reshape(es, n).T.copy().reshape(-1)
    return raw, pos + n * es, n


def expected_stored(f, x):
    """What docs/format.md 2.3 says is stored for input x (float32 array)."""
    x = x.astype(np.float32)
    nan = np.isnan(x)
    with np.errstate(all="ignore"):
        n = (x - np.float32(f["offset"])) / np.float32(f["scale"])
    if f["encoding"] == 1:
        out = n.copy()
        out[nan] = np.float32("nan")
        return out.view(np.uint32)
    if f["encoding"] == 2:
        with np.errstate(all="ignore"):
            out = n.astype(np.float16)  # round to nearest even
        out[nan] = np.float16("nan")
        return out.view(np.uint16)
    qmin, qmax = np.float32(f["qmin"]), np.float32(f["qmax"])
    with np.errstate(all="ignore"):
        c = np.floor((np.clip(n, qmin, qmax) - qmin) / (qmax - qmin) * np.float32(254) + np.float32(0.5))
    c[nan] = -1  # code 0: no data
    return (1 + np.clip(c, -1, 254)).astype(np.uint8)


def main():
    fixture, scratch = sys.argv[1], sys.argv[2]
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    subprocess.run([fixture, scratch], check=True)
    ds = os.path.join(scratch, "ds")
    m = json.load(open(os.path.join(ds, "manifest.json")))
    check(m["format"] == "tnrec-dataset" and m["format_version"] == 1, "manifest format")
    check(m["records"] == 3 and [s["file"] for s in m["shards"]] == ["fmt-00000.tnr", "fmt-00001.tnr"], "shard list")
    check(m["skipped"] == [{"input": "train/2013/bad.nc", "reason": "cannot read DBZ"}], "skipped")
    check(m["build"] == {"fixture": "format"}, "build parameters")
    check(m["class_counts"] == {"label": {"0": 2, "1": 1}, "category": {"TOR": 1, "NUL": 1, "WRN": 1},
                                "ef": {"-1": 2, "0": 0, "1": 0, "2": 1, "3": 0, "4": 0, "5": 0}}, "class counts")
    check(abs(m["class_weights"]["0"] - 3 / 4) < 1e-12 and abs(m["class_weights"]["1"] - 3 / 2) < 1e-12, "weights")
    records = []
    for s in m["shards"]:
        sh = parse_shard(os.path.join(ds, s["file"]))
        check(s["records"] == len(sh["records"]), "manifest record count")
        check(s["bytes"] == sh["size"], "manifest bytes")
        check(s["index_checksum"] == "%016x" % sh["index_checksum"], "manifest index checksum")
        for mf, hf in zip(m["schema"]["fields"], sh["fields"]):
            check(mf["name"] == hf["name"] and mf["encoding"] == ENC_NAMES[hf["encoding"]] and
                  mf["dtype"] == DTYPE_NAMES[hf["dtype"]] and mf["shape"] == hf["shape"] and mf["dims"] == hf["dims"]
                  and mf["shuffle"] == bool(hf["shuffle"]) and all(
                      np.float32(mf[k]) == np.float32(hf[k]) for k in ("offset", "scale", "nodata", "qmin", "qmax")),
                  "manifest schema matches the header for " + hf["name"])
        fields = sh["fields"]
        records += sh["records"]
    check([f["name"] for f in fields] == ["DBZ", "VEL", "KDP", "RHOHV", "range_folded_mask", "counts", "elevation",
                                          "site"], "field order")
    check([f["encoding"] for f in fields] == [1, 2, 3, 2, 0, 0, 0, 0], "encodings")
    check(fields[0]["dims"] == ["time", "azimuth", "range", "sweep"] and fields[7]["shape"] == [], "dims and scalar")
    inputs = open(os.path.join(scratch, "inputs.bin"), "rb").read()
    g = 2 * 3 * 4 * 2
    per_rec = 4 * g * 4 + g + 5 * 2 + 2 * 8 + 4
    check(len(inputs) == 3 * per_rec, "inputs size")
    for r, rec in enumerate(records):
        check(rec["label"] == (r == 1) and rec["category"] == [1, 0, 2][r] and rec["ef"] == [-1, 2, -1][r], "meta")
        check(rec["event_id"] == 100 + r and rec["episode_id"] == -7 - r and rec["time"] == 1368000000 + 300 * r, "ids")
        check(rec["key"] == "train/2013/sample_%d.nc" % r, "key")
        src = inputs[r * per_rec:(r + 1) * per_rec]
        pos, ipos = 0, 0
        for f in fields:
            stored, pos, n = unpack_field(f, rec["payload"], pos)
            if f["encoding"] == 0:
                size = n * int(DTYPES[f["dtype"]][-1])
                check(stored.tobytes() == src[ipos:ipos + size], "raw field %s bit for bit" % f["name"])
                ipos += size
                continue
            x = np.frombuffer(src, np.float32, n, ipos)
            ipos += 4 * n
            want = expected_stored(f, x)
            got = stored.view(want.dtype)
            same = np.array_equal(got, want)
            check(same, "record %d field %s stored as the spec says" % (r, f["name"]))
            if not same:
                bad = np.nonzero(got != want)[0][:5]
                print("  first differences at", bad, "input", x[bad], "got", got[bad], "want", want[bad])
        check(pos == len(rec["payload"]) and ipos == per_rec, "payload consumed exactly")
    print("check_format: %s" % ("all checks passed" if failures == 0 else "%d check(s) failed" % failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
