"""tests/cli/check_dump.py: `tnrec dump` on the fixture, every view, checked
against the fixture's own inputs with numpy.

usage: check_dump.py DUMP_FIXTURE TNREC SCRATCH_DIR
"""
import datetime
import glob
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_fixture as cf  # noqa: E402

EF_KEYS = ["-1", "0", "1", "2", "3", "4", "5"]


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def expected_counts(recs):
    label = {"0": 0, "1": 0}
    cat = {"TOR": 0, "NUL": 0, "WRN": 0}
    ef = {k: 0 for k in EF_KEYS}
    for r in recs:
        label[str(r["label"])] += 1
        cat[r["category"]] += 1
        ef[str(r["ef"])] += 1
    return {"label": label, "category": cat, "ef": ef}


def check_summary(c, tnrec, path, recs, expected, kind, nshards, nskipped):
    rc, out, err = cf.run(tnrec, "dump", "--json", path)
    if not c.check(rc == 0, "dump --json %s: exit %d: %s" % (path, rc, err)):
        return
    s = json.loads(out)
    for key in ["records", "skipped", "class_counts", "bytes", "raw_bytes", "ratio", "shards",
                "schema", "class_weights", "skipped_inputs", "kind"]:
        c.check(key in s, "summary of %s lacks key %r" % (path, key))
    c.check(s["records"] == len(recs), "records %r, want %d" % (s.get("records"), len(recs)))
    c.check(s["skipped"] == nskipped, "skipped %r, want %d" % (s.get("skipped"), nskipped))
    c.check(s["kind"] == kind, "kind %r, want %r" % (s.get("kind"), kind))
    want = expected_counts(recs)
    cc = s["class_counts"]
    c.check(sorted(cc.keys()) == ["category", "ef", "label"], "class_counts keys %r" % list(cc))
    c.check(list(cc["label"].keys()) == ["0", "1"], "label keys %r" % list(cc["label"]))
    c.check(list(cc["category"].keys()) == ["TOR", "NUL", "WRN"], "category keys %r" % list(cc["category"]))
    c.check(list(cc["ef"].keys()) == EF_KEYS, "ef keys %r" % list(cc["ef"]))
    c.check(cc == want, "class_counts %r, want %r" % (cc, want))
    n = len(recs)
    for lab in ["0", "1"]:
        nc = want["label"][lab]
        w = n / (2.0 * nc) if nc else 0.0
        c.check(math.isclose(s["class_weights"][lab], w, rel_tol=1e-12),
                "class weight %s: %r, want %r" % (lab, s["class_weights"][lab], w))
    # Sizes: bytes are the shard files on disk; raw bytes are the records'.
    c.check(len(s["shards"]) == nshards, "shards %d, want %d" % (len(s["shards"]), nshards))
    on_disk = sum(os.path.getsize(sh["path"]) for sh in s["shards"])
    c.check(s["bytes"] == on_disk, "bytes %r, files have %d" % (s["bytes"], on_disk))
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "*.tnr")))
        c.check(len(files) == nshards, "%s has %d shard files" % (path, len(files)))
        c.check(s["bytes"] == sum(os.path.getsize(f) for f in files), "bytes differ from the .tnr files")
    c.check(sum(sh["records"] for sh in s["shards"]) == n, "shard record counts do not add up")
    rc, out, err = cf.run(tnrec, "dump", "--records", "--json", path)
    raw = sum(r["raw_size"] for r in json.loads(out)["records"])
    c.check(s["raw_bytes"] == raw, "raw_bytes %r, records say %d" % (s["raw_bytes"], raw))
    c.check(math.isclose(s["ratio"], raw / on_disk, rel_tol=1e-9), "ratio %r" % s["ratio"])
    # Schema as written.
    c.check(len(s["schema"]) == len(expected["fields"]), "schema has %d fields" % len(s["schema"]))
    for got, f in zip(s["schema"], expected["fields"]):
        c.check(got["name"] == f["name"], "field name %r, want %r" % (got["name"], f["name"]))
        c.check(got["encoding"] == f["encoding"], "%s encoding %r" % (f["name"], got["encoding"]))
        c.check(got["dtype"] == f["dtype"], "%s dtype %r" % (f["name"], got["dtype"]))
        c.check(got["shape"] == f["shape"], "%s shape %r" % (f["name"], got["shape"]))
        c.check(got["dims"] == f["dims"], "%s dims %r" % (f["name"], got["dims"]))
        if f["encoding"] != "raw":
            for k in ["offset", "scale", "nodata"]:
                c.check(np.float32(got[k]) == np.float32(f[k]), "%s %s %r" % (f["name"], k, got[k]))
        if f["encoding"] == "uint8":
            for k in ["qmin", "qmax"]:
                c.check(np.float32(got[k]) == np.float32(f[k]), "%s %s %r" % (f["name"], k, got[k]))
    if nskipped:
        c.check(s["skipped_inputs"] == expected["skipped"], "skipped_inputs %r" % s["skipped_inputs"])
        c.check(s["build"].get("source") == "dump_fixture", "build %r" % s.get("build"))
    return s


