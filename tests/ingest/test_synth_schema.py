#!/usr/bin/python3
"""`tnrec synth` output as a Python netCDF4 / xarray user sees it.

usage: test_synth_schema.py TNREC_BIN SCRATCH_DIR

Generates 200 samples and checks them against the TorNet v1.1 schema
(the published TorNet file schema): dimensions, variables and their order, types,
attributes and their order, CF time decoding, NaN / MissingDataFlag /
range-folded gates, v1.0-style files, quantisation (KDP continuous), filters, chunking,
file size, catalog.csv, the class mix and the tornado signature.
"""
import collections, csv, datetime, glob, os, re, shutil, subprocess, sys

import numpy as np
import netCDF4
import xarray as xr

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg, file=sys.stderr)


tnrec, scratch = sys.argv[1], sys.argv[2]
root = os.path.join(scratch, "root")
shutil.rmtree(scratch, ignore_errors=True)
os.makedirs(scratch)
N = 200
subprocess.run([tnrec, "synth", root, "--samples", str(N), "--seed", "2024", "-j", "2"], check=True)

DIMS = {"time": 4, "azimuth": 120, "range": 240, "sweep": 2, "lims": 2}
MOMENTS = ["DBZ", "VEL", "KDP", "RHOHV", "ZDR", "WIDTH"]
VARS = ["azimuth", "range", "time", "elevation", "frame_labels", "nyquist_velocity", "azimuth_limits",
        "range_limits"] + MOMENTS + ["range_folded_mask"]
BIG = ("time", "azimuth", "range", "sweep")
VDIMS = {"azimuth": ("azimuth",), "range": ("range",), "time": ("time",), "elevation": ("sweep",),
         "frame_labels": ("time",), "nyquist_velocity": ("time", "sweep"), "azimuth_limits": ("lims",),
         "range_limits": ("lims",), "range_folded_mask": BIG}
VDIMS.update({m: BIG for m in MOMENTS})
VTYPES = {"azimuth": "float32", "range": "float32", "elevation": "float64", "frame_labels": "uint8",
          "nyquist_velocity": "float32", "azimuth_limits": "float32", "range_limits": "float32",
          "range_folded_mask": "uint8"}
VTYPES.update({m: "float32" for m in MOMENTS})
ATTRS = ["site_name", "site_lat", "site_lon", "MissingDataFlag", "ef_number", "event_id", "episode_id",
         "tornado_start_time", "tornado_end_time", "category", "scit_id", "storm_event_url"]
ATTRS_V10 = [a for a in ATTRS if not a.startswith("tornado_")]
# level-II moments sit on their quantisation grid; KDP (derived) does not
STEP = {"DBZ": 2, "VEL": 2, "WIDTH": 2, "ZDR": 16, "RHOHV": 300}
NAME_RE = re.compile(r"^(NUL|WRN|TOR)_(\d{6})_(\d{6})_(K[A-Z]{3})_(\d+)s_([A-Z]\d)\.nc$")
FMT = "%Y-%m-%d %H:%M:%S"

# ---- catalog.csv against the tree ----
with open(os.path.join(root, "catalog.csv"), newline="") as f:
    reader = csv.DictReader(f)
    cols = reader.fieldnames
    rows = list(reader)
check(cols[:8] == ["filename", "type", "start_time", "end_time", "category", "ef_number", "event_id",
                   "episode_id"], f"catalog columns {cols}")
check(len(rows) == N, f"catalog has {len(rows)} rows, want {N}")
on_disk = sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "*", "*", "*")))
listed = sorted(r["filename"] for r in rows)
check(on_disk == listed, "files on disk and catalog rows differ")
check(len(set(listed)) == len(listed), "a file is listed twice")
for r in rows:
    split, year, name = r["filename"].split("/")
    start = datetime.datetime.strptime(r["start_time"], FMT)
    end = datetime.datetime.strptime(r["end_time"], FMT)
    doy = start.timetuple().tm_yday
    check(split == r["type"] == ("train" if doy % 20 < 17 else "test"), f"split of {r['filename']}")
    check(int(year) == start.year and 2013 <= start.year <= 2022, f"year of {r['filename']}")
    m = NAME_RE.match(name)
    check(m is not None, f"file name {name}")
    if m:
        check(m.group(1) == r["category"], f"category in name {name}")
        check(m.group(2) == start.strftime("%y%m%d") and m.group(3) == start.strftime("%H%M%S"), f"time in {name}")
        check(m.group(5) == r["event_id"], f"event id in {name}")
    check(datetime.timedelta(minutes=14) <= end - start <= datetime.timedelta(minutes=16), f"span of {name}")
    check((int(r["ef_number"]) >= 0) == (r["category"] == "TOR"), f"ef of {name}")
