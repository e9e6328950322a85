#!/usr/bin/python3
"""`tnrec build` / `tnrec merge` end to end, on NetCDF files written by
Python's netCDF4 and xarray (test_build_samples.py).

usage: test_build_cli.py SCENARIO --tnrec BIN --tmp DIR
scenarios:
  values   float32 records equal an independent numpy normalisation exactly;
           float16 and uint8 within their documented bounds; raw fields,
           CF time decoding, labels and metadata; --frames and --variables
  threads  -j1 and -j2 give byte-identical shards and manifest
  parts    parts 0/2 and 1/2 (one from --part, one from MPI's environment)
           merged equal the one-machine build byte for byte
  merge_existing  a merge into a directory holding a dataset: the same
           merge again does nothing; another merge, one that fails midway
           (a damaged record), leaves the dataset whole and verifiable
  resume   kill -9 in the middle of a build, rerun: equal to a clean build
  corrupt  truncated, garbage, schema-violating and missing inputs are
           skipped with a line on stderr and listed; --strict fails
  tarball  a local tar.gz and the same over http (127.0.0.1) give the
           records of the directory build
  years    --years/--split from catalog.csv and from the files themselves
  userblock  the same files with a 512-byte HDF5 user block (h5jam) give
           byte-identical shards
"""
import argparse
import calendar
import filecmp
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time

import netCDF4
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_build_samples as samples  # noqa: E402
from ingest_common import FAILS, check, run, same_dirs, shards  # noqa: E402

VARS = samples.VARS
NORM = {"DBZ": (-20, 60), "VEL": (-60, 60), "KDP": (-2, 5), "RHOHV": (0.2, 1.04),
        "ZDR": (-1, 8), "WIDTH": (0, 9)}
SKIPPED = []  # checks that could not be made here: the scenario exits 77


def records(tnrec, ds):
    out = run([tnrec, "dump", "--records", ds]).stdout
    return [l for l in out.splitlines() if l and not l.startswith("#")]


def manifest(d):
    with open(os.path.join(d, "manifest.json")) as f:
        return json.load(f)


def nc_files(root):
    out = []
    for dp, _, fs in os.walk(root):
        for f in fs:
            if f.endswith(".nc"):
                out.append(os.path.relpath(os.path.join(dp, f), root))
    return sorted(out)


def expected_time(ds):
    tv = ds.variables["time"]
    vals = tv[:]
    dates = netCDF4.num2date(np.asarray(vals), tv.units, getattr(tv, "calendar", "standard"),
                             only_use_cftime_datetimes=False, only_use_python_datetimes=True)
    return np.array([calendar.timegm(d.timetuple()) for d in dates], np.int64)


def reference(path, frames):
    """Independent numpy normalisation of one file (float32 arithmetic)."""
    ref = {}
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_maskandscale(False)
        flag = np.float32(ds.getncattr("MissingDataFlag"))
        for v in VARS:
            x = np.asarray(ds.variables[v][:], np.float32)[-frames:]
            bad = ~np.isfinite(x) | (x == flag)
            lo, hi = NORM[v]
            off = np.float32((lo + hi) / 2.0)
            sc = np.float32((hi - lo) / 2.0)
            n = (x - off) / sc
            n[bad] = np.float32(-3.0)
            ref[v] = (n.astype(np.float32), bad)
        ref["range_folded_mask"] = np.asarray(ds.variables["range_folded_mask"][:], np.uint8)[-frames:]
        ref["frame_labels"] = np.asarray(ds.variables["frame_labels"][:], np.uint8)[-frames:]
        ref["azimuth_limits"] = np.asarray(ds.variables["azimuth_limits"][:], np.float32)
        ref["range_limits"] = np.asarray(ds.variables["range_limits"][:], np.float32)
        ref["elevation"] = np.asarray(ds.variables["elevation"][:], np.float64)
        ref["nyquist_velocity"] = np.asarray(ds.variables["nyquist_velocity"][:], np.float32)[-frames:]
        site = ds.getncattr("site_name").encode()
        ref["site"] = np.frombuffer(site.ljust(4, b"\0"), np.uint8)
        ds.set_auto_maskandscale(True)
        ref["time"] = expected_time(ds)[-frames:]
        ref["ef"] = int(ds.getncattr("ef_number"))
        ref["category"] = ds.getncattr("category")
        ref["event_id"] = int(ds.getncattr("event_id"))
    return ref


