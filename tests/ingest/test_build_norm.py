#!/usr/bin/python3
"""`tnrec build`'s normalisation, checked a second way.

test_build_cli.py's `values` scenario compares float32 records with a
numpy normalisation; this one looks at the float16 encoding and at other
variables (ZDR, KDP, WIDTH), and at the schema itself:
  - each field's offset and scale in the shard header (`tnrec dump
    --json`) are exactly (lo + hi) / 2 and (hi - lo) / 2 of TorNet's
    documented ranges, and the manifest's build.norm records those ranges;
  - a --norm override (KDP=-4:6) lands in the schema and the manifest;
  - the decoded values of every record are (x - offset) / scale of the
    NetCDF file's values, read here with netCDF4, within float16's
    rounding (relative 2^-11, absolute 2^-24), no-data gates -3.
usage: test_build_norm.py --tnrec BIN --tmp DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import netCDF4
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_build_samples as samples  # noqa: E402
from ingest_common import FAILS, check  # noqa: E402

# TorNet's normalisation ranges (docs/ingest.md), written out again here.
RANGES = {"DBZ": (-20, 60), "VEL": (-60, 60), "KDP": (-2, 5), "RHOHV": (0.2, 1.04),
          "ZDR": (-1, 8), "WIDTH": (0, 9)}


def run(args):
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stdout, p.stderr, file=sys.stderr)
        raise SystemExit("command failed (%d): %s" % (p.returncode, " ".join(args)))
    return p.stdout


def nc_files(root):
    out = []
    for dp, _, fs in os.walk(root):
        out += [os.path.relpath(os.path.join(dp, f), root) for f in fs if f.endswith(".nc")]
    return sorted(out)


def check_build(tnrec, root, out, variables, ranges, tmp):
    info = json.loads(run([tnrec, "dump", "--json", out]))
    schema = {f["name"]: f for f in info["schema"]}
    with open(os.path.join(out, "manifest.json")) as f:
        norm = json.load(f)["build"]["norm"]
    for v in variables:
        lo, hi = ranges[v]
        f = schema.get(v)
        check(f is not None, "%s: field in the schema" % v)
        if f is None:
            continue
        want_off, want_sc = np.float32((lo + hi) / 2.0), np.float32((hi - lo) / 2.0)
        check(f["encoding"] == "float16", "%s: encoding %s" % (v, f["encoding"]))
        check(np.float32(f["offset"]) == want_off, "%s: schema offset %r, want %r" % (v, f["offset"], float(want_off)))
        check(np.float32(f["scale"]) == want_sc, "%s: schema scale %r, want %r" % (v, f["scale"], float(want_sc)))
        check(norm.get(v) == [lo, hi], "%s: manifest build.norm %r, want %r" % (v, norm.get(v), [lo, hi]))
    recs = [l for l in run([tnrec, "dump", "--records", out]).splitlines() if l and not l.startswith("#")]
    keys = [r.split("\t")[-1] for r in recs]
    check(keys == nc_files(root), "one record per file, in sorted order")
    for i, key in enumerate(keys):
        npy = os.path.join(tmp, "npy%d" % i)
        run([tnrec, "dump", "--npy", npy, "--record", str(i), out])
        with netCDF4.Dataset(os.path.join(root, key)) as ds:
            ds.set_auto_maskandscale(False)
            flag = np.float32(ds.getncattr("MissingDataFlag"))
            for v in variables:
                lo, hi = ranges[v]
                x = np.asarray(ds.variables[v][:], np.float32)
                bad = ~np.isfinite(x) | (x == flag)
                n = (x - np.float32((lo + hi) / 2.0)) / np.float32((hi - lo) / 2.0)
                d = np.load(os.path.join(npy, v + ".npy"))
                check(d.shape == x.shape, "%s %s: shape %s, want %s" % (key, v, d.shape, x.shape))
                if d.shape != x.shape:
                    continue
                check(bool(np.all(d[bad] == np.float32(-3.0))), "%s %s: no-data gates are -3" % (key, v))
                good = ~bad
                check(good.sum() > 1000, "%s %s: enough gates with data" % (key, v))
                err = np.abs(d[good].astype(np.float64) - n[good].astype(np.float64))
                bound = np.abs(n[good]).astype(np.float64) * 2.0 ** -11 + 2.0 ** -24
                worst = float((err / bound).max())
                check(worst <= 1.0, "%s %s: float16 values within rounding of (x - offset) / scale "
                      "(worst error %.2f x the bound)" % (key, v, worst))
        shutil.rmtree(npy)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tnrec", required=True)
    ap.add_argument("--tmp", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.tmp, ignore_errors=True)
    os.makedirs(a.tmp)
    root = os.path.join(a.tmp, "root")
    samples.make_root(root, 4, 11, [2014])

    variables = ["ZDR", "KDP", "WIDTH"]
    out = os.path.join(a.tmp, "out")
    run([a.tnrec, "build", root, "-o", out, "--dtype", "float16", "--variables", ",".join(variables), "-q"])
    check_build(a.tnrec, root, out, variables, RANGES, a.tmp)

    over = dict(RANGES, KDP=(-4, 6))
    out2 = os.path.join(a.tmp, "out_norm")
    run([a.tnrec, "build", root, "-o", out2, "--dtype", "float16", "--variables", "KDP,WIDTH",
         "--norm", "KDP=-4:6", "-q"])
    check_build(a.tnrec, root, out2, ["KDP", "WIDTH"], over, a.tmp)

    if FAILS:
        print("test_build_norm: %d check(s) failed" % len(FAILS), file=sys.stderr)
        return 1
    print("test_build_norm: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