cats = collections.Counter(r["category"] for r in rows)
check(abs(cats["NUL"] / N - 0.61) < 0.08 and abs(cats["WRN"] / N - 0.32) < 0.08 and
      abs(cats["TOR"] / N - 0.07) < 0.04, f"class mix {dict(cats)}")
efs = collections.Counter(int(r["ef_number"]) for r in rows if r["category"] == "TOR")
check(efs[0] + efs[1] > efs[2] + efs[3] + efs[4] + efs[5], f"EF mix {dict(efs)}")
types = collections.Counter(r["type"] for r in rows)
check(0.7 < types["train"] / N < 0.95, f"train/test {dict(types)}")

# ---- every file ----
units, time_types, sizes = set(), set(), []
n_missing = n_folded = n_v10 = 0
shear = {"NUL": [], "WRN": [], "TOR": []}
for i, r in enumerate(rows):
    path = os.path.join(root, r["filename"])
    sizes.append(os.path.getsize(path))
    ds = netCDF4.Dataset(path)
    ds.set_auto_mask(False)
    check(ds.data_model == "NETCDF4", f"{path}: data model {ds.data_model}")
    check({k: len(v) for k, v in ds.dimensions.items()} == DIMS, f"{path}: dimensions")
    check(list(ds.variables) == VARS, f"{path}: variables {list(ds.variables)}")
    for name, var in ds.variables.items():
        check(var.dimensions == VDIMS[name], f"{path}: dims of {name}")
        if name in VTYPES:
            check(str(var.dtype) == VTYPES[name], f"{path}: type of {name} is {var.dtype}")
        flt = var.filters()
        check(flt["shuffle"] and flt["zlib"] and 1 <= flt["complevel"] <= 9, f"{path}: filters of {name} {flt}")
        check(var.chunking() == list(var.shape), f"{path}: chunking of {name} {var.chunking()}")
    attrs = ds.ncattrs()
    check(attrs in (ATTRS, ATTRS_V10), f"{path}: global attributes {attrs}")
    v10 = attrs == ATTRS_V10
    n_v10 += v10
    check(isinstance(ds.site_lat, float) and isinstance(ds.ef_number, float), f"{path}: attribute types")
    check(ds.MissingDataFlag == -999.0, f"{path}: MissingDataFlag")
    check(ds.category == r["category"] and int(ds.ef_number) == int(r["ef_number"]) and
          int(ds.event_id) == int(r["event_id"]) and int(ds.episode_id) == int(r["episode_id"]),
          f"{path}: attributes differ from the catalog")
    tor = ds.category == "TOR"
    if not v10:
        check((ds.tornado_start_time != "") == tor and (ds.tornado_end_time != "") == tor, f"{path}: tornado times")
    labels = ds["frame_labels"][:]
    check(labels[-1] == (1 if tor else 0) and (tor or labels.sum() == 0), f"{path}: frame labels {labels}")
    tv = ds["time"]
    units.add(tv.units.split(" since ")[0])
    time_types.add(str(tv.dtype))
    check(str(tv.dtype) in ("float64", "int64"), f"{path}: time type {tv.dtype}")
    # CF decoding with netCDF4's own num2date, then xarray's
    when = netCDF4.num2date(tv[:], tv.units, getattr(tv, "calendar", "standard"))
    check(when[0].strftime(FMT) == r["start_time"] and when[-1].strftime(FMT) == r["end_time"],
          f"{path}: decoded time {when[0]} vs catalog {r['start_time']}")
    for mname in MOMENTS:
        var = ds[mname]
        check(np.isnan(var._FillValue), f"{path}: _FillValue of {mname}")
    mask = ds["range_folded_mask"][:]
    check(set(np.unique(mask)) <= {0, 1}, f"{path}: range_folded_mask values")
    vel = ds["VEL"][:]
    dbz = ds["DBZ"][:]
    check(np.isnan(dbz).any(), f"{path}: no NaN gates")
    if mask.any():
        n_folded += 1
        gone = vel[mask == 1]
        check(np.all(np.isnan(gone) | (gone == -999.0)), f"{path}: VEL present at range-folded gates")
        check(np.all(np.isfinite(dbz[mask == 1])), f"{path}: DBZ missing at range-folded gates")
    n_missing += bool((dbz == -999.0).any())
    if i < 60:  # quantisation, fully, on a subset (it is slow-ish in numpy)
        for mname, k in STEP.items():
            a = ds[mname][:].astype(np.float64)
            a = a[np.isfinite(a) & (a != -999.0)]
            check(a.size > 0 and np.all(np.abs(a * k - np.round(a * k)) < 1e-3), f"{path}: quantisation of {mname}")
        kdp = ds["KDP"][:].astype(np.float64)
        est = np.isfinite(kdp) & (kdp != -999.0)
        check(np.all(np.isfinite(dbz[est]) & (dbz[est] != -999.0)), f"{path}: KDP estimated where DBZ has no echo")
        check(np.mean(np.abs(kdp[est] * 32 - np.round(kdp[est] * 32)) > 1e-3) > 0.9, f"{path}: KDP looks quantised")
        # its error is correlated along the ray: neighbouring range gates agree
        a, b = kdp[..., :-1, :], kdp[..., 1:, :]
        both = np.isfinite(a) & np.isfinite(b) & (a != -999.0) & (b != -999.0)
        if both.sum() > 100:
            check(np.corrcoef(a[both], b[both])[0, 1] > 0.5, f"{path}: KDP uncorrelated along range")
        good = dbz[np.isfinite(dbz) & (dbz != -999.0)]
        check(good.min() > -41 and good.max() <= 75, f"{path}: DBZ range {good.min()}..{good.max()}")
    # the signature: strongest azimuthal gate-to-gate shear of the last frame
    v = vel[-1, :, :, 0].astype(np.float64)
    v[v == -999.0] = np.nan
    nyq = float(ds["nyquist_velocity"][-1, 0])
    dv = np.abs(np.diff(v, axis=0))
    dv = np.where(dv > nyq, 2 * nyq - dv, dv)  # a fold is not shear
    shear[ds.category].append(np.nanmax(dv) if np.isfinite(dv).any() else 0.0)
    ds.close()

