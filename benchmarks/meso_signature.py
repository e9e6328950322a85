#!/usr/bin/python3
"""A TorNet-schema archive with a signature `tnrec synth` does not make: a
mesocyclone-scale velocity couplet, for measuring how well a model
configuration learns a small feature (docs/train.md, "Choosing tiny").

usage: meso_signature.py ROOT [--train 300] [--test 60] [--tor 0.2] [--seed 1] [--no-decoy]
                         [--fill-centre]

Writes ROOT/catalog.csv and ROOT/{train,test}/2014/CAT_YYMMDD_HHMMSS_SITE_EVENTs_CELL.nc
(TorNet v1.1 variables, types, dimensions and attributes; one
shuffle+deflate chunk per variable; NaN `_FillValue` where there is no
echo), which `tnrec build` reads like the real archive.

Every sample has a storm: smooth reflectivity blobs (no echo, NaN, below
a threshold, and a NaN wedge at the near range and the chip's far edge),
the radial component of a uniform environmental wind plus noise in VEL,
and smooth uninformative KDP, RHOHV, ZDR and WIDTH. What tells the classes
apart is only in VEL, and only at full resolution:
  TOR  a Rankine vortex seen by the radar: a couplet of inbound and
       outbound radial velocity across azimuth, core radius 5-10 gates
       (a couplet 10-20 gates across), peak 20-35 m/s, moving a little
       from frame to frame, in both sweeps;
  WRN  a decoy of the same size and strength rotated by 90 degrees (a
       convergence or divergence along the beam), so that "a strong small
       velocity feature" is not enough (--no-decoy: nothing, as NUL);
  NUL  neither.
--fill-centre: where there is no echo, each variable holds the centre of its
TorNet normalisation range (DBZ 20, VEL 0, KDP 1.5, RHOHV 0.62, ZDR 3.5,
WIDTH 4.5) instead of NaN, so that `tnrec build` with the default ranges
stores 0 there, not no-data (-3); everything else is drawn as without it
(docs/train.md, "Why the couplet is not learned").
Labels: TOR samples have every frame tornadic and ef_number 0-3; the
others -1. Days follow TorNet's split (day of year mod 20 >= 17 is test),
one event id per sample.
"""
import argparse
import datetime as dt
import os

import netCDF4
import numpy as np

VARS = ["DBZ", "VEL", "KDP", "RHOHV", "ZDR", "WIDTH"]
NT, NAZ, NR, NS = 4, 120, 240, 2
SITES = ["KTLX", "KFWS", "KLZK", "KDMX", "KBMX"]
CENTRES = {"DBZ": 20.0, "VEL": 0.0, "KDP": 1.5, "RHOHV": 0.62, "ZDR": 3.5, "WIDTH": 4.5}
NODATA = {}                # variable -> value where there is no echo (NaN when absent)


def blobs(rng, count, scale):
    """Sum of Gaussian blobs over (azimuth, range), values about 0..1."""
    a = np.arange(NAZ)[:, None]
    r = np.arange(NR)[None, :]
    out = np.zeros((NAZ, NR))
    for _ in range(count):
        ca, cr = rng.uniform(0, NAZ), rng.uniform(0, NR)
        sa, sr = rng.uniform(0.5, 1.5) * scale, rng.uniform(0.5, 1.5) * scale * 2
        out += rng.uniform(0.5, 1.0) * np.exp(-((a - ca) ** 2 / (2 * sa ** 2) + (r - cr) ** 2 / (2 * sr ** 2)))
    return out


def vortex(ca, cr, radius, vmax, rotate):
    """Radial velocity of a Rankine vortex centred at (ca, cr) gates: the
    tangential wind projected on the beam (a couplet across azimuth); with
    rotate, the same field turned by 90 degrees (along the beam)."""
    a = np.arange(NAZ)[:, None] - ca
    r = np.arange(NR)[None, :] - cr
    d = np.sqrt(a ** 2 + r ** 2) + 1e-6
    vt = np.where(d < radius, vmax * d / radius, vmax * radius / d)
    return vt * ((r if rotate else a) / d)