def check_values(tnrec, root, out, dtype, frames, variables, tmp):
    recs = records(tnrec, out)
    keys = [r.split("\t")[-1] for r in recs]
    check(keys == nc_files(root), "%s: one record per file in sorted order" % dtype)
    for i, key in enumerate(keys):
        ref = reference(os.path.join(root, key), frames)
        npy = os.path.join(tmp, "npy_%s_%d" % (dtype, i))
        run([tnrec, "dump", "--npy", npy, "--record", str(i), out])
        got = {f[:-4]: np.load(os.path.join(npy, f)) for f in os.listdir(npy)}
        fields = variables or VARS + ["range_folded_mask"]
        raw = ["time", "frame_labels", "azimuth_limits", "range_limits", "site", "elevation",
               "nyquist_velocity"]
        check(sorted(got) == sorted(fields + raw), "%s: fields %s" % (key, sorted(got)))
        for v in fields:
            if v == "range_folded_mask":
                check(np.array_equal(got[v], ref[v]), "%s: range_folded_mask exact" % key)
                continue
            n, bad = ref[v]
            d = got[v]
            check(d.shape == (frames, 120, 240, 2), "%s %s shape %s" % (key, v, d.shape))
            check(np.array_equal(d[bad], np.full(bad.sum(), -3.0, np.float32)), "%s %s no-data = -3" % (key, v))
            good = ~bad
            if dtype == "float32":
                check(np.array_equal(d, n), "%s %s float32 exactly equal" % (key, v))
            elif dtype == "float16":
                # IEEE half, round to nearest: relative 2^-11, absolute 2^-25 near zero
                err = np.abs(d[good] - n[good])
                bound = np.abs(n[good]) * 2.0 ** -11 + 2.0 ** -24
                check(np.all(err <= bound), "%s %s float16 within 2^-11 relative (max err %g)"
                      % (key, v, err.max()))
            else:
                # 254 levels over [-1, 1]: half a step, values outside clamped
                err = np.abs(d[good] - np.clip(n[good], -1, 1))
                check(np.all(err <= 1.0 / 254 + 1e-6), "%s %s uint8 within 1/254 (max err %g)"
                      % (key, v, err.max()))
        for v in raw:
            check(np.array_equal(got[v], ref[v]), "%s: raw field %s (%s vs %s)" % (key, v, got[v], ref[v]))
        idx, label, cat, ef, ev, _t, k = recs[i].split("\t")
        check(int(label) == (1 if ref["ef"] >= 0 else 0), "%s: label follows ef_number" % key)
        check(int(ef) == ref["ef"] and cat == ref["category"] and int(ev) == ref["event_id"],
              "%s: meta %s" % (key, recs[i]))
        shutil.rmtree(npy)


