#!/usr/bin/python3
"""`tnrec plot` end to end: the real binary on a dataset made by
`tnrec synth` + `tnrec build`, pictures decoded with Pillow.

usage: test_plot_cli.py SCENARIO --tnrec BIN --tmp DIR --doc docs/inspect.md
scenarios:
  pixels   at gates chosen here (inside patches of one colour), the PNG pixel
           at the gate's centre - computed from the sample's azimuth and
           range limits read from the NetCDF file and the panel's origin and
           scale - has the colour map's colour (the map as docs/inspect.md
           lists it) of the gate's value (from 'tnrec dump --npy',
           de-normalised; also checked against the NetCDF value), no-data
           gates the no-data grey; both sweeps, every frame, --key
  mask     --mask: range-folded gates purple, the others as without it
  formats  SVG parses as XML with the asked size; PDF starts with %PDF;
           --format overrides the extension; --size is honoured
  errors   bad record, key, field, size, frame, sweep, format and output:
           exit 1 or 2 with a message naming the problem, and no file (an
           existing file stays as it was, no temporary left)
  nolimits a dataset without azimuth/range limits (tests/cli's dump
           fixture: 3 azimuths x 4 gates, uint8, float16 and float32
           encodings) is drawn with the assumed 0.5 degree x 250 m gates,
           and says so; every gate's colour checked
Exit 77 (skipped) when tnrec was built without cairo.
"""
import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np

FAILS = []
NODATA_RGB = (0xb4, 0xb4, 0xb4)
FOLDED_RGB = (0x77, 0x00, 0x7d)
MOMENTS = ["DBZ", "VEL", "KDP", "RHOHV", "ZDR", "WIDTH"]


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, file=sys.stderr)


def run(args, ok=True):
    p = subprocess.run(args, capture_output=True, text=True)
    if "Sanitizer" in p.stderr or "runtime error:" in p.stderr:
        FAILS.append("sanitizer report: " + " ".join(args))
        print(p.stderr, file=sys.stderr)
    if ok and p.returncode != 0:
        print(p.stdout, p.stderr, file=sys.stderr)
        raise SystemExit("command failed (%d): %s" % (p.returncode, " ".join(args)))
    return p


def hexrgb(h):
    return (int(h[1:3], 16), int(h[3:5], 16), int(h[5:7], 16))


def doc_colormaps(doc):
    """The colour maps as docs/inspect.md lists them: FIELD -> [(lo, rgb)]."""
    maps = {}
    for line in open(doc, encoding="utf-8"):
        m = re.match(r"^(DBZ|VEL|KDP|RHOHV|ZDR|WIDTH)\s+\S+\s+(-inf:#.*)$", line.strip())
        if not m:
            continue
        bins = []
        for tok in m.group(2).split():
            lo, col = tok.split(":")
            bins.append((float(lo), hexrgb(col)))
        maps[m.group(1)] = bins
    if sorted(maps) != sorted(MOMENTS):
        raise SystemExit("docs/inspect.md lists colour maps for %s, want all of %s" % (sorted(maps), MOMENTS))
    return maps


def color_of(bins, v):
    if np.isnan(v):
        return NODATA_RGB
    rgb = bins[0][1]
    for lo, col in bins[1:]:
        if v >= lo:
            rgb = col
    return rgb


def near_edge(bins, v, tol):
    return any(abs(v - lo) < tol for lo, _ in bins[1:])