def check_records(c, tnrec, path, recs):
    rc, out, err = cf.run(tnrec, "dump", "--records", path)
    c.check(rc == 0, "dump --records: exit %d: %s" % (rc, err))
    lines = [l for l in out.splitlines() if l and not l.startswith("#")]
    c.check(len(lines) == len(recs), "--records printed %d lines, want %d" % (len(lines), len(recs)))
    for i, (line, r) in enumerate(zip(lines, recs)):
        cols = line.split("\t")
        want = [str(i), str(r["label"]), r["category"], str(r["ef"]), str(r["event_id"]), iso(r["time"]), r["key"]]
        c.check(cols == want, "--records line %d: %r, want %r" % (i, cols, want))
    rc, out, err = cf.run(tnrec, "dump", "--records", "--json", path)
    c.check(rc == 0, "dump --records --json: exit %d" % rc)
    got = json.loads(out)["records"]
    c.check(len(got) == len(recs), "--records --json has %d records" % len(got))
    for i, (g, r) in enumerate(zip(got, recs)):
        for k in ["label", "category", "ef", "event_id", "episode_id", "key"]:
            c.check(g[k] == r[k], "record %d %s: %r, want %r" % (i, k, g[k], r[k]))
        c.check(g["index"] == i, "record %d index %r" % (i, g["index"]))
        c.check(g["time_unix"] == r["time"] and g["time"] == iso(r["time"]), "record %d time %r" % (i, g["time"]))
        c.check(os.path.exists(g["shard"]), "record %d shard %r missing" % (i, g["shard"]))


