"""tests/python/test_physical.py: physical=True gives the source NetCDF's
values back in physical units, with NaN exactly where the source had no
data (NaN), within each encoding's error: float32 rounding, float16's
half precision, uint8's half quantisation step (after clamping to the
quantisation range); and it is the normalised decode times scale plus
offset in float32.

usage: test_physical.py TNREC_BINARY SCRATCH_DIR"""
import os

import numpy as np

from pycommon import DTYPES, args, check, finish

import tnrec

try:
    import netCDF4
except ImportError:
    netCDF4 = None


def main():
    _, scratch, _ = args()
    if netCDF4 is None:
        print("test_physical: skipped: python3-netcdf4 is not installed")
        raise SystemExit(77)
    src = os.path.join(scratch, "src")
    for dt in DTYPES:
        path = os.path.join(scratch, dt)
        phys = tnrec.open(path, physical=True)
        norm = tnrec.open(path)
        for i in (0, 11, len(phys) - 1):
            p, q = phys[i], norm[i]
            nc = netCDF4.Dataset(os.path.join(src, p["key"]))
            nc.set_auto_mask(False)
            for f in phys.schema:
                name = f["name"]
                if f["encoding"] == "raw":
                    check(p[name + "_field" if name in tnrec.META_KEYS else name].dtype == np.dtype(f["dtype"]),
                          "%s %d: raw field %s changed type" % (dt, i, name))
                    continue
                x = p[name]
                check(x.dtype == np.float32 and x.shape == f["shape"], "%s %d: %s dtype/shape" % (dt, i, name))
                srcv = np.asarray(nc[name][:], dtype=np.float32)
                nodata = np.isnan(srcv)
                check(nodata.any() and (~nodata).any(), "%s %d: %s has both data and no data" % (dt, i, name))
                check(np.array_equal(np.isnan(x), nodata), "%s %d: %s NaN where the source had no data" % (dt, i, name))
                off, sc = np.float32(f["offset"]), np.float32(f["scale"])
                # the definition: normalised decode * scale + offset, in float32
                expect = np.where(nodata, np.float32(np.nan), q[name] * sc + off).astype(np.float32)
                check(np.array_equal(x, expect, equal_nan=True), "%s %d: %s != normalised*scale+offset" % (dt, i, name))
                d = ~nodata
                n = (srcv[d] - off) / sc
                if dt == "float32":
                    tol = np.abs(srcv[d]) * 1e-6 + abs(sc) * 1e-6
                    ref = srcv[d]
                elif dt == "float16":
                    tol = (np.abs(n) * 2.0 ** -11 + 2.0 ** -24) * abs(sc) + np.abs(srcv[d]) * 1e-6
                    ref = srcv[d]
                else:
                    ref = np.clip(n, f["qmin"], f["qmax"]) * sc + off
                    tol = (f["qmax"] - f["qmin"]) / 508.0 * abs(sc) * 1.001 + np.abs(ref) * 1e-6
                err = np.abs(x[d] - ref)
                check(bool(np.all(err <= tol)), "%s %d: %s max error %g above tolerance" % (dt, i, name,
                                                                                           float(err.max())))
            nc.close()
    finish("test_physical")


main()