class Fixture:
    def __init__(self, tnrec, tmp):
        self.tnrec, self.tmp = tnrec, tmp
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        self.syn = os.path.join(tmp, "syn")
        self.ds = os.path.join(tmp, "ds")
        run([tnrec, "synth", self.syn, "--samples", "4", "--seed", "11", "--tor-fraction", "0.5", "-j", "1"])
        run([tnrec, "build", self.syn, "-o", self.ds, "-j", "1", "-q"])
        summary = json.loads(run([tnrec, "dump", "--json", self.ds]).stdout)
        self.schema = {f["name"]: f for f in summary["schema"]}
        self.count = summary["records"]
        recs = json.loads(run([tnrec, "dump", "--records", "--json", self.ds]).stdout)["records"]
        self.keys = [r["key"] for r in recs]
        self.npy = {}

    def fields(self, rec):
        """Record rec's fields from 'tnrec dump --npy': moments physical (NaN = no data)."""
        if rec not in self.npy:
            d = os.path.join(self.tmp, "npy%d" % rec)
            run([self.tnrec, "dump", self.ds, "--record", str(rec), "--npy", d])
            out = {}
            for name, f in self.schema.items():
                a = np.load(os.path.join(d, name + ".npy"))
                if name in MOMENTS:
                    phys = a.astype(np.float64) * float(f["scale"]) + float(f["offset"])
                    phys[a == np.float32(f["nodata"])] = np.nan
                    a = phys
                out[name] = a
            self.npy[rec] = out
        return self.npy[rec]

    def netcdf(self, rec):
        import netCDF4
        with netCDF4.Dataset(os.path.join(self.syn, self.keys[rec])) as nc:
            nc.set_auto_mask(False)
            out = {v: np.array(nc.variables[v][:]) for v in MOMENTS + ["azimuth_limits", "range_limits"]}
            out["missing"] = float(nc.getncattr("MissingDataFlag"))
        for v in MOMENTS:
            a = out[v].astype(np.float64)
            a[(a == out["missing"])] = np.nan
            out[v] = a
        return out

    def plot(self, rec, out, *extra, ok=True):
        return run([self.tnrec, "plot", self.ds, "--record", str(rec), "-o", out, "--json"] + list(extra), ok=ok)


def gate_pixel(panel, az_lo, span, r_lo, r_hi, naz, ngates, a, j):
    az = np.radians(az_lo + (a + 0.5) * span / naz)
    r = r_lo + (j + 0.5) * (r_hi - r_lo) / ngates
    x = panel["origin_x"] + r * np.sin(az) * panel["px_per_km"]
    y = panel["origin_y"] - r * np.cos(az) * panel["px_per_km"]
    return int(np.floor(x)), int(np.floor(y))


def near_grid(panel, x, y, px=3.0):
    """True when pixel centre (x, y) lies within px pixels of a range ring or
    radial of the panel (drawn over the gates)."""
    dx, dy = x - panel["origin_x"], panel["origin_y"] - y
    dist = np.hypot(dx, dy)
    r = dist / panel["px_per_km"]
    step = panel["ring_step_km"]
    if abs(r - round(r / step) * step) * panel["px_per_km"] < px:
        return True
    az = np.degrees(np.arctan2(dx, dy)) % 360.0
    astep = panel["radial_step_deg"]
    d = (az - round(az / astep) * astep + 180.0) % 360.0 - 180.0
    return abs(np.sin(np.radians(d))) * dist < px


def uniform_patch(colors, a, j):
    """True when gate (a, j) and its 8 neighbours have one colour, and the
    wedge's outline is two gates away."""
    naz, ng = colors.shape[:2]
    if a < 2 or j < 2 or a >= naz - 2 or j >= ng - 2:
        return False
    patch = colors[a - 1:a + 2, j - 1:j + 2].reshape(-1, 3)
    return bool((patch == patch[0]).all())


