#!/usr/bin/python3
"""`tnrec build --nodata X`: gates with no data decode as X.

On a small synthetic archive, built once with the default (-3) and once
with --nodata 0, then with --nodata 0.5 in uint8:
  - every gate that decodes as -3 in the default build decodes as X in the
    other, and every other value of every variable is the same bits
    (float16; uint8 too, against its own default build);
  - the shard schema (dump --json) and the manifest's build parameters
    carry X; the default build's parameters have no "nodata" key, so
    datasets built before the option resume and compare as before;
  - a rerun into the same directory with another no-data value is refused
    (exit 1, the directory named), and one with the same value is up to
    date;
  - a checkpoint trained on the default data with `--nodata dataset`
    refuses the X data at eval (its data schema records the no-data
    value); one trained with the default input value (0) takes both;
  - out-of-range and non-numeric values exit 2 naming --nodata.
usage: test_build_nodata.py --tnrec BIN --tmp DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

VARS = ["DBZ", "VEL", "KDP", "RHOHV", "ZDR", "WIDTH"]


def run(args, want=0):
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != want:
        sys.exit("FAIL: %s exited %d, expected %d\n%s%s" % (" ".join(args), p.returncode, want, p.stdout, p.stderr))
    return p


def fail(msg):
    sys.exit("FAIL: " + msg)


def record_fields(tnrec, ds, index, out):
    run([tnrec, "dump", ds, "--record", str(index), "--npy", out])
    return {v: np.load(os.path.join(out, v + ".npy")) for v in VARS}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tnrec", required=True)
    ap.add_argument("--tmp", required=True)
    a = ap.parse_args()
    t = a.tnrec
    shutil.rmtree(a.tmp, ignore_errors=True)
    os.makedirs(a.tmp)
    j = lambda *p: os.path.join(a.tmp, *p)
    run([t, "synth", j("tn"), "--samples", "12", "--seed", "4", "--tor-fraction", "0.5"])
    run([t, "build", j("tn"), "-o", j("d3"), "-q", "-j", "1"])
    run([t, "build", j("tn"), "-o", j("d0"), "-q", "-j", "1", "--nodata", "0"])
    run([t, "build", j("tn"), "-o", j("u3"), "-q", "--dtype", "uint8"])
    run([t, "build", j("tn"), "-o", j("u5"), "-q", "--dtype", "uint8", "--nodata=0.5"])

    n = json.loads(run([t, "dump", "--json", j("d3")]).stdout)["records"]
    checked = 0
    for base, other, x in (("d3", "d0", 0.0), ("u3", "u5", 0.5)):
        for i in range(n):
            ref = record_fields(t, j(base), i, j("npy", base, str(i)))
            got = record_fields(t, j(other), i, j("npy", other, str(i)))
            for v in VARS:
                nd = ref[v] == -3.0
                if not np.all(got[v][nd] == np.float32(x)):
                    fail("%s record %d %s: no-data gates are not %g" % (other, i, v, x))
                if not np.array_equal(ref[v][~nd].view(np.uint32), got[v][~nd].view(np.uint32)):
                    fail("%s record %d %s: values with data differ from %s" % (other, i, v, base))
                checked += int(nd.sum())
    if checked == 0:
        fail("the archive has no no-data gates to check")

    for ds, x in (("d3", -3.0), ("d0", 0.0), ("u5", 0.5)):
        info = json.loads(run([t, "dump", "--json", j(ds)]).stdout)
        fields = {f["name"]: f for f in info["schema"]}
        for v in VARS:
            if fields[v]["nodata"] != x:
                fail("%s: schema nodata of %s is %r, not %g" % (ds, v, fields[v]["nodata"], x))
        params = json.load(open(j(ds, "manifest.json")))["build"]
        if ds == "d3" and "nodata" in params:
            fail("the default build records a nodata parameter")
        if ds != "d3" and params.get("nodata") != x:
            fail("%s: manifest build parameters lack nodata %g: %r" % (ds, x, params.get("nodata")))

    p = run([t, "build", j("tn"), "-o", j("d0"), "-q", "-j", "1"], want=1)
    if j("d0") not in p.stderr or "other options" not in p.stderr:
        fail("a rerun with another no-data value was not refused by name: " + p.stderr)
    run([t, "build", j("tn"), "-o", j("d0"), "-q", "-j", "1", "--nodata", "0"])

    run([t, "train", j("d3"), "-o", j("run"), "--model", "c4,g,o", "--epochs", "1", "--batch", "4", "-q",
         "--nodata", "dataset"])
    p = run([t, "eval", j("run"), j("d0")], want=1)
    if "nodata" not in p.stderr and "no-data" not in p.stderr:
        fail("eval of a -3 checkpoint on --nodata 0 data did not name the no-data value: " + p.stderr)
    run([t, "train", j("d3"), "-o", j("run0"), "--model", "c4,g,o", "--epochs", "1", "--batch", "4", "-q"])
    e3 = run([t, "eval", j("run0"), j("d3"), "--json"]).stdout
    e0 = run([t, "eval", j("run0"), j("d0"), "--json"]).stdout
    if e3 != e0:
        fail("a checkpoint with the default input value scored the -3 and the 0 build differently")

    for bad in ("2000", "abc", "nan"):
        p = run([t, "build", j("tn"), "-o", j("bad"), "--nodata", bad], want=2)
        if "--nodata" not in p.stderr:
            fail("--nodata %s: message does not name the flag: %s" % (bad, p.stderr))
    if os.path.exists(j("bad")):
        fail("a refused --nodata left an output directory")
    print("ok: %d no-data gates checked in float16 and uint8" % checked)


if __name__ == "__main__":
    main()