def sample(rng, cat, decoy):
    """Fields (time, azimuth, range, sweep) float32 for one sample."""
    f = {v: np.empty((NT, NAZ, NR, NS), np.float32) for v in VARS}
    storm = blobs(rng, int(rng.integers(2, 5)), 25)
    echo = storm > 0.25
    echo[:, :int(rng.integers(4, 20))] = False          # near-range gap
    echo[:, NR - int(rng.integers(1, 30)):] = False     # far edge of the chip
    wind, direction = rng.uniform(5, 25), rng.uniform(0, 2 * np.pi)
    az = np.deg2rad(np.linspace(0, 60, NAZ))[:, None] + direction
    radial = wind * np.cos(az) * np.ones((1, NR))
    ca, cr = rng.uniform(20, NAZ - 20), rng.uniform(40, NR - 50)
    echo[max(0, int(ca) - 15):int(ca) + 15, max(0, int(cr) - 15):int(cr) + 15] = True  # the feature has echo
    radius, vmax = rng.uniform(5, 10), rng.uniform(20, 35)
    da, dr = rng.uniform(-1, 1, 2)
    for t in range(NT):
        for s in range(NS):
            dbz = 5 + 55 * storm + rng.normal(0, 2, (NAZ, NR))
            vel = radial + rng.normal(0, 3, (NAZ, NR))
            if cat == "TOR" or (cat == "WRN" and decoy):
                vel += vortex(ca + da * t, cr + dr * t, radius, vmax * (1 - 0.1 * s), cat == "WRN")
            fields = {
                "DBZ": dbz,
                "VEL": np.clip(vel, -64, 64),
                "KDP": 0.5 + 1.5 * storm + rng.normal(0, 0.3, (NAZ, NR)),
                "RHOHV": 0.97 - 0.05 * storm + rng.normal(0, 0.01, (NAZ, NR)),
                "ZDR": 0.5 + 2 * storm + rng.normal(0, 0.4, (NAZ, NR)),
                "WIDTH": 2 + 3 * storm + np.abs(rng.normal(0, 1, (NAZ, NR))),
            }
            for v in VARS:
                x = fields[v].astype(np.float32)
                x[~echo] = NODATA.get(v, np.nan)
                f[v][t, :, :, s] = x
    return f


