#!/usr/bin/python3
"""Writes small TorNet-shaped NetCDF samples with Python's netCDF4 and xarray.

Used by the `tnrec build` tests and benchmark: a TORNET_ROOT (catalog.csv,
train/YYYY/*.nc, test/YYYY/*.nc) whose files follow the TorNet v1.1 schema
(dimensions, types, attributes in the real order, one shuffled+deflated
chunk per variable). Values are random but radar-like: NaN where there is
no echo, some -999 MissingDataFlag gates. A few files vary the encoding of
`time` (float64 seconds, int64 minutes, xarray's own choice) so the reader
must decode CF units. Not here: real radar structure; checking anything.

usage: test_build_samples.py ROOT [--count N] [--seed S] [--years 2013,2014]
"""
import argparse
import datetime as dt
import os

import netCDF4
import numpy as np

VARS = ["DBZ", "VEL", "KDP", "RHOHV", "ZDR", "WIDTH"]
RANGES = {"DBZ": (-20, 60), "VEL": (-60, 60), "KDP": (-2, 5),
          "RHOHV": (0.2, 1.04), "ZDR": (-1, 8), "WIDTH": (0, 9)}
NT, NAZ, NR, NS = 4, 120, 240, 2
SITES = ["KTBW", "KOUN", "KFWS", "KLSX"]
CATS = ["NUL", "WRN", "TOR"]


QUANT = {"DBZ": 0.5, "VEL": 0.5, "KDP": 1 / 32, "RHOHV": 1 / 300, "ZDR": 1 / 16, "WIDTH": 0.5}