def check_record(c, tnrec, scratch, expected, path, set_name, i, recs):
    """--npy and --record N --json for record i: arrays against the inputs,
    statistics against numpy on those arrays."""
    out_dir = os.path.join(scratch, "npy", set_name, "r%d" % i, "nested")
    rc, out, err = cf.run(tnrec, "dump", "--record", str(i), "--npy", out_dir, path)
    if not c.check(rc == 0, "dump --npy record %d of %s: exit %d: %s" % (i, path, rc, err)):
        return
    names = sorted(f["name"] + ".npy" for f in expected["fields"])
    c.check(sorted(os.listdir(out_dir)) == names, "npy files %r" % sorted(os.listdir(out_dir)))
    rc, out, err = cf.run(tnrec, "dump", "--record", str(i), "--json", path)
    if not c.check(rc == 0, "dump --record %d --json: exit %d: %s" % (i, rc, err)):
        return
    stats = json.loads(out)
    c.check(stats["index"] == i, "stats index %r" % stats["index"])
    c.check(stats["meta"]["key"] == recs[i]["key"], "stats key %r" % stats["meta"]["key"])
    rc, text, err = cf.run(tnrec, "dump", "--record", str(i), path)
    c.check(rc == 0, "dump --record %d (text): exit %d" % (i, rc))

    for f in expected["fields"]:
        name = f["name"]
        tag = "%s record %d %s" % (set_name, i, name)
        c.check(("field " + name) in text, tag + ": not in the text statistics")
        x = cf.field_input(scratch, expected, set_name, i, f)
        arr = np.load(os.path.join(out_dir, name + ".npy"), allow_pickle=False)
        want_dt = np.float32 if f["encoding"] != "raw" else cf.DTYPES[f["dtype"]]
        c.check(arr.dtype == np.dtype(want_dt), "%s: npy dtype %s" % (tag, arr.dtype))
        c.check(arr.shape == tuple(f["shape"]), "%s: npy shape %s" % (tag, arr.shape))
        if arr.shape != tuple(f["shape"]) or arr.dtype != np.dtype(want_dt):
            continue
        if f["encoding"] == "raw":
            c.check(arr.tobytes() == x.tobytes(), tag + ": raw values differ")
            nodata = np.isnan(x) if x.dtype.kind == "f" else np.zeros(x.shape, dtype=bool)
        else:
            ref, nodata = cf.expected_decoded(f, x)
            c.check(np.all(arr[nodata] == np.float32(f["nodata"])), tag + ": no-data gates not nodata")
            diff = np.abs(arr.astype(np.float64) - ref.astype(np.float64))
            tol = cf.tolerance(f, ref)
            worst = float(np.max(diff[~nodata] - tol[~nodata])) if np.any(~nodata) else 0.0
            c.check(worst <= 0.0, "%s: decoded values off by up to %g beyond the bound" % (tag, worst))
            if f["encoding"] == "float32":
                c.check(np.array_equal(arr, ref), tag + ": float32 decode not exact")
        # Statistics per channel (last dimension).
        fs = stats["fields"].get(name)
        if not c.check(fs is not None, tag + ": no statistics"):
            continue
        nch = arr.shape[-1] if arr.ndim else 1
        c.check(len(fs["channels"]) == nch, "%s: %d channels, want %d" % (tag, len(fs["channels"]), nch))
        for ch in range(min(nch, len(fs["channels"]))):
            vals = (arr[..., ch] if arr.ndim else arr).astype(np.float64).ravel()
            nd = (nodata[..., ch] if arr.ndim else nodata).ravel()
            data = vals[~nd]
            g = fs["channels"][ch]
            ctag = "%s channel %d" % (tag, ch)
            c.check(g["count"] == vals.size, "%s: count %r, want %d" % (ctag, g["count"], vals.size))
            c.check(g["data"] == data.size, "%s: data %r, want %d" % (ctag, g["data"], data.size))
            c.check(math.isclose(g["nodata_fraction"], nd.mean(), abs_tol=1e-12),
                    "%s: nodata_fraction %r, want %r" % (ctag, g["nodata_fraction"], nd.mean()))
            if data.size:
                c.check(g["min"] == data.min(), "%s: min %r, want %r" % (ctag, g["min"], data.min()))
                c.check(g["max"] == data.max(), "%s: max %r, want %r" % (ctag, g["max"], data.max()))
                c.check(math.isclose(g["mean"], data.mean(), rel_tol=1e-9, abs_tol=1e-12),
                        "%s: mean %r, want %r" % (ctag, g["mean"], data.mean()))
            else:
                c.check(g["min"] is None and g["mean"] is None, ctag + ": empty channel stats not null")