sizes = np.array(sizes) / 1e6
print(f"file size MB: mean {sizes.mean():.3f}, 5-95% {np.percentile(sizes, 5):.3f}..{np.percentile(sizes, 95):.3f}")
check(0.6 <= sizes.mean() <= 0.9, f"mean file size {sizes.mean():.3f} MB")
check(np.mean((sizes >= 0.5) & (sizes <= 1.0)) >= 0.9, "fewer than 90% of the files are 0.5-1.0 MB")
check(len(units) >= 2 and len(time_types) == 2, f"time codings do not vary: {units} {time_types}")
check(0 < n_missing < N, f"{n_missing} files with MissingDataFlag gates")
check(0 < n_folded < N, f"{n_folded} files with range-folded gates")
check(0 < n_v10 < N / 2, f"{n_v10} v1.0-style files")
means = {k: float(np.mean(v)) for k, v in shear.items()}
print("mean max shear (m/s):", {k: round(v, 1) for k, v in means.items()})
check(means["TOR"] > means["NUL"] + 3.0, f"TOR shear not larger than NUL: {means}")

# ---- xarray decodes the CF times of every coding ----
seen = set()
for r in rows:
    path = os.path.join(root, r["filename"])
    with netCDF4.Dataset(path) as ds:
        key = (ds["time"].units.split(" since ")[0], str(ds["time"].dtype), "T" in ds["time"].units)
    if key in seen:
        continue
    seen.add(key)
    with xr.open_dataset(path) as x:
        check(np.issubdtype(x.time.dtype, np.datetime64), f"{path}: xarray did not decode time")
        got = str(x.time.values[0].astype("datetime64[s]")).replace("T", " ")
        check(got == r["start_time"], f"{path}: xarray time {got} vs {r['start_time']}")
        check(x.DBZ.dims == BIG and bool(x.DBZ.isnull().any()), f"{path}: xarray DBZ")
        check(x.attrs["category"] == r["category"], f"{path}: xarray attrs")
check(len(seen) >= 3, f"only {len(seen)} time codings seen")

# ---- ncdump -h shows the same schema ----
no_ncdump = not shutil.which("ncdump")
if not no_ncdump:
    out = subprocess.run(["ncdump", "-h", os.path.join(root, rows[0]["filename"])], check=True,
                         capture_output=True, text=True).stdout
    check("time = 4 ;" in out and "float DBZ(time, azimuth, range, sweep) ;" in out and
          "ubyte range_folded_mask(time, azimuth, range, sweep) ;" in out and
          ':MissingDataFlag = -999. ;' in out, "ncdump -h output")
    check(out.index("float azimuth(azimuth)") < out.index("float range(range)") < out.index("float DBZ(")
          < out.index("float WIDTH(") < out.index("range_folded_mask("), "ncdump variable order")

if failures:
    print(f"test_synth_schema: {len(failures)} check(s) failed", file=sys.stderr)
    sys.exit(1)
shutil.rmtree(scratch, ignore_errors=True)
if no_ncdump:
    print("test_synth_schema: SKIPPED (the other checks passed): ncdump is missing, so the ncdump -h "
          "checks were not made (apt install netcdf-bin)")
    sys.exit(77)
print("test_synth_schema: all checks passed")
