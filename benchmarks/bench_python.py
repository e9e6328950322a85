"""benchmarks/bench_python.py: the Python package against the C loader and
against reading the NetCDF files with xarray, side by side in one run.

usage: /usr/bin/python3 benchmarks/bench_python.py BUILD_DIR WORK_DIR [--samples 96] [--rounds 5] [--cpu 0]
           [--dtypes float16,uint8] [--xarray-samples 24]

WORK_DIR/src is a synthetic TorNet (`tnrec synth`), WORK_DIR/ds_<dtype>
its `tnrec build --dtype <dtype>`; both are made when missing. Every
measurement runs pinned to one core (--cpu), one decode thread, page cache
warm; each round runs every contender once, in turn, and the table gives
the median over rounds and the ratios of medians:

  c_loader      build/benchmarks/bench_train_loader --threads 1 --batch 16
                (the C loader alone; its own median of 2 epochs)
  batches       ds.loader(16, threads=1, prefetch=4).epoch(e): the same
                loader through Python, each batch copied once into numpy
                arrays (reused once dropped)
  batches_view  the same with copy=False (views of the loader's buffer)
  getitem       ds[i] in a Python loop over every record, the six moments
                (fields=DBZ,...,WIDTH), shuffled order
  xarray        MIT's way: xr.open_dataset per .nc file, the six moments
                and range_folded_mask read, normalised with numpy
                ((x - offset) / scale, NaN to -3) and stacked into the
                same (4, 120, 240, 12) float32 sample; a fixed subset of
                --xarray-samples files per round
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

VARS = ["DBZ", "VEL", "KDP", "RHOHV", "ZDR", "WIDTH"]


def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("work")
    ap.add_argument("--samples", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--xarray-samples", type=int, default=24)
    ap.add_argument("--dtypes", default="float16,uint8")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    os.environ.setdefault("TNREC_LIBRARY", os.path.join(build, "libtnrec.so"))
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import tnrec
    import xarray as xr

    tbin = os.path.join(build, "bin", "tnrec")
    src = os.path.join(a.work, "src")
    dtypes = a.dtypes.split(",")
    if not os.path.exists(os.path.join(src, "catalog.csv")):
        sh(tbin, "synth", src, "--samples", str(a.samples), "--seed", "11", "-j", "2", "--force")
    dsdirs = {}
    for dt in dtypes:
        dsdirs[dt] = os.path.join(a.work, "ds_" + dt)
        if not os.path.exists(os.path.join(dsdirs[dt], "manifest.json")):
            sh(tbin, "build", src, "-o", dsdirs[dt], "--dtype", dt, "-j", "2", "-q")
    os.sched_setaffinity(0, {a.cpu})
    dss = {dt: tnrec.open(dsdirs[dt], fields=VARS) for dt in dtypes}
    ds0 = dss[dtypes[0]]
    n = len(ds0)
    consts = {f["name"]: (np.float32(f["offset"]), np.float32(f["scale"])) for f in ds0.schema if f["name"] in VARS}
    files = [os.path.join(src, ds0.meta(i)["key"]) for i in range(n)][: a.xarray_samples]
    order = np.random.default_rng(0).permutation(n)
    epoch = [0]

    def c_loader(dt):
        def run():
            r = subprocess.run(["taskset", "-c", str(a.cpu), os.path.join(build, "benchmarks", "bench_train_loader"),
                                dsdirs[dt], "--batch", "16", "--epochs", "2", "--threads", "1"],
                               check=True, capture_output=True, text=True)
            return json.loads(r.stdout.splitlines()[0])["samples_per_s"]
        return run

    def loader(ld):
        def run():
            epoch[0] += 1
            t0, k = time.perf_counter(), 0
            for b in ld.epoch(epoch[0]):
                k += len(b["label"])
            return k / (time.perf_counter() - t0)
        return run

    def getitem(ds):
        def run():
            t0 = time.perf_counter()
            for i in order:
                ds[int(i)]
            return n / (time.perf_counter() - t0)
        return run

    def xarray():
        t0 = time.perf_counter()
        for f in files:
            with xr.open_dataset(f) as d:
                parts = []
                for v in VARS:
                    x = d[v].values[-4:].astype(np.float32)
                    off, sc = consts[v]
                    parts.append(np.nan_to_num((x - off) / sc, nan=-3.0))
                mask = d["range_folded_mask"].values[-4:]
                label = d["frame_labels"].values[-1]
            sample = np.concatenate(parts, axis=-1)
            assert sample.shape == (4, 120, 240, 12) and mask.shape[0] == 4 and label in (0, 1)
        return len(files) / (time.perf_counter() - t0)

    runs = {"xarray": xarray}
    for dt in dtypes:
        # one loader for all rounds, like bench_train_loader (prefetch 4 as there)
        runs["c_loader " + dt] = c_loader(dt)
        runs["batches " + dt] = loader(dss[dt].loader(16, shuffle=True, seed=1, threads=1, prefetch=4))
        runs["batches_view " + dt] = loader(dss[dt].loader(16, shuffle=True, seed=1, threads=1, prefetch=4,
                                                           copy=False))
        runs["getitem " + dt] = getitem(dss[dt])
    for k, fn in runs.items():  # warm the page cache and the imports
        if not k.startswith("c_loader"):
            fn()
    res = {k: [] for k in runs}
    for r in range(a.rounds):
        for k, fn in runs.items():
            res[k].append(fn())
        print("round %d: %s" % (r + 1, ", ".join("%s %.1f" % (k, v[-1]) for k, v in res.items())), flush=True)
    med = {k: statistics.median(v) for k, v in res.items()}
    load = os.getloadavg()
    print()
    print("%d samples (4 x 120 x 240 x 12 float32 each), one core (cpu %d), load average %.1f %.1f %.1f"
          % (n, a.cpu, *load))
    print("| reader | samples/s (median of %d rounds) | all rounds |" % a.rounds)
    print("|---|---|---|")
    for k in runs:
        print("| %s | %.1f | %s |" % (k, med[k], ", ".join("%.1f" % v for v in res[k])))
    print()
    for dt in dtypes:
        print("%s: batches / xarray = %.1fx (goal >= 10x); getitem / c_loader = %.2fx (goal >= 0.5x); "
              "batches / c_loader = %.2fx (goal >= 0.9x); batches(copy=False) / c_loader = %.2fx"
              % (dt, med["batches " + dt] / med["xarray"], med["getitem " + dt] / med["c_loader " + dt],
                 med["batches " + dt] / med["c_loader " + dt], med["batches_view " + dt] / med["c_loader " + dt]))
        print("  per-round batches / c_loader: %s" % ", ".join(
            "%.2f" % (b / c) for b, c in zip(res["batches " + dt], res["c_loader " + dt])))


main()