def check_panel(fx, img, panel, rec, maps, nc, folded=None, tag=""):
    """Samples gates of one panel; returns (data gates, no-data gates) checked."""
    field, t, w = panel["field"], panel["frame"], panel["sweep"]
    values = fx.fields(rec)[field][t, :, :, w]
    naz, ng = values.shape
    az_lo = float(nc["azimuth_limits"][0]) % 360.0
    span = (float(nc["azimuth_limits"][1]) - float(nc["azimuth_limits"][0])) % 360.0 or 360.0
    r_lo, r_hi = float(nc["range_limits"][0]) / 1000.0, float(nc["range_limits"][1]) / 1000.0
    check(abs(panel["az_lo"] - az_lo) < 1e-3 and abs(panel["az_span"] - span) < 1e-3,
          "%s: panel wedge %.3f+%.3f is the NetCDF's %.3f+%.3f" % (tag, panel["az_lo"], panel["az_span"], az_lo, span))
    check(abs(panel["range_lo_km"] - r_lo) < 1e-3 and abs(panel["range_hi_km"] - r_hi) < 1e-3,
          "%s: panel ranges are the NetCDF's" % tag)
    bins = maps[field]
    want = np.zeros((naz, ng, 3), dtype=np.int32)
    for a in range(naz):
        for j in range(ng):
            want[a, j] = color_of(bins, values[a, j])
    if folded is not None:
        want[folded[t, :, :, w] != 0] = FOLDED_RGB
    src = nc[field][-fx.schema[field]["shape"][0] + t, :, :, w]   # the NetCDF's frame of the same time
    rnd = random.Random(rec * 1000 + t * 10 + w)
    gates = [(a, j) for a in range(naz) for j in range(ng)]
    rnd.shuffle(gates)
    n_data = n_nodata = n_folded = 0
    bad = []
    for a, j in gates:
        if n_data >= 60 and n_nodata >= 20 and (folded is None or n_folded >= 10):
            break
        if not uniform_patch(want, a, j):
            continue
        is_folded = folded is not None and folded[t, a, j, w] != 0
        nodata = np.isnan(values[a, j])
        if is_folded:
            if n_folded >= 10:
                continue
            n_folded += 1
        elif nodata:
            if n_nodata >= 20:
                continue
            n_nodata += 1
        else:
            if n_data >= 60:
                continue
            n_data += 1
        x, y = gate_pixel(panel, az_lo, span, r_lo, r_hi, naz, ng, a, j)
        if near_grid(panel, x + 0.5, y + 0.5):
            continue
        got = img.getpixel((x, y))[:3]
        if tuple(got) != tuple(want[a, j]):
            bad.append("gate (az %d, gate %d) at pixel (%d, %d): %s, want %s (value %r)"
                       % (a, j, x, y, got, tuple(want[a, j]), values[a, j]))
        if not is_folded:
            # The source file agrees: same no-data, same bin away from edges.
            v = float(src[a, j])
            check(np.isnan(v) == bool(nodata), "%s: gate (%d, %d) no-data as in the NetCDF" % (tag, a, j))
            if not nodata and not near_edge(bins, v, 0.05):
                check(color_of(bins, v) == tuple(want[a, j]),
                      "%s: gate (%d, %d) NetCDF value %r has the colour drawn" % (tag, a, j, v))
    check(not bad, "%s %s frame %d sweep %d: %d of the gates checked have the wrong colour: %s"
          % (tag, field, t, w, len(bad), "; ".join(bad[:5])))
    return n_data, n_nodata, n_folded


def open_png(path):
    from PIL import Image
    img = Image.open(path)
    img.load()
    return img.convert("RGB")


def scenario_pixels(fx, maps):
    tot = [0, 0]
    # Every moment, both sweeps, the last frame, a large picture.
    for rec in range(fx.count):
        out = os.path.join(fx.tmp, "r%d.png" % rec)
        p = fx.plot(rec, out, "--sweeps", "0,1", "--size", "2600x3200")
        lay = json.loads(p.stdout)
        check(lay["width"] == 2600 and lay["height"] == 3200, "record %d: --size honoured" % rec)
        check(len(lay["panels"]) == 12, "record %d: 6 fields x 2 sweeps = 12 panels" % rec)
        img = open_png(out)
        check(img.size == (2600, 3200), "record %d: PNG is 2600x3200 (%s)" % (rec, img.size))
        nc = fx.netcdf(rec)
        for panel in lay["panels"]:
            check(panel["frame"] == fx.schema["DBZ"]["shape"][0] - 1, "default frame is the last")
            d, n, _ = check_panel(fx, img, panel, rec, maps, nc, tag="record %d" % rec)
            tot[0] += d
            tot[1] += n
    # Every frame, found by key.
    rec = fx.count - 1
    out = os.path.join(fx.tmp, "frames.png")
    p = run([fx.tnrec, "plot", fx.ds, "--key", fx.keys[rec], "-o", out, "--frames", "all", "--fields", "VEL,DBZ",
             "--json", "--size", "2400x1600"])
    lay = json.loads(p.stdout)
    check(lay["index"] == rec, "--key finds record %d" % rec)
    check([(q["field"], q["frame"]) for q in lay["panels"][:5]] ==
          [("VEL", 0), ("VEL", 1), ("VEL", 2), ("VEL", 3), ("DBZ", 0)], "--frames all: a column per frame, fields in order")
    img = open_png(out)
    nc = fx.netcdf(rec)
    for panel in lay["panels"]:
        d, n, _ = check_panel(fx, img, panel, rec, maps, nc, tag="frames")
        tot[0] += d
        tot[1] += n
    check(tot[0] >= 1000 and tot[1] >= 200, "enough gates checked (%d with data, %d without)" % tuple(tot))
    print("pixels: %d gates with data and %d without checked" % tuple(tot))