def scenario_values(a):
    root = os.path.join(a.tmp, "root")
    samples.make_root(root, 8, 3, [2013, 2014])
    for dtype in ("float32", "float16", "uint8"):
        out = os.path.join(a.tmp, "out_" + dtype)
        run([a.tnrec, "build", root, "-o", out, "--dtype", dtype, "-j2", "-q"])
        check_values(a.tnrec, root, out, dtype, 4, None, a.tmp)
        m = manifest(out)
        check(m["build"]["dtype"] == dtype and m["build"]["frames"] == 4, "build params recorded")
    out = os.path.join(a.tmp, "out_sub")
    run([a.tnrec, "build", root, "-o", out, "--dtype", "float32", "--frames", "2",
         "--variables", "VEL,DBZ,range_folded_mask", "-q"])
    check_values(a.tnrec, root, out, "float32", 2, ["VEL", "DBZ", "range_folded_mask"], a.tmp)
    # --norm override
    out = os.path.join(a.tmp, "out_norm")
    run([a.tnrec, "build", root, "-o", out, "--dtype", "float32", "--norm", "DBZ=0:80",
         "--variables", "DBZ", "-q"])
    npy = os.path.join(a.tmp, "npy_norm")
    run([a.tnrec, "dump", "--npy", npy, "--record", "0", out])
    x = reference(os.path.join(root, nc_files(root)[0]), 4)
    with netCDF4.Dataset(os.path.join(root, nc_files(root)[0])) as ds:
        ds.set_auto_maskandscale(False)
        raw = np.asarray(ds.variables["DBZ"][:], np.float32)
    bad = x["DBZ"][1]
    n = (raw - np.float32(40.0)) / np.float32(40.0)
    n[bad] = -3.0
    check(np.array_equal(np.load(os.path.join(npy, "DBZ.npy")), n), "--norm DBZ=0:80 applied")


def scenario_threads(a):
    root = os.path.join(a.tmp, "root")
    samples.make_root(root, 10, 5, [2013])
    o1, o2 = os.path.join(a.tmp, "j1"), os.path.join(a.tmp, "j2")
    run([a.tnrec, "build", root, "-o", o1, "-j1", "--shard-records", "3", "-q"])
    run([a.tnrec, "build", root, "-o", o2, "-j2", "--shard-records", "3", "-q"])
    check(len(shards(o1)) == 4, "10 records in shards of 3: 4 shards")
    same_dirs(o1, o2, "-j1 vs -j2")
    o3 = os.path.join(a.tmp, "size")
    run([a.tnrec, "build", root, "-o", o3, "-j2", "--shard-size", "1500K", "-q"])
    check(len(shards(o3)) >= 3, "--shard-size 1500K cuts several shards")
    check(manifest(o3)["build"]["shard_bytes"] == 1500 * 1024, "--shard-size K suffix")
    # rerun on a complete dataset: nothing to do, same bytes
    before = {f: open(os.path.join(o1, f), "rb").read() for f in os.listdir(o1)}
    p = run([a.tnrec, "build", root, "-o", o1, "-j2", "--shard-records", "3"])
    check("complete already" in p.stderr, "rerun on a complete dataset says so")
    check(before == {f: open(os.path.join(o1, f), "rb").read() for f in os.listdir(o1)}, "rerun changes nothing")
    p = run([a.tnrec, "build", root, "-o", o1, "--dtype", "uint8"], ok=False)
    check(p.returncode == 1 and "other options" in p.stderr, "other options into a full dir refused")
    # zstd's fast (negative) levels: the same records, decoded alike, the level in the manifest
    fast = os.path.join(a.tmp, "fast")
    run([a.tnrec, "build", root, "-o", fast, "-j2", "--shard-records", "3", "--zstd-level", "-5", "-q"])
    run([a.tnrec, "verify", fast])
    check(manifest(fast)["build"]["zstd_level"] == -5, "--zstd-level -5 recorded")
    for k in (0, 9):
        d1, d2 = os.path.join(a.tmp, "npy1_%d" % k), os.path.join(a.tmp, "npy2_%d" % k)
        run([a.tnrec, "dump", o1, "--record", str(k), "--npy", d1])
        run([a.tnrec, "dump", fast, "--record", str(k), "--npy", d2])
        for f in sorted(os.listdir(d1)):
            check(open(os.path.join(d1, f), "rb").read() == open(os.path.join(d2, f), "rb").read(),
                  "record %d field %s differs at --zstd-level -5" % (k, f))
    for bad in ("-8", "20"):
        p = run([a.tnrec, "build", root, "-o", os.path.join(a.tmp, "bad"), "--zstd-level", bad], ok=False)
        check(p.returncode == 2 and "--zstd-level" in p.stderr, "--zstd-level %s refused" % bad)


