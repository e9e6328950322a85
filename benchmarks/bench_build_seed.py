#!/usr/bin/python3
"""Baselines for benchmarks/bench_build.sh, on the same .nc files.

  seed  the seed project's preprocessing: xarray opens each sample, numpy
        clips each radar variable to its [min, max], scales it to 0..255
        uint8 with NaN as 0, and the bytes are written to one output file
  read  just reading every variable of every sample through the NetCDF
        library (netCDF4-python: netcdf-c and HDF5 do the work)

usage: bench_build_seed.py seed|read OUT_FILE NC_FILE...
Prints "<mode> <samples> <wall seconds> <cpu seconds>" for the work alone
(imports done before the clock starts; one process, one core).
"""
import sys
import time

import netCDF4
import numpy as np
import xarray as xr

RANGES = {"DBZ": (-20, 60), "VEL": (-60, 60), "KDP": (-2, 5), "RHOHV": (0.2, 1.04),
          "ZDR": (-1, 8), "WIDTH": (0, 9)}


def seed(files, out):
    with open(out, "wb") as f:
        for path in files:
            with xr.open_dataset(path) as ds:
                chans = []
                for v, (lo, hi) in RANGES.items():
                    x = ds[v].values.astype(np.float32)
                    x = np.where(x == -999.0, np.nan, x)
                    q = (np.clip(x, lo, hi) - lo) / (hi - lo) * 255.0
                    chans.append(np.nan_to_num(q, nan=0.0).astype(np.uint8))
                chans.append(ds["range_folded_mask"].values.astype(np.uint8))
                label = np.uint8(ds["frame_labels"].values[-1])
                f.write(np.stack(chans, axis=-1).tobytes())
                f.write(label.tobytes())


def read(files):
    total = 0
    for path in files:
        with netCDF4.Dataset(path) as ds:
            ds.set_auto_maskandscale(False)
            for v in ds.variables.values():
                total += np.asarray(v[:]).nbytes
    return total


def main():
    mode, out, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    t0, c0 = time.perf_counter(), time.process_time()
    if mode == "seed":
        seed(files, out)
    else:
        read(files)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    print("%s %d %.4f %.4f" % (mode, len(files), dt, dc))


if __name__ == "__main__":
    main()