def smooth(rng, lo, hi):
    """A coarse random field upsampled to full resolution: storm-like blobs."""
    coarse = rng.uniform(lo, hi, size=(NT, NAZ // 8, NR // 8, NS))
    full = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)
    return full + rng.normal(0, 0.012 * (hi - lo), size=full.shape)


def moment(rng, name, echo):
    lo, hi = RANGES[name]
    pad = 0.15 * (hi - lo)
    base = np.clip(smooth(rng, lo, hi), lo - pad, hi + pad)
    q = QUANT[name]
    base = (np.round(base / q) * q).astype(np.float32)
    base[~echo] = np.nan
    miss = rng.random(base.shape) < 0.01
    base[miss & echo] = -999.0
    return base


def sample_fields(rng, start, cat):
    echo = smooth(rng, 0, 1) > 0.55
    fields = {v: moment(rng, v, echo) for v in VARS}
    rfm = (rng.random((NT, NAZ, NR, NS)) < 0.05).astype(np.uint8)
    tor = cat == "TOR"
    ef = int(rng.integers(0, 4)) if tor else -1
    labels = np.zeros(NT, np.uint8)
    if tor:
        labels[rng.integers(1, NT):] = 1
        # a v1.0-style inconsistency the loader must repair
        if rng.random() < 0.3:
            labels[-1] = 0
    elif rng.random() < 0.2:
        labels[-1] = 1          # label says 1 but ef_number is -1
    times = [start + dt.timedelta(minutes=5 * i) for i in range(NT)]
    return fields, rfm, labels, ef, times


def write_netcdf4(path, rng, start, cat, site, event_id, time_style, storage="chunked"):
    fields, rfm, labels, ef, times = sample_fields(rng, start, cat)
    ds = netCDF4.Dataset(path, "w", format="NETCDF4")
    ds.setncattr("site_name", site)
    ds.setncattr("site_lat", np.float64(27.7))
    ds.setncattr("site_lon", np.float64(-82.4))
    ds.setncattr("MissingDataFlag", np.float64(-999.0))
    ds.setncattr("ef_number", np.float64(ef))
    ds.setncattr("event_id", np.int64(event_id))
    ds.setncattr("episode_id", np.int64(event_id // 10))
    if cat == "TOR":
        ds.setncattr("tornado_start_time", times[1].strftime("%Y-%m-%d %H:%M:%S"))
        ds.setncattr("tornado_end_time", times[-1].strftime("%Y-%m-%d %H:%M:%S"))
    else:
        ds.setncattr("tornado_start_time", "")
        ds.setncattr("tornado_end_time", "")
    ds.setncattr("category", cat)
    ds.setncattr("scit_id", "U2")
    ds.setncattr("storm_event_url", "https://www.ncdc.noaa.gov/stormevents/")
    for name, n in (("time", NT), ("azimuth", NAZ), ("range", NR), ("sweep", NS), ("lims", 2)):
        ds.createDimension(name, n)
    az = ds.createVariable("azimuth", "f4", ("azimuth",))
    az[:] = np.linspace(100, 160, NAZ, dtype=np.float32)
    rg = ds.createVariable("range", "f4", ("range",))
    rg[:] = np.linspace(2000, 62000, NR, dtype=np.float32)
    epoch = dt.datetime(1970, 1, 1)
    if time_style == "minutes_int64":
        ref = dt.datetime(start.year, 1, 1, 0, 0, 0)
        tv = ds.createVariable("time", "i8", ("time",))
        tv.units = "minutes since %s" % ref.strftime("%Y-%m-%d %H:%M:%S")
        tv[:] = np.array([int((t - ref).total_seconds() // 60) for t in times], np.int64)
    elif time_style == "days_float":
        ref = dt.datetime(2000, 1, 1)
        tv = ds.createVariable("time", "f8", ("time",))
        tv.units = "days since 2000-01-01T00:00:00Z"
        tv[:] = np.array([(t - ref).total_seconds() / 86400.0 for t in times])
    else:
        tv = ds.createVariable("time", "f8", ("time",))
        tv.units = "seconds since 1970-01-01 00:00:00"
        tv[:] = np.array([(t - epoch).total_seconds() for t in times])
    tv.calendar = "standard"
    el = ds.createVariable("elevation", "f8", ("sweep",))
    el[:] = np.array([0.5, 0.9])
    fl = ds.createVariable("frame_labels", "u1", ("time",))
    fl[:] = labels
    ny = ds.createVariable("nyquist_velocity", "f4", ("time", "sweep"))
    ny[:] = rng.uniform(20, 30, (NT, NS)).astype(np.float32)
    al = ds.createVariable("azimuth_limits", "f4", ("lims",))
    al[:] = np.array([100, 160], np.float32)
    rl = ds.createVariable("range_limits", "f4", ("lims",))
    rl[:] = np.array([2000, 62000], np.float32)
    dims4 = ("time", "azimuth", "range", "sweep")
    chunks = [NT, NAZ, NR, NS]
    for v in VARS:
        if storage == "contiguous":      # no chunks: the reader must use the NetCDF API
            var = ds.createVariable(v, "f4", dims4, contiguous=True, fill_value=np.float32(np.nan))
        elif storage == "noshuffle":     # deflate only, one chunk
            var = ds.createVariable(v, "f4", dims4, zlib=True, complevel=1, shuffle=False,
                                    chunksizes=chunks, fill_value=np.float32(np.nan))
        elif storage == "chunks":        # one chunk per frame: the NetCDF API reads it
            var = ds.createVariable(v, "f4", dims4, zlib=True, complevel=1, shuffle=True,
                                    chunksizes=[1, NAZ, NR, NS], fill_value=np.float32(np.nan))
        else:
            var = ds.createVariable(v, "f4", dims4, zlib=True, complevel=4, shuffle=True,
                                    chunksizes=chunks, fill_value=np.float32(np.nan))
        var.set_auto_maskandscale(False)
        var[:] = fields[v]
    m = ds.createVariable("range_folded_mask", "u1", dims4, zlib=True, complevel=4,
                          shuffle=True, chunksizes=chunks)
    m[:] = rfm
    ds.close()
    return times


def write_xarray(path, rng, start, cat, site, event_id):
    """The same schema written through xarray (its own time encoding)."""
    import xarray as xr
    fields, rfm, labels, ef, times = sample_fields(rng, start, cat)
    dims4 = ("time", "azimuth", "range", "sweep")
    data = {v: (dims4, fields[v]) for v in VARS}
    data["range_folded_mask"] = (dims4, rfm)
    data["frame_labels"] = (("time",), labels)
    data["elevation"] = (("sweep",), np.array([0.5, 0.9]))
    data["nyquist_velocity"] = (("time", "sweep"), rng.uniform(20, 30, (NT, NS)).astype(np.float32))
    data["azimuth_limits"] = (("lims",), np.array([100, 160], np.float32))
    data["range_limits"] = (("lims",), np.array([2000, 62000], np.float32))
    coords = {"time": np.array(times, dtype="datetime64[ns]"),
              "azimuth": np.linspace(100, 160, NAZ, dtype=np.float32),
              "range": np.linspace(2000, 62000, NR, dtype=np.float32)}
    attrs = {"site_name": site, "site_lat": 27.7, "site_lon": -82.4, "MissingDataFlag": -999.0,
             "ef_number": float(ef), "event_id": int(event_id), "episode_id": int(event_id // 10),
             "tornado_start_time": "", "tornado_end_time": "", "category": cat,
             "scit_id": "U2", "storm_event_url": ""}
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    enc = {v: {"zlib": True, "complevel": 4, "shuffle": True,
               "chunksizes": (NT, NAZ, NR, NS), "_FillValue": np.float32(np.nan)} for v in VARS}
    enc["range_folded_mask"] = {"zlib": True, "complevel": 4, "shuffle": True,
                                "chunksizes": (NT, NAZ, NR, NS), "_FillValue": None}
    enc["time"] = {"units": "seconds since 2010-01-01 00:00:00", "dtype": "int64"}
    ds.to_netcdf(path, format="NETCDF4", engine="netcdf4", encoding=enc)
    return times


def make_root(root, count, seed, years):
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    rows = []
    for i in range(count):
        year = years[i % len(years)]
        day = dt.datetime(year, 4, 1) + dt.timedelta(days=int(rng.integers(0, 150)),
                                                     seconds=int(rng.integers(0, 86400)))
        split = "test" if (day.timetuple().tm_yday % 20) >= 17 else "train"
        cat = CATS[i % 3]
        site = SITES[i % len(SITES)]
        event_id = 400000 + i * 7
        name = "%s_%s_%s_%s_%ds_U%d.nc" % (cat, day.strftime("%y%m%d"), day.strftime("%H%M%S"),
                                           site, event_id, i)
        rel = os.path.join(split, str(year), name)
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        style = ["seconds_f64", "minutes_int64", "days_float", "xarray"][i % 4]
        if style == "xarray":
            times = write_xarray(path, rng, day, cat, site, event_id)
        else:
            storage = {2: "contiguous", 5: "noshuffle", 6: "chunks"}.get(i % 7, "chunked")
            times = write_netcdf4(path, rng, day, cat, site, event_id, style, storage)
        ef = -1
        with netCDF4.Dataset(path) as ds:
            ef = int(ds.getncattr("ef_number"))
        rows.append((rel, split, times[0].strftime("%Y-%m-%d %H:%M:%S"),
                     times[-1].strftime("%Y-%m-%d %H:%M:%S"), cat, ef, event_id, event_id // 10))
    with open(os.path.join(root, "catalog.csv"), "w") as f:
        f.write("filename,type,start_time,end_time,category,ef_number,event_id,episode_id\n")
        for r in sorted(rows):
            f.write("%s,%s,%s,%s,%s,%d,%d,%d\n" % r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--years", default="2013,2014")
    a = ap.parse_args()
    make_root(a.root, a.count, a.seed, [int(y) for y in a.years.split(",")])


if __name__ == "__main__":
    main()
