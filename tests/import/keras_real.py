"""tnrec import keras on a model saved by Keras 3 itself.

usage: keras_real.py TNREC LIBTNREC WORKDIR
Builds the TorNet baseline's architecture (mit-ll/tornet cnn_baseline.py:
per-variable inputs, Normalization with TorNet's CHANNEL_MIN_MAX, the NaN
fill, the range-folded mask, CoordConv2D VGG blocks, the 'maxpool' head)
in Keras, small (4 start filters, L2 1e-5, 15 x 22 inputs, odd for the
'same' pooling), with random weights; saves it as .keras; imports it with
`tnrec import keras`; and compares tnrec's logits with Keras' on the same
samples (raw values with NaN gates for Keras, the normalised values with
-3 for tnrec, as a 'tnrec build' dataset holds them; the coordinates of
tnrec's fixed window for both), within 1e-4. Then the whole way a user
goes: TorNet-schema NetCDF files written with netCDF4, each chip with its
own range_limits, through `tnrec build --dtype float32` and `tnrec
predict` (built once with the default no-data value -3 and once with
--nodata 0: the imported checkpoint fills no-data gates with the model's
-3 either way), against Keras fed those files' last frames and the
coordinates compute_coordinates makes from each file's range_limits.
usage: keras_real.py TNREC LIBTNREC WORKDIR"""
import ctypes
import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

H, W, SWEEPS = 120, 240, 2  # TorNet chips: tnrec build takes no other; 15 -> 8 pools with padding
VARS = ["DBZ", "VEL", "KDP", "RHOHV", "ZDR", "WIDTH"]
RANGES = {"DBZ": (-20, 60), "VEL": (-60, 60), "KDP": (-2, 5), "RHOHV": (0.2, 1.04), "ZDR": (-1, 8), "WIDTH": (0, 9)}


@keras.saving.register_keras_serializable(package="tnrec_test")
class CoordConv2D(keras.layers.Layer):
    """A convolution over the features and the coordinates concatenated;
    returns the convolution and the coordinates (kept in self.conv, as the
    TorNet layer does, so the weights file holds them under conv/)."""

    def __init__(self, filters, kernel_size, kernel_regularizer, activation, padding="same", strides=(1, 1),
                 conv2d_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.padding, self.strides = filters, kernel_size, padding, strides
        self.kernel_regularizer, self.activation = kernel_regularizer, activation
        self.conv2d_kwargs = conv2d_kwargs or {}
        self.conv = keras.layers.Conv2D(filters, kernel_size, padding=padding, strides=strides,
                                        activation=activation, kernel_regularizer=kernel_regularizer)

    def build(self, input_shape):
        x, c = input_shape
        self.conv.build(tuple(x[:-1]) + (x[-1] + c[-1],))

    def call(self, inputs):
        x, c = inputs
        return self.conv(keras.ops.concatenate((x, c), axis=-1)), c

    def get_config(self):
        cfg = super().get_config()
        cfg.update(filters=self.filters, kernel_size=self.kernel_size, padding=self.padding, strides=self.strides,
                   kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer)
                   if self.kernel_regularizer else None,
                   activation=self.activation, conv2d_kwargs=self.conv2d_kwargs)
        return cfg


@keras.saving.register_keras_serializable(package="tnrec_test")
class FillNaNs(keras.layers.Layer):
    def __init__(self, fill_val, **kwargs):
        super().__init__(**kwargs)
        self.fill_val = fill_val

    def call(self, x):
        return keras.ops.where(keras.ops.isnan(x), self.fill_val, x)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(fill_val=self.fill_val)
        return cfg


def baseline(filters=4, l2=1e-5):
    inputs = {v: keras.Input((H, W, SWEEPS), name=v) for v in VARS}
    norm = []
    for v in VARS:
        lo, hi = RANGES[v]
        norm.append(keras.layers.Normalization(mean=[(lo + hi) / 2] * SWEEPS, variance=[((hi - lo) / 2) ** 2] * SWEEPS,
                                               name="Normalize_" + v)(inputs[v]))
    x = FillNaNs(-3.0)(keras.layers.Concatenate(axis=-1, name="Concatenate1")(norm))
    inputs["range_folded_mask"] = keras.Input((H, W, SWEEPS), name="range_folded_mask")
    x = keras.layers.Concatenate(axis=-1, name="Concatenate2")([x, inputs["range_folded_mask"]])
    c = inputs["coordinates"] = keras.Input((H, W, 2), name="coordinates")
    for mult, n in ((1, 2), (2, 2), (4, 3), (8, 3)):
        for _ in range(n):
            x, c = CoordConv2D(filters * mult, 3, keras.regularizers.l2(l2), "relu", padding="same")([x, c])
        x = keras.layers.MaxPool2D(pool_size=2, strides=2, padding="same")(x)
        c = keras.layers.MaxPool2D(pool_size=2, strides=2, padding="same")(c)
        x = keras.layers.Dropout(rate=0.1)(x)
    x = keras.layers.Conv2D(512, 1, kernel_regularizer=keras.regularizers.l2(l2), activation="relu")(x)
    x = keras.layers.Conv2D(256, 1, kernel_regularizer=keras.regularizers.l2(l2), activation="relu")(x)
    x = keras.layers.Conv2D(1, 1, name="heatmap")(x)
    return keras.Model(inputs=inputs, outputs=keras.layers.GlobalMaxPooling2D()(x))


