"""tests/python/test_loader.py: ds.batches() gives the C loader's batches
(what `tnrec train` sees) bit for bit: loader_fixture runs tnrec_loader
with tnrec train's settings (shuffle, seed, epoch, balanced class
weights) and writes every batch; Python's batches for the same seed and
epoch must equal them whatever the thread counts, and every sample must
be the record's fields from ds[i] assembled as the loader documents
(last frames; each variable's sweeps, then the range-folded mask).

usage: test_loader.py TNREC_BINARY SCRATCH_DIR LOADER_FIXTURE"""
import glob
import os
import shutil
import subprocess

import numpy as np

from pycommon import args, check, finish

import tnrec


def c_batches(fixture, path, out, batch, seed, epoch, threads, frames, variables, mask):
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([fixture, path, out, str(batch), str(seed), str(epoch), str(threads), str(frames),
                    ",".join(variables), str(int(mask))], check=True)
    steps = sorted({os.path.basename(p)[:5] for p in glob.glob(os.path.join(out, "*_x.npy"))})
    return [{k: np.load(os.path.join(out, "%s_%s.npy" % (s, k))) for k in ("x", "label", "weight", "category",
                                                                           "index")} for s in steps]


def check_nodata(scratch):
    """nodata=X: no-data gates (NaN in physical units) read X in ds[i] and in
    batches(), everything else as without it (tnrec train --nodata X)."""
    for dt in ("float32", "float16", "uint8"):
        path = os.path.join(scratch, dt)
        own, filled, phys = tnrec.open(path), tnrec.open(path, nodata=0.5), tnrec.open(path, physical=True)
        gaps = 0
        for i in range(min(len(own), 6)):
            a, b, p = own[i], filled[i], phys[i]
            for f in ("DBZ", "VEL", "ZDR"):
                m = np.isnan(p[f])
                gaps += int(m.sum())
                check(np.all(b[f][m] == np.float32(0.5)) and np.all(a[f][m] == np.float32(-3)),
                      "%s record %d %s: no-data gates read %s with nodata=0.5" % (dt, i, f, np.unique(b[f][m])[:4]))
                check(np.array_equal(a[f][~m], b[f][~m]), "%s record %d %s: nodata= changed gates with data" % (dt, i, f))
        check(gaps > 0, "%s: the fixture has no no-data gates" % dt)
        for g, w in zip(filled.batches(5, seed=2), own.batches(5, seed=2)):
            want = np.where(w["x"] == np.float32(-3), np.float32(0.5), w["x"])
            check(g["x"].tobytes() == want.tobytes(), "%s: batches() with nodata=0.5 differ" % dt)
    try:
        tnrec.open(os.path.join(scratch, "float16"), nodata=float("nan"))
        check(False, "nodata=nan accepted")
    except ValueError:
        pass


def check_range_limits(scratch):
    """range_limits=True: each batch carries its records' range_limits
    (ds[i]["range_limits"]); the other arrays are the same as without."""
    ds = tnrec.open(os.path.join(scratch, "float16"))
    n = 0
    for a, b in zip(ds.batches(6, seed=3, range_limits=True), ds.batches(6, seed=3)):
        check("range_limits" not in b, "batches() without range_limits=True carry them")
        check(a["range_limits"].shape == (len(a["index"]), 2) and a["range_limits"].dtype == np.float32,
              "range_limits shape %s" % (a["range_limits"].shape,))
        check(a["x"].tobytes() == b["x"].tobytes(), "range_limits=True changed the inputs")
        for k, i in enumerate(a["index"]):
            check(np.array_equal(a["range_limits"][k], ds[int(i)]["range_limits"]),
                  "record %d: range_limits %s, ds[i] %s" % (i, a["range_limits"][k], ds[int(i)]["range_limits"]))
            n += 1
    check(n == len(ds), "range_limits for %d of %d records" % (n, len(ds)))
    ds.close()