def scenario_parts(a):
    root = os.path.join(a.tmp, "root")
    samples.make_root(root, 11, 7, [2013, 2014])
    # a bad file so skipped lists merge too
    with open(os.path.join(root, "train", "2013", "bad_zz.nc"), "wb") as f:
        f.write(b"not netcdf")
    whole = os.path.join(a.tmp, "whole")
    common = ["--shard-records", "3", "-q", "--split", "all"]
    run([a.tnrec, "build", root, "-o", whole] + common)
    p0, p1 = os.path.join(a.tmp, "p0"), os.path.join(a.tmp, "p1")
    run([a.tnrec, "build", root, "-o", p0, "--part", "0/2"] + common)
    env = dict(os.environ, OMPI_COMM_WORLD_RANK="1", OMPI_COMM_WORLD_SIZE="2")
    run([a.tnrec, "build", root, "-o", p1] + common, env=env)
    check(manifest(p1)["build"]["part"] == {"index": 1, "count": 2}, "part from OMPI_COMM_WORLD_*")
    n0, n1 = len(records(a.tnrec, p0)), len(records(a.tnrec, p1))
    check(n0 > 0 and n1 > 0 and n0 + n1 == 11, "parts disjoint and complete (%d + %d)" % (n0, n1))
    merged = os.path.join(a.tmp, "merged")
    run([a.tnrec, "merge", p1, p0, "-o", merged])
    check(records(a.tnrec, merged) == records(a.tnrec, whole), "merged records equal the whole build")
    same_dirs(merged, whole, "merge vs one-machine build")
    p = run([a.tnrec, "merge", p0, "-o", os.path.join(a.tmp, "m2")], ok=False)
    check(p.returncode == 1 and ("0..0 of 1" in p.stderr or "parts" in p.stderr), "a missing part is refused")


def snapshot(d):
    """Every file of d and its bytes."""
    out = {}
    for f in sorted(os.listdir(d)):
        with open(os.path.join(d, f), "rb") as fh:
            out[f] = fh.read()
    return out