def write(path, rng, start, cat, site, event_id, fields):
    """One TorNet v1.1 file at path holding fields (as sample() gives)."""
    ef = int(rng.integers(0, 4)) if cat == "TOR" else -1
    times = [start + dt.timedelta(minutes=5 * i) for i in range(NT)]
    ds = netCDF4.Dataset(path, "w", format="NETCDF4")
    try:
        for k, v in (("site_name", site), ("site_lat", np.float64(35.3)), ("site_lon", np.float64(-97.3)),
                     ("MissingDataFlag", np.float64(-999.0)), ("ef_number", np.float64(ef)),
                     ("event_id", np.int64(event_id)), ("episode_id", np.int64(event_id // 7))):
            ds.setncattr(k, v)
        tor = cat == "TOR"
        ds.setncattr("tornado_start_time", times[0].strftime("%Y-%m-%d %H:%M:%S") if tor else "")
        ds.setncattr("tornado_end_time", times[-1].strftime("%Y-%m-%d %H:%M:%S") if tor else "")
        ds.setncattr("category", cat)
        ds.setncattr("scit_id", "M1")
        ds.setncattr("storm_event_url", "")
        for name, n in (("time", NT), ("azimuth", NAZ), ("range", NR), ("sweep", NS), ("lims", 2)):
            ds.createDimension(name, n)
        ds.createVariable("azimuth", "f4", ("azimuth",))[:] = np.linspace(200, 260, NAZ, dtype=np.float32)
        ds.createVariable("range", "f4", ("range",))[:] = np.linspace(10000, 69750, NR, dtype=np.float32)
        tv = ds.createVariable("time", "f8", ("time",))
        tv.units = "seconds since 1970-01-01 00:00:00"
        tv.calendar = "standard"
        tv[:] = np.array([(t - dt.datetime(1970, 1, 1)).total_seconds() for t in times])
        ds.createVariable("elevation", "f8", ("sweep",))[:] = np.array([0.5, 0.9])
        ds.createVariable("frame_labels", "u1", ("time",))[:] = np.full(NT, 1 if tor else 0, np.uint8)
        ds.createVariable("nyquist_velocity", "f4", ("time", "sweep"))[:] = np.full((NT, NS), 28.0, np.float32)
        ds.createVariable("azimuth_limits", "f4", ("lims",))[:] = np.array([200, 260], np.float32)
        ds.createVariable("range_limits", "f4", ("lims",))[:] = np.array([10000, 69750], np.float32)
        dims4 = ("time", "azimuth", "range", "sweep")
        for v in VARS:
            var = ds.createVariable(v, "f4", dims4, zlib=True, complevel=1, shuffle=True,
                                    chunksizes=[NT, NAZ, NR, NS], fill_value=np.float32(np.nan))
            var.set_auto_maskandscale(False)
            var[:] = fields[v]
        ds.createVariable("range_folded_mask", "u1", dims4, zlib=True, complevel=1, shuffle=True,
                          chunksizes=[NT, NAZ, NR, NS])[:] = np.zeros((NT, NAZ, NR, NS), np.uint8)
    finally:
        ds.close()
    return times, ef


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--train", type=int, default=300)
    ap.add_argument("--test", type=int, default=60)
    ap.add_argument("--tor", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-decoy", dest="decoy", action="store_false", help="WRN samples without the rotated couplet")
    ap.add_argument("--fill-centre", action="store_true",
                    help="no echo: the variable's normalisation centre instead of NaN")
    a = ap.parse_args()
    if a.fill_centre:
        NODATA.update(CENTRES)
    if not (0 < a.tor < 1) or a.train < 1 or a.test < 1:
        ap.error("--train and --test must be positive and --tor between 0 and 1")
    rng = np.random.default_rng(a.seed)
    archive(a.root, a.train, a.test, a.tor, rng, lambda cat: sample(rng, cat, a.decoy))


def archive(root, n_train, n_test, tor, rng, make):
    """ROOT/catalog.csv and n_train + n_test samples, tor of them TOR and the
    rest split 1:2 between WRN and NUL; make(cat) gives one sample's fields."""
    train_days = [d for d in range(1, 366) if d % 20 < 17]
    test_days = [d for d in range(1, 366) if d % 20 >= 17]
    rows = []
    for split, n, days in (("train", n_train, train_days), ("test", n_test, test_days)):
        os.makedirs(os.path.join(root, split, "2014"), exist_ok=True)
        for i in range(n):
            u = rng.random()
            cat = "TOR" if u < tor else ("WRN" if u < tor + (1 - tor) / 3 else "NUL")
            start = dt.datetime(2014, 1, 1) + dt.timedelta(days=int(rng.choice(days)) - 1,
                                                           seconds=int(rng.integers(0, 86000)))
            site = SITES[int(rng.integers(0, len(SITES)))]
            event_id = 700000 + len(rows)
            name = "%s_%s_%s_%s_%ds_M%d.nc" % (cat, start.strftime("%y%m%d"), start.strftime("%H%M%S"),
                                               site, event_id, i % 10)
            rel = os.path.join(split, "2014", name)
            times, ef = write(os.path.join(root, rel), rng, start, cat, site, event_id, make(cat))
            rows.append((rel, split, times[0].strftime("%Y-%m-%d %H:%M:%S"),
                         times[-1].strftime("%Y-%m-%d %H:%M:%S"), cat, ef, event_id, event_id // 7))
    with open(os.path.join(root, "catalog.csv"), "w") as f:
        f.write("filename,type,start_time,end_time,category,ef_number,event_id,episode_id\n")
        for r in sorted(rows):
            f.write("%s,%s,%s,%s,%s,%d,%d,%d\n" % r)
    print("%d samples in %s" % (len(rows), root))


if __name__ == "__main__":
    main()