def main():
    _, scratch, rest = args()
    fixture = rest[0]
    out = os.path.join(scratch, "loader")
    cases = [
        # dtype, batch, seed, epoch, C threads, Python threads, frames, variables, mask
        ("float16", 5, 1, 0, 2, 1, 0, None, False),
        ("uint8", 4, 3, 2, 1, 2, 2, ["DBZ", "KDP"], True),
        ("float32", 7, 0, 1, 2, 2, 1, ["VEL", "RHOHV", "ZDR"], False),
    ]
    for dt, batch, seed, epoch, ct, pt, frames, variables, mask in cases:
        path = os.path.join(scratch, dt)
        ds = tnrec.open(path, fields=variables, frames=frames or None, mask=mask)
        vars_ = ds._variables()
        want = c_batches(fixture, path, out, batch, seed, epoch, ct, frames, vars_, mask)
        got = list(ds.batches(batch, shuffle=True, seed=seed, threads=pt, epoch=epoch))
        name = "%s batch %d seed %d epoch %d" % (dt, batch, seed, epoch)
        check(len(got) == len(want) == (len(ds) + batch - 1) // batch, "%s: %d batches, C %d" % (name, len(got),
                                                                                              len(want)))
        for s, (g, w) in enumerate(zip(got, want)):
            for k in ("x", "label", "weight", "category", "index"):
                check(g[k].dtype == w[k].dtype and g[k].shape == w[k].shape and g[k].tobytes() == w[k].tobytes(),
                      "%s step %d: %s differs from the C loader" % (name, s, k))
        # one loader over several epochs, batches dropped as they come: the arrays
        # handed over (tnrec_loader_swap) are given back to the loader and reused
        with ds.loader(batch, shuffle=True, seed=seed, threads=pt) as ld:
            for rep in range(2):
                bases = set()
                for s, b in enumerate(ld.epoch(epoch)):
                    check(b["x"].tobytes() == want[s]["x"].tobytes() and np.array_equal(b["index"], want[s]["index"]),
                          "%s: loader pass %d step %d differs from the C loader" % (name, rep, s))
                    bases.add(b["x"].ctypes.data)
                    b = None
                check(len(bases) <= 6, "%s: %d distinct batch arrays in one epoch: not reused" % (name, len(bases)))
                # each sample is the record itself, assembled in the documented order
        plain = tnrec.open(path)
        T = plain.schema[0]["shape"][0]
        nf = frames or T
        seen = []
        for b in got:
            for j, rec in enumerate(b["index"]):
                r = plain[int(rec)]
                parts = [r[v][T - nf:] for v in vars_]
                if mask:
                    parts.append((r["range_folded_mask"][T - nf:] != 0).astype(np.float32))
                x = np.concatenate(parts, axis=-1)
                check(np.array_equal(b["x"][j], x), "%s: sample of record %d is not its fields" % (name, rec))
                check(b["label"][j] == r["label"], "%s: label of record %d" % (name, rec))
                check(b["weight"][j] == np.float32(ds.class_weights[r["label"]]), "%s: weight %d" % (name, rec))
                seen.append(int(rec))
        check(sorted(seen) == list(range(len(ds))), "%s: the epoch is not a permutation" % name)
        # the layout and drop_last options
        a = next(iter(ds.batches(batch, seed=seed, epoch=epoch, layout="NCDHW")))
        check(np.array_equal(a["x"], got[0]["x"].transpose(0, 4, 1, 2, 3)) and a["x"].flags.c_contiguous,
              "%s: NCDHW is not the transposed NDHWC batch" % name)
        dl = list(ds.batches(batch, seed=seed, epoch=epoch, drop_last=True))
        check(len(dl) == len(ds) // batch and all(len(b["label"]) == batch for b in dl), "%s: drop_last" % name)
        o1 = [b["index"].tolist() for b in ds.batches(batch, seed=seed + 1, epoch=epoch)]
        check(o1 != [b["index"].tolist() for b in got], "%s: another seed gave the same order" % name)
        o2 = [b["index"].tolist() for b in ds.batches(batch, shuffle=False)]
        check(sum(o2, []) == list(range(len(ds))), "%s: shuffle=False is not record order" % name)
    check_nodata(scratch)
    check_range_limits(scratch)
    # closing the dataset closes its loaders first; a kept batch stays readable
    ds = tnrec.open(os.path.join(scratch, "float16"))
    ld = ds.loader(4, threads=2)
    first = next(ld.epoch(0))
    ds.close()
    check(ld._h is None, "dataset close left its loader open")
    check(first["x"].shape == (4, 4, 120, 240, 12) and float(first["x"].sum()) == float(first["x"].sum()),
          "a batch kept past close")
    try:
        list(ld.epoch(1))
        check(False, "a closed loader ran")
    except ValueError:
        pass
    shutil.rmtree(out, ignore_errors=True)
    finish("test_loader")


main()
