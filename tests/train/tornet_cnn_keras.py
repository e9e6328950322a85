"""tornet-cnn against the Keras model it reproduces.

usage: tornet_cnn_keras.py LIBTNREC
Builds the baseline of mit-ll/tornet (cnn_baseline.py: CoordConv2D VGG
blocks, 1x1 head, global max) in Keras from its description, checks that
its parameter count on 120 x 240 x 14 inputs is tnrec's 8,084,225, copies
random Keras weights into a tnrec model (the kernels have the same layout,
kh x kw x cin x cout), feeds both the same inputs and the coordinates of tnrec's fixed window,
then of each chip's own range_limits (tnrec_net_predict_at), and compares
the logits (inference: dropout off). Odd extents
exercise the 'same' pooling. Exits 77 (skipped) when Keras is not
installed."""
import ctypes
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
try:
    import keras
    import numpy as np
except ImportError as e:
    print(f"tornet_cnn_keras: SKIPPED ({e})")
    sys.exit(77)

BLOCKS = [(64, 2), (128, 2), (256, 3), (512, 3)]
L2 = 1e-3


def coordinates(width, lower=50000.0, upper=None):
    """r and 1/r per range gate as compute_coordinates (mit-ll/tornet
    preprocess.py) makes them from a chip's range_limits [lower, upper];
    tnrec's fixed window [50 km, 50 km + 250 m x width] by default."""
    upper = lower + 250.0 * width if upper is None else upper
    r = np.linspace((lower + 250) * 1e-5, (upper - 250) * 1e-5, width)
    r = np.where(r >= 2125.0 * 1e-5, r, 2125.0 * 1e-5)
    return np.stack([r, 1 / r], axis=-1)  # width x 2


def keras_model(h, w, channels):
    x = keras.Input((h, w, channels))
    c = keras.Input((h, w, 2))
    inputs = [x, c]
    for filters, n in BLOCKS:
        for _ in range(n):
            conv = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                       kernel_regularizer=keras.regularizers.l2(L2))
            x = conv(keras.layers.Concatenate(axis=-1)([x, c]))
        x = keras.layers.MaxPool2D(pool_size=2, strides=2, padding="same")(x)
        c = keras.layers.MaxPool2D(pool_size=2, strides=2, padding="same")(c)
        x = keras.layers.Dropout(0.1)(x)
    x = keras.layers.Conv2D(512, 1, activation="relu", kernel_regularizer=keras.regularizers.l2(L2))(x)
    x = keras.layers.Conv2D(256, 1, activation="relu", kernel_regularizer=keras.regularizers.l2(L2))(x)
    x = keras.layers.Conv2D(1, 1)(x)
    out = keras.layers.GlobalMaxPooling2D()(x)
    return keras.Model(inputs=inputs, outputs=out)


class Shape(ctypes.Structure):
    _fields_ = [("frames", ctypes.c_int), ("height", ctypes.c_int), ("width", ctypes.c_int),
                ("channels", ctypes.c_int)]


def main():
    lib = ctypes.CDLL(sys.argv[1])
    lib.tnrec_model_params.restype = ctypes.POINTER(ctypes.c_float)
    lib.tnrec_model_trainable_count.restype = ctypes.c_size_t
    lib.tnrec_model_param_count.restype = ctypes.c_uint64
    lib.tnrec_error_last.restype = ctypes.c_char_p
    bad = 0

    full = keras_model(120, 240, 14)
    kcount = full.count_params()
    m = ctypes.c_void_p()
    if lib.tnrec_model_create(ctypes.byref(m), b"tornet-cnn", ctypes.byref(Shape(1, 120, 240, 14)), 1):
        sys.exit("tnrec_model_create: " + lib.tnrec_error_last().decode())
    tcount = lib.tnrec_model_param_count(m)
    print(f"parameters: keras {kcount:,}, tnrec {tcount:,}")
    bad += kcount != tcount or tcount != 8084225
    lib.tnrec_model_free(m)

    rng = np.random.default_rng(7)
    for h, w, n in ((15, 22, 3), (24, 40, 2)):
        km = keras_model(h, w, 14)
        weights = []
        for wt in km.get_weights():  # kernels (kh, kw, cin, cout) then biases, layer by layer
            scale = np.sqrt(2.0 / np.prod(wt.shape[:-1])) if wt.ndim > 1 else 0.1  # He: logits of order 1
            weights.append((rng.standard_normal(wt.shape) * scale).astype(np.float32))
        km.set_weights(weights)
        m = ctypes.c_void_p()
        if lib.tnrec_model_create(ctypes.byref(m), b"tornet-cnn", ctypes.byref(Shape(1, h, w, 14)), 1):
            sys.exit("tnrec_model_create: " + lib.tnrec_error_last().decode())
        flat = np.concatenate([a.ravel() for a in weights]).astype(np.float32)
        count = lib.tnrec_model_trainable_count(m)
        bad += flat.size != count
        ctypes.memmove(lib.tnrec_model_params(m), flat.ctypes.data, flat.nbytes)
        x = rng.uniform(-1, 1, (n, h, w, 14)).astype(np.float32)
        x[x < -0.8] = -3.0  # no-data gates, as the dataset fills them
        coords = np.broadcast_to(coordinates(w)[None, None], (n, h, w, 2)).astype(np.float32)
        want = np.asarray(km.predict([x, coords], verbose=0)).reshape(n)
        # Each chip its own range window, as records carry them: one near
        # the radar (the 2125 m floor), one far out, one at 2 km gates.
        limits = np.array([[0.0, 250.0 * w], [180000.0, 180000.0 + 250.0 * w], [30000.0, 30000.0 + 2000.0 * w]],
                          np.float32)[:n]
        coords_at = np.stack([np.broadcast_to(coordinates(w, float(lo), float(hi))[None], (h, w, 2))
                              for lo, hi in limits.astype(np.float64)]).astype(np.float32)
        want_at = np.asarray(km.predict([x, coords_at], verbose=0)).reshape(n)
        net = ctypes.c_void_p()
        got = np.zeros(n, np.float32)
        got_at = np.zeros(n, np.float32)
        if lib.tnrec_net_create(ctypes.byref(net), m, n) or \
           lib.tnrec_net_predict(net, x.ctypes.data_as(ctypes.c_void_p), n, got.ctypes.data_as(ctypes.c_void_p)) or \
           lib.tnrec_net_predict_at(net, x.ctypes.data_as(ctypes.c_void_p), limits.ctypes.data_as(ctypes.c_void_p), n,
                                    got_at.ctypes.data_as(ctypes.c_void_p)):
            sys.exit("tnrec_net: " + lib.tnrec_error_last().decode())
        for name, g, k in (("fixed window", got, want), ("own windows", got_at, want_at)):
            err = np.max(np.abs(g - k) / (1 + np.abs(k)))
            print(f"{h} x {w}, {name}: logits keras {k}, tnrec {g}, max relative difference {err:.2e}")
            bad += not err < 1e-4
        # The windows matter: the same inputs score differently with them.
        bad += not np.max(np.abs(want_at - want)) > 1e-3
        bad_limits = np.array([[5000.0, 5000.0]] * n, np.float32)
        if lib.tnrec_net_predict_at(net, x.ctypes.data_as(ctypes.c_void_p), bad_limits.ctypes.data_as(ctypes.c_void_p),
                                    n, got_at.ctypes.data_as(ctypes.c_void_p)) == 0:
            print("an empty range window was accepted")
            bad += 1
        lib.tnrec_net_free(net)
        lib.tnrec_model_free(m)
    print("tornet_cnn_keras: " + ("FAILED" if bad else "all checks passed"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