def scenario_mask(fx, maps):
    checked = 0
    for rec in range(fx.count):
        folded = fx.fields(rec)["range_folded_mask"]
        if not folded[-1, :, :, 0].any():
            continue
        out = os.path.join(fx.tmp, "m%d.png" % rec)
        lay = json.loads(fx.plot(rec, out, "--mask", "--fields", "VEL,DBZ", "--size", "2400x1700").stdout)
        img = open_png(out)
        nc = fx.netcdf(rec)
        for panel in lay["panels"]:
            checked += check_panel(fx, img, panel, rec, maps, nc, folded=folded, tag="mask record %d" % rec)[2]
    check(checked >= 10, "range-folded gates checked: %d" % checked)
    print("mask: %d range-folded gates checked" % checked)


def scenario_formats(fx, maps):
    svg = os.path.join(fx.tmp, "a.svg")
    lay = json.loads(fx.plot(0, svg, "--size", "900x700", "--fields", "DBZ,ZDR", "--sweeps", "1").stdout)
    check(lay["format"] == "svg", "format from the .svg extension")
    root = ET.parse(svg).getroot()
    check(root.tag.endswith("svg"), "SVG root element is <svg> (%s)" % root.tag)
    check(re.match(r"^900(pt|px)?$", root.get("width", "")) is not None and
          re.match(r"^700(pt|px)?$", root.get("height", "")) is not None,
          "SVG size 900x700 (%s x %s)" % (root.get("width"), root.get("height")))
    check(len(list(root.iter())) > 50, "SVG has drawing elements")
    pdf = os.path.join(fx.tmp, "a.pdf")
    fx.plot(0, pdf, "--frames", "all", "--fields", "KDP")
    with open(pdf, "rb") as f:
        data = f.read()
    check(data.startswith(b"%PDF-"), "PDF starts with %PDF-")
    check(b"%%EOF" in data[-64:], "PDF ends with %%EOF")
    other = os.path.join(fx.tmp, "really_png.pdf")
    lay = json.loads(fx.plot(0, other, "--format", "png", "--fields", "RHOHV").stdout)
    with open(other, "rb") as f:
        check(f.read(8) == b"\x89PNG\r\n\x1a\n", "--format png wins over the .pdf name")
    img = open_png(other)
    check(img.size == (lay["width"], lay["height"]), "PNG size is the reported one")
    p = run([fx.tnrec, "plot", fx.ds, "--record", "0", "-o", os.path.join(fx.tmp, "t.png")])
    check(p.stdout.startswith("wrote ") and "t.png" in p.stdout, "text output names the file")
    shard = sorted(f for f in os.listdir(fx.ds) if f.endswith(".tnr"))[0]
    p = run([fx.tnrec, "plot", os.path.join(fx.ds, shard), "--record", "0", "-o", os.path.join(fx.tmp, "s.png")])
    check(p.returncode == 0, "a bare shard plots too")


