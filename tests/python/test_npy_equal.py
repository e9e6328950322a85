"""tests/python/test_npy_equal.py: ds[i] equals `tnrec dump --record i --npy
DIR` bit for bit, every field, for float32, float16 and uint8 datasets;
fields= and frames= select and slice the same arrays; the metadata
equals `tnrec dump --records --json`.

usage: test_npy_equal.py TNREC_BINARY SCRATCH_DIR"""
import json
import os
import shutil
import subprocess

import numpy as np

from pycommon import DTYPES, args, check, finish

import tnrec


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def main():
    tnrec_bin, scratch, _ = args()
    out = os.path.join(scratch, "npy_equal")
    shutil.rmtree(out, ignore_errors=True)
    for dt in DTYPES:
        path = os.path.join(scratch, dt)
        ds = tnrec.open(path)
        n = len(ds)
        check(n == 24, "%s: %d records, expected 24" % (dt, n))
        recs = json.loads(subprocess.run([tnrec_bin, "dump", "--records", "--json", path], capture_output=True,
                                         check=True).stdout)["records"]
        sub = tnrec.open(path, fields=["KDP", "range_folded_mask", "time"], frames=2)
        for i in (0, 9, 10, 17, n - 1):
            d = os.path.join(out, "%s_%d" % (dt, i))
            subprocess.run([tnrec_bin, "dump", "--record", str(i), "--npy", d, path], check=True,
                           stdout=subprocess.DEVNULL)
            s = ds[i]
            files = sorted(f[:-4] for f in os.listdir(d) if f.endswith(".npy"))
            check(len(files) == len(ds.schema), "%s record %d: %d files for %d fields" % (dt, i, len(files),
                                                                                         len(ds.schema)))
            for name in files:
                ref = np.load(os.path.join(d, name + ".npy"))
                key = name + "_field" if name in tnrec.META_KEYS else name
                check(key in s, "%s record %d: no %s in ds[i]" % (dt, i, key))
                if key in s:
                    check(same_bits(s[key], ref), "%s record %d: field %s differs from --npy" % (dt, i, name))
            r = recs[i]
            for k in ("label", "category", "ef", "event_id", "key"):
                check(s[k] == r[k], "%s record %d: %s %r, dump says %r" % (dt, i, k, s[k], r[k]))
            check(s["time"] == r["time_unix"], "%s record %d: time %r vs %r" % (dt, i, s["time"], r["time_unix"]))
            ss = sub[i]
            check(set(ss) == {"KDP", "range_folded_mask", "time_field"} | set(tnrec.META_KEYS),
                  "%s: fields= gave %s" % (dt, sorted(ss)))
            check(same_bits(ss["KDP"], np.ascontiguousarray(s["KDP"][-2:])), "%s record %d: frames=2 KDP" % (dt, i))
            check(same_bits(ss["time_field"], s["time_field"][-2:]), "%s record %d: frames=2 time" % (dt, i))
            check(same_bits(ds[i - n]["DBZ"], s["DBZ"]), "%s: negative index" % dt)
        try:
            ds[n]
            check(False, "%s: ds[len] did not raise IndexError" % dt)
        except IndexError:
            pass
        check(ds.manifest["records"] == n and ds.manifest["format"] == "tnrec-dataset", "%s: manifest" % dt)
        w = ds.manifest["class_weights"]
        check(abs(ds.class_weights[0] - w["0"]) < 1e-3 and abs(ds.class_weights[1] - w["1"]) < 1e-3,
              "%s: class_weights %r vs manifest %r" % (dt, ds.class_weights, w))
        enc = {f["name"]: f["encoding"] for f in ds.schema}
        check(enc["DBZ"] == dt and enc["range_folded_mask"] == "raw", "%s: schema encodings %r" % (dt, enc))
        # several threads share one open dataset (each gets its own decoder)
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(4) as ex:
            got = list(ex.map(lambda i: ds[i]["ZDR"], list(range(n)) * 2))
        check(all(same_bits(g, ds[i % n]["ZDR"]) for i, g in enumerate(got)), "%s: reads from 4 threads" % dt)
        # a single shard opens too, with its own record numbering
        shard = os.path.join(path, sorted(f for f in os.listdir(path) if f.endswith(".tnr"))[1])
        one = tnrec.open(shard)
        check(one.manifest is None, "%s: a bare shard has no manifest" % dt)
        check(same_bits(one[0]["VEL"], ds[10]["VEL"]), "%s: shard 1 record 0 != dataset record 10" % dt)
    shutil.rmtree(out, ignore_errors=True)
    finish("test_npy_equal")


main()