def damage_record(shard):
    """Flips a byte in the middle of shard, inside a record's frame: the
    shard still opens, and its record fails its checksum when read."""
    size = os.path.getsize(shard)
    with open(shard, "r+b") as f:
        f.seek(size // 2)
        b = f.read(1)
        f.seek(size // 2)
        f.write(bytes([b[0] ^ 0xFF]))


def scenario_merge_existing(a):
    root = os.path.join(a.tmp, "root")
    samples.make_root(root, 11, 7, [2013, 2014])
    parts = []
    for name, limit in (("p", "3"), ("q", "2")):
        for k in (0, 1):
            d = os.path.join(a.tmp, "%s%d" % (name, k))
            run([a.tnrec, "build", root, "-o", d, "--part", "%d/2" % k, "--shard-records", limit, "-q",
                 "--split", "all"])
            parts.append(d)
    p0, p1, q0, q1 = parts
    out = os.path.join(a.tmp, "out")
    run([a.tnrec, "merge", p0, p1, "-o", out, "-q"])
    before, recs = snapshot(out), records(a.tnrec, out)

    p = run([a.tnrec, "merge", p0, p1, "-o", out])
    check("complete already" in p.stderr, "the same merge again says the dataset is complete: %r" % p.stderr)
    check(snapshot(out) == before, "the same merge again leaves the dataset as it was")

    # q: other shard limits, and a damaged record in part 1's last shard,
    # after every record of part 0: a merge of q fails midway.
    damage_record(os.path.join(q1, shards(q1)[-1]))
    fresh = os.path.join(a.tmp, "fresh")
    p = run([a.tnrec, "merge", q0, q1, "-o", fresh], ok=False)
    check(p.returncode == 1 and not os.path.exists(fresh),
          "the merge of the damaged parts fails midway, leaving nothing: %d %r" % (p.returncode, p.stderr))

    p = run([a.tnrec, "merge", q0, q1, "-o", out], ok=False)
    check(p.returncode == 1 and "already holds a dataset" in p.stderr,
          "a merge of other parts into the dataset is refused: %d %r" % (p.returncode, p.stderr))
    check(snapshot(out) == before, "the failed merge leaves the dataset byte for byte as it was")
    v = run([a.tnrec, "verify", out], ok=False)
    check(v.returncode == 0, "the dataset verifies after the failed merge: %r" % v.stderr)
    check(records(a.tnrec, out) == recs, "the dataset reads the same records after the failed merge")


def scenario_resume(a):
    root = os.path.join(a.tmp, "root")
    samples.make_root(root, 16, 9, [2013])
    args = ["--shard-records", "2", "-j1", "--zstd-level", "6", "-q"]
    clean = os.path.join(a.tmp, "clean")
    run([a.tnrec, "build", root, "-o", clean] + args)
    resumed_any = False
    for attempt, wait_for in enumerate(["shard-00001.tnr", "shard-00004.tnr"]):
        out = os.path.join(a.tmp, "killed%d" % attempt)
        proc = subprocess.Popen([a.tnrec, "build", root, "-o", out] + args,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.time()
        while not os.path.exists(os.path.join(out, wait_for)) and proc.poll() is None and time.time() - t0 < 60:
            time.sleep(0.002)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        check(not killed or not os.path.exists(os.path.join(out, "manifest.json")),
              "a killed build leaves no manifest")
        before = {f: (st.st_ino, st.st_mtime_ns) for f in os.listdir(out) if f.endswith(".tnr")
                  for st in [os.stat(os.path.join(out, f))]}
        p = run([a.tnrec, "build", root, "-o", out] + args[:-1])
        m = re.search(r"\((\d+) kept from an interrupted run\)", p.stderr)
        if m:
            resumed_any = True
            # finished shards are adopted as they are, never rewritten
            kept = int(m.group(1)) // 2  # --shard-records 2
            for k in range(kept):
                f = "shard-%05d.tnr" % k
                st = os.stat(os.path.join(out, f))
                check(before.get(f) == (st.st_ino, st.st_mtime_ns), "%s rewritten on resume" % f)
        same_dirs(out, clean, "resume after kill at %s" % wait_for)
    check(resumed_any, "at least one rerun resumed from finished shards")
    # a rerun with other options does not mix two builds; if the kill misses
    # (the build finished first), try again, and fail if it never lands
    tried = False
    for attempt in range(5):
        out = os.path.join(a.tmp, "killed_other%d" % attempt)
        proc = subprocess.Popen([a.tnrec, "build", root, "-o", out] + args, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        t0 = time.time()
        while not os.path.exists(os.path.join(out, "shard-00002.tnr")) and proc.poll() is None and time.time() - t0 < 60:
            time.sleep(0.002)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if os.path.exists(os.path.join(out, ".tnrec-build-progress.json")):
            p = run([a.tnrec, "build", root, "-o", out, "--dtype", "uint8"], ok=False)
            check(p.returncode == 1 and "different options" in p.stderr, "resume with other options refused")
            tried = True
            break
    check(tried, "no interrupted build to resume with other options in 5 tries: the check was not made")


def write_bad_files(root):
    d = os.path.join(root, "train", "2013")
    good = sorted(f for f in os.listdir(d) if f.endswith(".nc"))[0]
    data = open(os.path.join(d, good), "rb").read()
    bad = {}
    with open(os.path.join(d, "bad_truncated.nc"), "wb") as f:
        f.write(data[: len(data) // 2])
    bad["train/2013/bad_truncated.nc"] = ""
    with open(os.path.join(d, "bad_garbage.nc"), "wb") as f:
        f.write(os.urandom(5000))
    bad["train/2013/bad_garbage.nc"] = "not a NetCDF-4"
    with open(os.path.join(d, "bad_empty.nc"), "wb") as f:
        pass
    bad["train/2013/bad_empty.nc"] = "not a NetCDF-4"
    # missing variable
    src = os.path.join(d, good)
    for name, edit in (("bad_nodbz.nc", "drop"), ("bad_double.nc", "double"), ("bad_dims.nc", "dims"),
                       ("bad_noef.nc", "noef")):
        with netCDF4.Dataset(src) as s, netCDF4.Dataset(os.path.join(d, name), "w") as o:
            for k in s.ncattrs():
                if not (edit == "noef" and k == "ef_number"):
                    o.setncattr(k, s.getncattr(k))
            for dn, dim in s.dimensions.items():
                o.createDimension(dn, 100 if (edit == "dims" and dn == "azimuth") else len(dim))
            for vn, v in s.variables.items():
                if edit == "drop" and vn == "DBZ":
                    continue
                t = "f8" if (edit == "double" and vn == "DBZ") else v.dtype
                nv = o.createVariable(vn, t, v.dimensions)
                for k in v.ncattrs():
                    if k != "_FillValue":
                        nv.setncattr(k, v.getncattr(k))
                val = v[:]
                if edit == "dims" and "azimuth" in v.dimensions:
                    val = val[:, :100] if vn != "azimuth" else val[:100]
                nv[:] = val
    bad["train/2013/bad_nodbz.nc"] = "variable 'DBZ' is missing"
    bad["train/2013/bad_double.nc"] = "has type double"
    bad["train/2013/bad_dims.nc"] = "azimuth=100"
    bad["train/2013/bad_noef.nc"] = "ef_number"
    # a file on which HDF5 1.10.8 itself crashes (found by fuzzing)
    crash = os.path.join(HERE, "..", "fuzz", "corpus", "ingest", "hdf5_crash_dense_links.nc")
    shutil.copy(crash, os.path.join(d, "bad_hdf5crash.nc"))
    bad["train/2013/bad_hdf5crash.nc"] = ""
    return bad


def scenario_corrupt(a):
    root = os.path.join(a.tmp, "root")
    samples.make_root(root, 6, 11, [2013])
    bad = write_bad_files(root)
    with open(os.path.join(root, "catalog.csv"), "a") as f:
        f.write("train/2013/TOR_130501_000000_KTBW_1s_U9.nc,train,2013-05-01 00:00:00,"
                "2013-05-01 00:15:00,TOR,1,1,1\n")
    bad["train/2013/TOR_130501_000000_KTBW_1s_U9.nc"] = "not found"
    out = os.path.join(a.tmp, "out")
    p = run([a.tnrec, "build", root, "-o", out, "-j2"])
    m = manifest(out)
    listed = {s["input"]: s["reason"] for s in m["skipped"]}
    check(sorted(listed) == sorted(bad), "skipped list %s" % sorted(listed))
    for k, why in bad.items():
        check(why in listed.get(k, ""), "reason for %s: %r" % (k, listed.get(k)))
        check(any(k in line and "skipped" in line for line in p.stderr.splitlines()),
              "stderr names %s" % k)
    check(m["records"] == 6, "the good files are all there (%d)" % m["records"])
    check(len(records(a.tnrec, out)) == 6, "6 records")
    out2 = os.path.join(a.tmp, "strict")
    p = run([a.tnrec, "build", root, "-o", out2, "--strict"], ok=False)
    check(p.returncode == 1, "--strict exits 1 (%d)" % p.returncode)
    check(not os.path.exists(os.path.join(out2, "manifest.json")), "--strict writes no manifest")
    check(any(k in p.stderr for k in bad), "--strict names the bad input")
    # a list file naming a missing path
    lst = os.path.join(a.tmp, "list.txt")
    with open(lst, "w") as f:
        f.write("# inputs\n%s\nroot/train/2013/none.nc\n" % os.path.join("root", "train", "2013", nc_files(
            os.path.join(root, "train", "2013"))[0]))
    out3 = os.path.join(a.tmp, "list")
    p = run([a.tnrec, "build", lst, "-o", out3])
    m = manifest(out3)
    check(m["records"] >= 1 and len(m["skipped"]) == 1 and "none.nc" in m["skipped"][0]["input"],
          "list file: missing path skipped")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def scenario_tarball(a):
    root = os.path.join(a.tmp, "root")
    samples.make_root(root, 7, 13, [2013])
    tgz = os.path.join(a.tmp, "srv", "tornet_2013.tar.gz")
    os.makedirs(os.path.dirname(tgz))
    with tarfile.open(tgz, "w:gz") as t:
        for rel in nc_files(root):
            t.add(os.path.join(root, rel), arcname=rel)
    args = ["--shard-records", "3", "-q", "-j2"]
    d = os.path.join(a.tmp, "dir")
    run([a.tnrec, "build", root, "-o", d] + args)
    t = os.path.join(a.tmp, "tar")
    run([a.tnrec, "build", tgz, "-o", t] + args)
    check(records(a.tnrec, t) == records(a.tnrec, d), "tarball records equal the directory's")
    for s in shards(d):
        check(filecmp.cmp(os.path.join(d, s), os.path.join(t, s), shallow=False), "tarball shard %s" % s)
    # split from member paths
    tt = os.path.join(a.tmp, "tar_test")
    dt = os.path.join(a.tmp, "dir_test")
    run([a.tnrec, "build", tgz, "-o", tt, "--split", "test"] + args)
    run([a.tnrec, "build", root, "-o", dt, "--split", "test"] + args)
    check(records(a.tnrec, tt) == records(a.tnrec, dt), "tarball --split test")
    # two year tarballs split over two parts, merged: equal to one build of both
    samples.make_root(os.path.join(a.tmp, "root14"), 4, 19, [2014])
    tgz14 = os.path.join(a.tmp, "srv", "tornet_2014.tar.gz")
    with tarfile.open(tgz14, "w:gz") as t:
        for rel in nc_files(os.path.join(a.tmp, "root14")):
            t.add(os.path.join(a.tmp, "root14", rel), arcname=rel)
    whole, p0, p1, m = (os.path.join(a.tmp, x) for x in ("tw", "tp0", "tp1", "tm"))
    run([a.tnrec, "build", tgz, tgz14, "-o", whole] + args)
    run([a.tnrec, "build", tgz, tgz14, "-o", p0, "--part", "0/2"] + args)
    run([a.tnrec, "build", tgz, tgz14, "-o", p1, "--part", "1/2"] + args)
    run([a.tnrec, "merge", p0, p1, "-o", m])
    check(len(records(a.tnrec, whole)) == 11, "two tarballs: 11 records")
    same_dirs(m, whole, "tarball parts merged vs one build")
    p = run([a.tnrec, "build", tgz, root, "-o", os.path.join(a.tmp, "mixed"), "--part", "0/2"], ok=False)
    check(p.returncode == 1 and "tarball" in p.stderr, "--part mixing tarballs and directories refused")
    port = free_port()
    srv = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                            "--directory", os.path.dirname(tgz)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        h = os.path.join(a.tmp, "http")
        feats = run([a.tnrec, "--version"]).stdout
        if "curl" not in feats:
            SKIPPED.append("tnrec was built without curl: the http tarball part was not run")
            return
        run([a.tnrec, "build", "http://127.0.0.1:%d/tornet_2013.tar.gz" % port, "-o", h] + args)
        check(records(a.tnrec, h) == records(a.tnrec, d), "http records equal the directory's")
        for s in shards(d):
            check(filecmp.cmp(os.path.join(d, s), os.path.join(h, s), shallow=False), "http shard %s" % s)
        p = run([a.tnrec, "build", "http://127.0.0.1:%d/missing.tar.gz" % port, "-o",
                 os.path.join(a.tmp, "h404")], ok=False)
        check(p.returncode == 1 and "missing.tar.gz" in p.stderr, "http 404 is an error naming the URL")
    finally:
        srv.terminate()
        srv.wait()


def scenario_years(a):
    root = os.path.join(a.tmp, "root")
    samples.make_root(root, 12, 17, [2013, 2014, 2015])
    files = nc_files(root)
    lst = os.path.join(a.tmp, "all.txt")
    with open(lst, "w") as f:
        f.write("\n".join(os.path.join(root, x) for x in files) + "\n")
    want = []
    for rel in files:
        with netCDF4.Dataset(os.path.join(root, rel)) as ds:
            y = netCDF4.num2date(ds.variables["time"][0], ds.variables["time"].units,
                                 only_use_cftime_datetimes=False).year
        if y in (2013, 2015):
            want.append(rel)
    o1, o2 = os.path.join(a.tmp, "cat"), os.path.join(a.tmp, "list")
    run([a.tnrec, "build", root, "-o", o1, "--years", "2013,2015-2015", "-q"])
    run([a.tnrec, "build", lst, "-o", o2, "--years", "2013,2015", "-q"])
    k1 = [r.split("\t")[-1] for r in records(a.tnrec, o1)]
    check(k1 == want, "--years from catalog: %s" % k1)
    k2 = [os.path.basename(r.split("\t")[-1]) for r in records(a.tnrec, o2)]
    check(k2 == [os.path.basename(w) for w in want], "--years from the files' first frame")
    o3 = os.path.join(a.tmp, "test")
    want_test = [f for f in files if f.startswith("test/")]
    p = run([a.tnrec, "build", root, "-o", o3, "--split", "test", "-q"], ok=bool(want_test))
    if want_test:
        k3 = [r.split("\t")[-1] for r in records(a.tnrec, o3)]
        check(k3 == want_test, "--split test")
    else:  # a split with no sample is an error, not an empty dataset
        check(p.returncode == 1 and "split test" in p.stderr and
              not os.path.exists(os.path.join(o3, "manifest.json")), "--split test selects nothing: %r" % p.stderr)
    p = run([a.tnrec, "build", root, "-o", os.path.join(a.tmp, "x"), "--years", "20x3"], ok=False)
    check(p.returncode == 2, "bad --years is a usage error")
    p = run([a.tnrec, "build", root, "-o", os.path.join(a.tmp, "y"), "--variables", "FOO"], ok=False)
    check(p.returncode == 2 and "FOO" in p.stderr and "DBZ, VEL" in p.stderr, "unknown variable: a usage error naming it and the valid ones")


def scenario_userblock(a):
    h5jam = shutil.which("h5jam")
    check(h5jam is not None, "h5jam (Debian package hdf5-tools) is installed")
    if h5jam is None:
        return
    root = os.path.join(a.tmp, "root")
    samples.make_root(root, 5, 23, [2013])
    jammed = os.path.join(a.tmp, "jammed")
    ub = os.path.join(a.tmp, "ub.txt")
    with open(ub, "w") as f:
        f.write("a user block ahead of the HDF5 superblock\n")
    for rel in nc_files(root):
        out = os.path.join(jammed, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        run([h5jam, "-i", os.path.join(root, rel), "-u", ub, "-o", out])
        with open(out, "rb") as f:
            check(f.read(1) != b"\x89", "%s starts with the user block" % rel)
    args = ["-q", "-j2", "--shard-records", "2"]
    d, j = os.path.join(a.tmp, "plain"), os.path.join(a.tmp, "ub")
    run([a.tnrec, "build", root, "-o", d] + args)
    p = run([a.tnrec, "build", jammed, "-o", j] + args[1:])
    check("skipped" not in p.stderr or " 0 skipped" in p.stderr, "no file with a user block skipped: " + p.stderr)
    check(records(a.tnrec, j) == records(a.tnrec, d), "user-block records equal the plain files'")
    for s_ in shards(d):
        check(filecmp.cmp(os.path.join(d, s_), os.path.join(j, s_), shallow=False), "user-block shard %s" % s_)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario")
    ap.add_argument("--tnrec", required=True)
    ap.add_argument("--tmp", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.tmp, ignore_errors=True)
    os.makedirs(a.tmp)
    globals()["scenario_" + a.scenario](a)
    if FAILS:
        print("%s: %d check(s) failed" % (a.scenario, len(FAILS)), file=sys.stderr)
        return 1
    if SKIPPED:
        print("%s: SKIPPED (the other checks passed): %s" % (a.scenario, "; ".join(SKIPPED)))
        return 77
    print("%s: all checks passed" % a.scenario)
    shutil.rmtree(a.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