def expect_fail(fx, code, args, text, out):
    before = None
    if os.path.exists(out):
        with open(out, "rb") as f:
            before = f.read()
    d = os.path.dirname(out) or "."
    listing = sorted(os.listdir(d)) if os.path.isdir(d) else None
    p = run([fx.tnrec, "plot"] + args, ok=False)
    what = "tnrec plot %s" % " ".join(args)
    check(p.returncode == code, "%s: exit %d, want %d (%s)" % (what, p.returncode, code, p.stderr.strip()))
    check(text in p.stderr, "%s: stderr names the problem ('%s' in %r)" % (what, text, p.stderr))
    check("hint:" in p.stderr, "%s: stderr has a hint" % what)
    if before is None:
        check(not os.path.exists(out), "%s: no output file" % what)
    else:
        with open(out, "rb") as f:
            check(f.read() == before, "%s: the existing file is untouched" % what)
    if listing is not None:
        check(sorted(os.listdir(d)) == listing, "%s: nothing left in %s" % (what, d))


def scenario_errors(fx, maps):
    out = os.path.join(fx.tmp, "e", "x.png")
    os.makedirs(os.path.dirname(out))
    ds, n = fx.ds, str(fx.count)
    expect_fail(fx, 1, [ds, "--record", n, "-o", out], "record %s out of range" % n, out)
    expect_fail(fx, 1, [ds, "--key", "train/2000/NOPE.nc", "-o", out], "no record with key 'train/2000/NOPE.nc'", out)
    expect_fail(fx, 2, [ds, "--record", "0", "--fields", "DBZ,FOO", "-o", out], "unknown field 'FOO'", out)
    for bad in ["0x100", "100", "axb", "100x", "99999x10", "-5x5"]:
        expect_fail(fx, 2, [ds, "--record", "0", "--size", bad, "-o", out], "--size", out)
    expect_fail(fx, 1, [ds, "--record", "0", "--size", "60x40", "-o", out], "too small", out)
    expect_fail(fx, 2, [ds, "--record", "0", "--frame", "9", "-o", out], "--frame", out)
    expect_fail(fx, 2, [ds, "--record", "0", "--sweeps", "0,2", "-o", out], "--sweeps", out)
    expect_fail(fx, 2, [ds, "--record", "0", "--format", "gif", "-o", out], "--format", out)
    expect_fail(fx, 2, [ds, "--record", "0", "-o", os.path.join(fx.tmp, "e", "x.gif")], "format", out)
    expect_fail(fx, 2, [ds, "-o", out], "--record", out)
    expect_fail(fx, 2, [ds, "--record", "0", "--key", "k", "-o", out], "--record", out)
    expect_fail(fx, 2, [ds, "--record", "0"], "-o", out)
    expect_fail(fx, 1, [os.path.join(fx.tmp, "no-such-dataset"), "--record", "0", "-o", out], "no-such-dataset", out)
    # Unwritable outputs: a missing directory, a path through a file.
    missing = os.path.join(fx.tmp, "no-such-dir", "x.png")
    expect_fail(fx, 1, [ds, "--record", "0", "-o", missing], missing, missing)
    through = os.path.join(fx.tmp, "e", "x.png", "y.png")
    # (x.png does not exist yet: make it a plain file first)
    with open(out, "wb") as f:
        f.write(b"old picture")
    expect_fail(fx, 1, [ds, "--record", "0", "-o", through], through, through)
    # An existing picture survives a failed run.
    expect_fail(fx, 1, [ds, "--record", n, "-o", out], "out of range", out)
    # A dataset without KDP or the mask, with two frames.
    small = os.path.join(fx.tmp, "small")
    run([fx.tnrec, "build", fx.syn, "-o", small, "-j", "1", "-q", "--variables", "DBZ,VEL", "--frames", "2"])
    expect_fail(fx, 1, [small, "--record", "0", "--fields", "KDP", "-o", out], "no field 'KDP'", out)
    expect_fail(fx, 1, [small, "--record", "0", "--mask", "-o", out], "range_folded_mask", out)
    expect_fail(fx, 1, [small, "--record", "0", "--frame", "2", "-o", out], "frame 2 out of range", out)
    p = run([fx.tnrec, "plot", small, "--record", "0", "--frames", "all", "-o", os.path.join(fx.tmp, "small.png"),
             "--json"])
    lay = json.loads(p.stdout)
    check(sorted({q["field"] for q in lay["panels"]}) == ["DBZ", "VEL"] and len(lay["panels"]) == 4,
          "only the fields the dataset has, for its 2 frames")