def coordinates(width, lower=50000.0, upper=None):
    """r and 1/r per range gate as compute_coordinates makes them from
    range_limits [lower, upper]; tnrec's fixed window by default."""
    upper = lower + 250.0 * width if upper is None else upper
    r = np.linspace((lower + 250) * 1e-5, (upper - 250) * 1e-5, width)
    r = np.where(r >= 2125.0 * 1e-5, r, 2125.0 * 1e-5)
    return np.stack([r, 1 / r], axis=-1)


def main():
    tnrec, libpath, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(5)
    km = baseline()
    weights = []
    for wt in km.get_weights():
        scale = np.sqrt(2.0 / np.prod(wt.shape[:-1])) if wt.ndim > 1 else 0.1
        weights.append((rng.standard_normal(wt.shape) * scale).astype(np.float32))
    km.set_weights(weights)
    path = os.path.join(work, "baseline.keras")
    km.save(path)
    rundir = os.path.join(work, "run")
    subprocess.run(["rm", "-rf", rundir], check=True)
    r = subprocess.run([tnrec, "import", "keras", path, "-o", rundir], capture_output=True, text=True)
    print(r.stderr.strip())
    if r.returncode:
        print("keras_real: FAILED: import exited", r.returncode)
        return 1

    n = 6
    raw = {}
    for v in VARS:
        lo, hi = RANGES[v]
        a = rng.uniform(lo, hi, (n, H, W, SWEEPS)).astype(np.float32)
        a[rng.uniform(size=a.shape) < 0.1] = np.nan
        raw[v] = a
    mask = (rng.uniform(size=(n, H, W, SWEEPS)) < 0.05).astype(np.float32)
    coords = np.broadcast_to(coordinates(W)[None, None], (n, H, W, 2)).astype(np.float32)
    want = np.asarray(km.predict({**raw, "range_folded_mask": mask, "coordinates": coords}, verbose=0)).reshape(n)
    chans = []
    for v in VARS:
        lo, hi = RANGES[v]
        chans.append(np.where(np.isnan(raw[v]), -3.0, (raw[v] - (lo + hi) / 2) / ((hi - lo) / 2)))
    x = np.ascontiguousarray(np.concatenate(chans + [mask], axis=-1).astype(np.float32))

    lib = ctypes.CDLL(libpath)
    lib.tnrec_error_last.restype = ctypes.c_char_p
    m, net = ctypes.c_void_p(), ctypes.c_void_p()
    got = np.zeros(n, np.float32)
    if lib.tnrec_checkpoint_load_model(ctypes.byref(m), rundir.encode()) or \
       lib.tnrec_net_create(ctypes.byref(net), m, n) or \
       lib.tnrec_net_predict(net, x.ctypes.data_as(ctypes.c_void_p), n, got.ctypes.data_as(ctypes.c_void_p)):
        print("keras_real: FAILED:", lib.tnrec_error_last().decode())
        return 1
    lib.tnrec_net_free(net)
    lib.tnrec_model_free(m)
    err = float(np.max(np.abs(got - want) / (1 + np.abs(want))))
    print(f"logits keras {want}\nlogits tnrec {got}\nmax relative difference {err:.2e}")
    ok = err < 1e-4
    ok &= through_build_and_predict(km, tnrec, rundir, work, rng)
    print("keras_real: " + ("all checks passed" if ok else "FAILED"))
    return 0 if ok else 1