def main():
    fixture, tnrec, scratch = sys.argv[1], sys.argv[2], sys.argv[3]
    c = cf.Checker("check_dump")
    expected = cf.make_fixture(fixture, scratch)
    ds = os.path.join(scratch, "ds")
    single = os.path.join(scratch, "single.tnr")
    ds_recs = expected["sets"]["ds"]
    single_recs = expected["sets"]["single"]

    # Summary.
    check_summary(c, tnrec, ds, ds_recs, expected, "dataset", 3, 2)
    check_summary(c, tnrec, single, single_recs, expected, "shard", 1, 0)
    rc, out, err = cf.run(tnrec, "dump", ds)
    c.check(rc == 0, "dump (text): exit %d: %s" % (rc, err))
    for needle in ["records        7 in 3 shards", "TOR: 3  NUL: 2  WRN: 2", "0: 4  1: 3",
                   "skipped        2 inputs", expected["skipped"][0]["input"], "DBZ", "range_folded_mask"]:
        c.check(needle in out, "text summary lacks %r" % needle)
    rc, out, err = cf.run(tnrec, "dump", "--json", ds, single)
    c.check(rc == 0, "dump --json of two paths: exit %d" % rc)
    both = json.loads(out)
    c.check(isinstance(both, list) and [s["records"] for s in both] == [7, 3], "two-path JSON %r" % out[:200])

    # A dataset with no records.
    empty = os.path.join(scratch, "empty")
    rc, out, err = cf.run(tnrec, "dump", "--json", empty)
    e = json.loads(out) if rc == 0 else {}
    c.check(rc == 0 and e.get("records") == 0 and e.get("skipped") == 0
            and e.get("class_counts") == expected_counts([])
            and e.get("class_weights") == {"0": 0.0, "1": 0.0}, "empty dataset: %d %r %r" % (rc, out, err))
    rc, out, err = cf.run(tnrec, "dump", empty)
    c.check(rc == 0 and "records        0" in out, "empty dataset (text): %d %r" % (rc, err))
    rc, out, err = cf.run(tnrec, "dump", "--records", empty)
    c.check(rc == 0 and not [l for l in out.splitlines() if not l.startswith("#")], "empty --records: %r" % out)
    rc, out, err = cf.run(tnrec, "dump", "--record", "0", empty)
    c.check(rc == 1 and "no records" in err and empty in err, "empty --record 0: %d %r" % (rc, err))

    # A key that is not UTF-8 stays in the JSON, its odd byte as '?'.
    latin1 = os.path.join(scratch, "latin1.tnr")
    rc, out, err = cf.run(tnrec, "dump", "--records", "--json", latin1)
    got = json.loads(out)["records"] if rc == 0 else []
    c.check(rc == 0 and [r["key"] for r in got] == ["train/2013/caf?.nc"], "latin-1 key: %d %r %r" % (rc, out, err))

    rc, out, err = cf.run(tnrec, "dump", "--records", "--json", empty, ds, single)
    docs = json.loads(out) if rc == 0 else []
    c.check(rc == 0 and [len(d["records"]) for d in docs] == [0, 7, 3], "--records --json, 3 PATHs: %d %r" % (rc, out[:200]))

    # --records.
    check_records(c, tnrec, ds, ds_recs)
    check_records(c, tnrec, single, single_recs)

    # --record N and --npy, every record of both.
    for i in range(len(ds_recs)):
        check_record(c, tnrec, scratch, expected, ds, "ds", i, ds_recs)
    for i in range(len(single_recs)):
        check_record(c, tnrec, scratch, expected, single, "single", i, single_recs)
    # --npy without --record is record 0.
    d0 = os.path.join(scratch, "npy_default")
    rc, out, err = cf.run(tnrec, "dump", "--npy", d0, single)
    c.check(rc == 0, "dump --npy (default record): exit %d: %s" % (rc, err))
    ref = os.path.join(scratch, "npy", "single", "r0", "nested")
    for f in expected["fields"]:
        a = np.load(os.path.join(d0, f["name"] + ".npy"))
        b = np.load(os.path.join(ref, f["name"] + ".npy"))
        c.check(a.tobytes() == b.tobytes(), "--npy default record is not record 0 (%s)" % f["name"])

    dj = os.path.join(scratch, "npy_json")
    rc, out, err = cf.run(tnrec, "dump", "--npy", dj, "--json", ds)
    files = json.loads(out).get("files", []) if rc == 0 else []
    c.check(rc == 0 and sorted(f["field"] for f in files) == sorted(f["name"] for f in expected["fields"])
            and all(os.path.exists(f["file"]) for f in files), "--npy --json: %d %r" % (rc, out))

    # --record N --npy DIR: statistics as well as the files (the README's example).
    dj = os.path.join(scratch, "npy_stats")
    rc, out, err = cf.run(tnrec, "dump", ds, "--record", "3", "--npy", dj, "--json")
    both = json.loads(out) if rc == 0 else {}
    rc2, out2, err2 = cf.run(tnrec, "dump", ds, "--record", "3", "--json")
    alone = json.loads(out2) if rc2 == 0 else {}
    c.check(rc == 0 and both.get("fields") == alone.get("fields") and both.get("fields")
            and len(both.get("npy", {}).get("files", [])) == len(expected["fields"]),
            "--record 3 --npy --json: %d %r" % (rc, out[:300]))
    rc, out, err = cf.run(tnrec, "dump", ds, "--record", "3", "--npy", dj)
    c.check(rc == 0 and "wrote " in out and "field DBZ" in out, "--record 3 --npy (text): %d %r" % (rc, out[:300]))

    # Errors: exit 1 naming the file and the fix; usage errors exit 2.
    rc, out, err = cf.run(tnrec, "dump", "--record", "7", ds)
    c.check(rc == 1 and ds in err and "out of range" in err and "0 to 6" in err,
            "--record 7 of 7: exit %d, %r" % (rc, err))
    rc, out, err = cf.run(tnrec, "dump", "--record", "3", "--npy", os.path.join(scratch, "x"), single)
    c.check(rc == 1 and single in err, "--npy record 3 of 3: exit %d, %r" % (rc, err))
    missing = os.path.join(scratch, "no_such_dataset")
    rc, out, err = cf.run(tnrec, "dump", missing)
    c.check(rc == 1 and "no_such_dataset" in err, "missing PATH: exit %d, %r" % (rc, err))
    junk = os.path.join(scratch, "junk.tnr")
    with open(junk, "wb") as f:
        f.write(b"this is not a shard" * 20)
    rc, out, err = cf.run(tnrec, "dump", junk)
    c.check(rc == 1 and "junk.tnr" in err, "junk shard: exit %d, %r" % (rc, err))
    rc, out, err = cf.run(tnrec, "dump", "--json", ds, junk)
    c.check(rc == 1 and "junk.tnr" in err, "good + junk: exit %d" % rc)
    c.check(rc == 1 and json.loads(out)[0]["records"] == 7, "good + junk: the good PATH is still summarised")
    afile = os.path.join(scratch, "a_file")
    open(afile, "w").close()
    rc, out, err = cf.run(tnrec, "dump", "--npy", os.path.join(afile, "sub"), single)
    c.check(rc == 1 and "a_file" in err, "--npy under a file: exit %d, %r" % (rc, err))
    for args in (["--bogus", ds], ["--record", "abc", ds], ["--record", "-1", ds], ["--record"], [],
                 ["--npy", os.path.join(scratch, "y"), ds, single], ["--records", "--record", "1", ds]):
        rc, out, err = cf.run(tnrec, "dump", *args)
        c.check(rc == 2 and "hint:" in err, "dump %r: exit %d (want 2), %r" % (args, rc, err))
    rc, out, err = cf.run(tnrec, "dump", "--help")
    c.check(rc == 0 and "--records" in out and "--npy" in out, "dump --help: exit %d" % rc)
    return c.done()


if __name__ == "__main__":
    sys.exit(main())