def check_nolimits_panel(panel, img, f, npy, maps):
    a = np.load(os.path.join(npy, panel["field"] + ".npy"))
    phys = a.astype(np.float64) * float(f["scale"]) + float(f["offset"])
    phys[a == np.float32(f["nodata"])] = np.nan
    naz, ng = a.shape[1], a.shape[2]
    check(abs(panel["az_lo"]) < 1e-9 and abs(panel["az_span"] - 0.5 * naz) < 1e-9 and
          abs(panel["range_lo_km"]) < 1e-9 and abs(panel["range_hi_km"] - 0.25 * ng) < 1e-9,
          "no limits: %s drawn with 0.5 deg x 250 m gates from 0" % panel["field"])
    checked = 0
    for az in range(naz):
        for j in range(1, ng):
            x, y = gate_pixel(panel, 0.0, 0.5 * naz, 0.0, 0.25 * ng, naz, ng, az, j)
            if near_grid(panel, x + 0.5, y + 0.5):
                continue
            v = phys[panel["frame"], az, j, panel["sweep"]]
            want = color_of(maps[panel["field"]], v)
            got = tuple(img.getpixel((x, y))[:3])
            check(got == want, "no limits: %s sweep %d gate (%d, %d) = %r: colour %s, want %s"
                  % (panel["field"], panel["sweep"], az, j, v, got, want))
            checked += 1
    return checked


def scenario_nolimits(fx_unused, maps, tnrec, tmp, fixture):
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    run([fixture, tmp])
    ds = os.path.join(tmp, "ds")
    schema = {f["name"]: f for f in json.loads(run([tnrec, "dump", "--json", ds]).stdout)["schema"]}
    npy = os.path.join(tmp, "npy")
    run([tnrec, "dump", ds, "--record", "1", "--npy", npy])
    checked = 0
    for field in ["DBZ", "VEL", "KDP"]:       # uint8, float16, float32
        for sweep in ["0", "1"]:
            out = os.path.join(tmp, "n%s%s.png" % (field, sweep))
            lay = json.loads(run([tnrec, "plot", ds, "--record", "1", "-o", out, "--json", "--fields", field,
                                  "--sweeps", sweep, "--frame", "0", "--size", "3000x3000"]).stdout)
            check(lay["geometry_assumed"] is True, "no limits: geometry_assumed")
            checked += check_nolimits_panel(lay["panels"][0], open_png(out), schema[field], npy, maps)
    check(checked >= 30, "no limits: %d gates checked" % checked)
    print("nolimits: %d gates checked" % checked)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=["pixels", "mask", "formats", "errors", "nolimits"])
    ap.add_argument("--fixture", help="tests/cli's dump_fixture (nolimits)")
    ap.add_argument("--tnrec", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--doc", required=True)
    a = ap.parse_args()
    features = run([a.tnrec, "--version"]).stdout
    if "cairo" not in features.split():
        print("skip: this tnrec was built without cairo (install libcairo2-dev and rebuild)")
        return 77
    try:
        import PIL  # noqa: F401
        import netCDF4  # noqa: F401
    except ImportError as e:
        print("skip: %s (install python3-pil and python3-netcdf4)" % e)
        return 77
    maps = doc_colormaps(a.doc)
    if a.scenario == "nolimits":
        scenario_nolimits(None, maps, a.tnrec, a.tmp, a.fixture)
    else:
        fx = Fixture(a.tnrec, a.tmp)
        globals()["scenario_" + a.scenario](fx, maps)
    if FAILS:
        print("%d check(s) failed" % len(FAILS), file=sys.stderr)
        return 1
    print("plot %s: all checks passed" % a.scenario)
    shutil.rmtree(a.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