def write_sample(path, rng, event_id, limits):
    """One TorNet-schema file (4 frames, H x W x 2 sweeps) with the given
    range_limits; returns its raw last frame per variable and its mask."""
    import netCDF4
    T = 4
    ds = netCDF4.Dataset(path, "w", format="NETCDF4")
    for k, v in (("site_name", "KTLX"), ("site_lat", 35.3), ("site_lon", -97.3), ("MissingDataFlag", -999.0),
                 ("ef_number", -1.0), ("event_id", np.int64(event_id)), ("episode_id", np.int64(event_id // 10)),
                 ("tornado_start_time", ""), ("tornado_end_time", ""), ("category", "NUL"), ("scit_id", "U1"),
                 ("storm_event_url", "")):
        ds.setncattr(k, v)
    for name, n in (("time", T), ("azimuth", H), ("range", W), ("sweep", SWEEPS), ("lims", 2)):
        ds.createDimension(name, n)
    ds.createVariable("azimuth", "f4", ("azimuth",))[:] = np.linspace(10, 10 + 0.5 * H, H)
    ds.createVariable("range", "f4", ("range",))[:] = np.linspace(limits[0], limits[1], W)
    tv = ds.createVariable("time", "f8", ("time",))
    tv.units = "seconds since 1970-01-01 00:00:00"
    tv[:] = 1.4e9 + event_id * 1000 + 300.0 * np.arange(T)
    ds.createVariable("elevation", "f8", ("sweep",))[:] = [0.5, 0.9]
    ds.createVariable("frame_labels", "u1", ("time",))[:] = np.zeros(T, np.uint8)
    ds.createVariable("nyquist_velocity", "f4", ("time", "sweep"))[:] = np.full((T, SWEEPS), 25, np.float32)
    ds.createVariable("azimuth_limits", "f4", ("lims",))[:] = np.array([10, 10 + 0.5 * H], np.float32)
    ds.createVariable("range_limits", "f4", ("lims",))[:] = np.asarray(limits, np.float32)
    dims = ("time", "azimuth", "range", "sweep")
    last = {}
    for v in VARS:
        lo, hi = RANGES[v]
        a = rng.uniform(lo, hi, (T, H, W, SWEEPS)).astype(np.float32)
        a[rng.uniform(size=a.shape) < 0.1] = np.nan
        var = ds.createVariable(v, "f4", dims, zlib=True, fill_value=np.float32(np.nan))
        var.set_auto_maskandscale(False)
        var[:] = a
        last[v] = a[-1]
    mask = (rng.uniform(size=(T, H, W, SWEEPS)) < 0.05).astype(np.uint8)
    ds.createVariable("range_folded_mask", "u1", dims, zlib=True)[:] = mask
    ds.close()
    return last, mask[-1].astype(np.float32)


def through_build_and_predict(km, tnrec, rundir, work, rng):
    """NetCDF -> tnrec build -> tnrec predict, each chip with its own window."""
    try:
        import netCDF4  # noqa: F401
    except ImportError:
        print("keras_real: FAILED: netCDF4 is not installed in this Python (scripts/deps.sh installs it)")
        return False
    src, data, csv_path = (os.path.join(work, d) for d in ("nc", "data", "scores.csv"))
    subprocess.run(["rm", "-rf", src, data], check=True)
    os.makedirs(src)
    windows = [(0.0, 250.0 * W), (2000.0, 2000.0 + 250.0 * W), (60000.0, 60000.0 + 250.0 * W),
               (150000.0, 150000.0 + 250.0 * W), (20000.0, 20000.0 + 1000.0 * W)]
    want = {}
    for i, lim in enumerate(windows):
        name = f"NUL_20170{i + 1}01_000000_KTLX_{1000 + i}_U1.nc"
        last, mask = write_sample(os.path.join(src, name), rng, 1000 + i, lim)
        coords = coordinates(W, *lim)[None, None].repeat(H, axis=1).astype(np.float32)
        logit = float(np.asarray(km.predict({**{v: last[v][None] for v in VARS}, "range_folded_mask": mask[None],
                                             "coordinates": coords}, verbose=0)).reshape(()))
        want[name[:-3]] = 1 / (1 + np.exp(-logit))
    ok = True
    # The imported checkpoint fills no-data gates with the model's -3 even
    # where the dataset was built with another no-data value.
    for nodata in ("-3", "0"):
        subprocess.run(["rm", "-rf", data, csv_path], check=True)
        for cmd in ([tnrec, "build", src, "-o", data, "--dtype", "float32", "--nodata", nodata, "-q"],
                    [tnrec, "predict", rundir, data, "-o", csv_path, "-q"]):
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode:
                print(f"keras_real: FAILED: {' '.join(cmd[:2])} exited {r.returncode}: {r.stderr.strip()}")
                return False
        got = read_probabilities(csv_path, want)
        if got is None:
            return False
        worst = max(abs(got[k] - want[k]) for k in want)
        for k in sorted(want):
            print(f"{k}: keras {want[k]:.7f}, tnrec predict {got[k]:.7f}")
        print(f"through build (--nodata {nodata}) and predict, each chip its own range window: "
              f"max probability difference {worst:.2e}")
        ok &= worst < 2e-5
    spread = max(want.values()) - min(want.values())
    return ok and spread > 1e-3


def read_probabilities(csv_path, want):
    """predict's probability per file stem, or None when its keys are not
    the files written."""
    import csv
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    got = {}
    for row in rows:
        stem = next((k for k in want if k in row["key"]), None)
        if stem is not None:
            got[stem] = float(row["probability"])
    if sorted(got) != sorted(want):
        print(f"keras_real: FAILED: predict's keys {[r['key'] for r in rows]} are not the files {sorted(want)}")
        return None
    return got


if __name__ == "__main__":
    sys.exit(main())
