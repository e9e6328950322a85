"""tnrec import keras on files in Keras 3's .keras layout, made without Keras.

usage: keras_layout.py TNREC FIXTURE_PROGRAM WORKDIR
       keras_layout.py --corpus DIR   (tests/fuzz/corpus/keras: fuzz_keras' seeds)
Writes the TorNet baseline (mit-ll/tornet cnn_baseline.py, small: 4 start
filters, L2 1e-5, 12 x 16 inputs) as Keras 3 saves it: a zip of
config.json (the functional model's layers with their inbound tensors),
metadata.json and model.weights.h5, whose groups are named by layer class
(layers/coord_conv2d_1/conv/vars/0, layers/conv2d/vars/1, ...), with numpy
random weights; imports it and checks that the checkpoint's parameters are
the file's arrays in the documented order (kernel, bias, layer by layer),
its config names the file, and eval and predict run it on a fixture
dataset. Then the refusals: not a zip, no weights, a wrong shape, a missing
array, a layer tnrec has no counterpart for, a non-empty run directory,
usage errors; each exits 1 (2 for usage), names the file and what is
wrong, and leaves no run directory behind."""
import copy
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile

try:
    import h5py
    import numpy as np
except ImportError as e:
    print(f"keras_layout: SKIPPED ({e}; install python3-h5py, scripts/deps.sh)")
    sys.exit(77)

H, W, SWEEPS = 12, 16, 2
VARS = ["DBZ", "VEL", "KDP", "RHOHV", "ZDR", "WIDTH"]
RANGES = {"DBZ": (-20, 60), "VEL": (-60, 60), "KDP": (-2, 5), "RHOHV": (0.2, 1.04), "ZDR": (-1, 8), "WIDTH": (0, 9)}


def tensor(layer, index=0, shape=None):
    return {"class_name": "__keras_tensor__",
            "config": {"shape": shape, "dtype": "float32", "keras_history": [layer, 0, index]}}


def node(*args, **kwargs):
    return [{"args": list(args), "kwargs": kwargs}]


def l2(v):
    return {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": v}, "registered_name": None}


def baseline(filters=4, reg=1e-5, blocks=((1, 2), (2, 2), (4, 3), (8, 3)), head=(512, 256)):
    """config.json's layer list, in Keras' order, and the weighted layers
    as (class, kernel shape) in that order."""
    layers, weighted = [], []

    def add(cls, name, config, inbound):
        config = dict(config, name=name)
        layers.append({"module": "keras.layers", "class_name": cls, "config": config, "name": name,
                       "inbound_nodes": inbound})

    for v in VARS:
        add("InputLayer", v, {"batch_shape": [None, H, W, SWEEPS], "dtype": "float32"}, [])
    for v in VARS:
        lo, hi = RANGES[v]
        add("Normalization", "Normalize_" + v,
            {"axis": [-1], "mean": [(lo + hi) / 2] * SWEEPS, "variance": [((hi - lo) / 2) ** 2] * SWEEPS},
            node(tensor(v)))
    add("Concatenate", "Concatenate1", {"axis": -1}, node([tensor("Normalize_" + v) for v in VARS]))
    add("FillNaNs", "fill_na_ns", {"fill_val": -3.0}, node(tensor("Concatenate1")))
    add("InputLayer", "range_folded_mask", {"batch_shape": [None, H, W, SWEEPS], "dtype": "float32"}, [])
    add("Concatenate", "Concatenate2", {"axis": -1}, node([tensor("fill_na_ns"), tensor("range_folded_mask")]))
    add("InputLayer", "coordinates", {"batch_shape": [None, H, W, 2], "dtype": "float32"}, [])
    x, c = ("Concatenate2", 0), ("coordinates", 0)
    cin = len(VARS) * SWEEPS + SWEEPS
    n_cc = n_pool = n_drop = 0
    for b, (mult, nconv) in enumerate(blocks):
        for _ in range(nconv):
            name = "coord_conv2d" + (f"_{n_cc}" if n_cc else "")
            n_cc += 1
            add("CoordConv2D", name, {"filters": filters * mult, "kernel_size": 3, "kernel_regularizer": l2(reg),
                                      "activation": "relu", "padding": "same", "strides": [1, 1],
                                      "conv2d_kwargs": {}}, node([tensor(*x), tensor(*c)]))
            weighted.append(("coord_conv2d", (3, 3, cin + 2, filters * mult)))
            cin = filters * mult
            x, c = (name, 0), (name, 1)
        pool = {"pool_size": [2, 2], "padding": "same", "strides": [2, 2], "data_format": "channels_last"}
        name = "max_pooling2d" + (f"_{n_pool}" if n_pool else "")
        n_pool += 1
        add("MaxPooling2D", name, pool, node(tensor(*x)))
        x = (name, 0)
        last = b == len(blocks) - 1
        if not last:  # the last block's coordinate pool has no consumer: Keras leaves it out
            cname = "max_pooling2d" + (f"_{n_pool}" if n_pool else "")
            n_pool += 1
            add("MaxPooling2D", cname, pool, node(tensor(*c)))
            c = (cname, 0)
        name = "dropout" + (f"_{n_drop}" if n_drop else "")
        n_drop += 1
        add("Dropout", name, {"rate": 0.1, "seed": None, "noise_shape": None}, node(tensor(*x), training=False))
        x = (name, 0)
    for i, (f, act, reg_) in enumerate([(h, "relu", l2(reg)) for h in head] + [(1, "linear", None)]):
        name = "heatmap" if f == 1 else f"conv2d_{i + 10}"
        add("Conv2D", name, {"filters": f, "kernel_size": [1, 1], "strides": [1, 1], "padding": "valid",
                             "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
                             "activation": act, "use_bias": True, "kernel_regularizer": reg_},
            node(tensor(*x)))
        weighted.append(("conv2d", (1, 1, cin, f)))
        cin = f
        x = (name, 0)
    add("GlobalMaxPooling2D", "global_max_pooling2d", {"data_format": "channels_last", "keepdims": False},
        node(tensor(*x)))
    return layers, weighted


def keys(layers):
    """Keras 3's weight-file keys: the class in snake case, _1, _2, ... in
    the order of the layer list."""
    import re
    seen, out = {}, []
    for layer in layers:
        s = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", layer["class_name"])
        s = re.sub("([a-z])([A-Z])", r"\1_\2", s).lower()
        if s in seen:
            seen[s] += 1
            s = f"{s}_{seen[s]}"
        else:
            seen[s] = 0
        out.append(s)
    return out


def write_keras(path, layers, arrays, skip=(), members=("config.json", "metadata.json", "model.weights.h5")):
    """arrays: {h5 path: array}. skip: h5 paths to leave out."""
    config = {"module": "keras.src.models.functional", "class_name": "Functional",
              "config": {"name": "functional", "trainable": True, "layers": layers},
              "registered_name": "Functional"}
    h5 = path + ".h5"
    with h5py.File(h5, "w") as f:
        f.create_group("vars")
        for k in keys(layers):
            f.create_group(f"layers/{k}/vars")
        for p, a in arrays.items():
            if p not in skip:
                f.create_dataset(p, data=a)
    with zipfile.ZipFile(path, "w") as z:
        if "metadata.json" in members:
            z.writestr("metadata.json", json.dumps({"keras_version": "3.0.0", "date_saved": "2024-01-01@00:00:00"}))
        if "config.json" in members:
            z.writestr("config.json", json.dumps(config))
        if "model.weights.h5" in members:
            z.write(h5, "model.weights.h5")
    os.remove(h5)


def random_weights(layers, weighted, rng):
    """{h5 path: array} and the flat parameters in tnrec's documented order."""
    arrays, flat = {}, []
    wkeys = [k for k, layer in zip(keys(layers), layers) if layer["class_name"] in ("CoordConv2D", "Conv2D")]
    for k, (cls, shape) in zip(wkeys, weighted):
        base = f"layers/{k}/conv/vars" if cls == "coord_conv2d" else f"layers/{k}/vars"
        kern = (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[:-1]))).astype(np.float32)
        bias = (rng.standard_normal(shape[-1]) * 0.1).astype(np.float32)
        arrays[base + "/0"], arrays[base + "/1"] = kern, bias
        flat += [kern.ravel(), bias.ravel()]
    return arrays, np.concatenate(flat)


def read_tnck(path):
    with open(path, "rb") as f:
        b = f.read()
    assert b[:8] == b"TNRCKPT\0", path
    n = struct.unpack_from("<Q", b, 16)[0]
    config = json.loads(b[24:24 + n])
    p = 24 + n
    k = struct.unpack_from("<Q", b, p)[0]
    return config, np.frombuffer(b, "<f4", k, p + 8)


def corpus(out):
    """The seed corpus of tests/fuzz/fuzz_keras.c: a tiny model that
    imports, and damaged copies of it."""
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(1)
    layers, weighted = baseline(filters=1, blocks=((1, 1), (2, 1)), head=(2,))
    arrays, _ = random_weights(layers, weighted, rng)
    good = f"{out}/tiny.keras"
    write_keras(good, layers, arrays)
    data = open(good, "rb").read()
    with open(f"{out}/cut.keras", "wb") as f:
        f.write(data[: len(data) // 2])
    write_keras(f"{out}/noweights.keras", layers, arrays, members=("config.json",))
    write_keras(f"{out}/missing.keras", layers, arrays, skip=("layers/conv2d/vars/0",))
    layers[-2]["config"]["filters"] = 3
    write_keras(f"{out}/shape.keras", layers, arrays)


def main():
    if sys.argv[1] == "--corpus":
        corpus(sys.argv[2])
        return 0
    tnrec, fixture, work = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    bad = []

    def run(*args):
        return subprocess.run([tnrec, *args], capture_output=True, text=True)

    def check(ok, what):
        print(("ok: " if ok else "FAILED: ") + what)
        if not ok:
            bad.append(what)

    rng = np.random.default_rng(3)
    layers, weighted = baseline()
    arrays, flat = random_weights(layers, weighted, rng)
    model = f"{work}/model.keras"
    write_keras(model, layers, arrays)
    rundir = f"{work}/run"
    r = run("import", "keras", model, "-o", rundir)
    check(r.returncode == 0, f"import exits 0 ({r.returncode}: {r.stderr.strip()})")
    spec = ("a4/1e-05,a4/1e-05,p122s,e0.1,a8/1e-05,a8/1e-05,p122s,e0.1,a16/1e-05,a16/1e-05,a16/1e-05,p122s,e0.1,"
            "a32/1e-05,a32/1e-05,a32/1e-05,p122s,e0.1,h512/1e-05,h256/1e-05,m")
    for name in ("best.tnck", "last.tnck"):
        config, params = read_tnck(f"{rundir}/{name}")
        check(config["model"] == spec, f"{name}: spec {config['model']}")
        check((config["frames"], config["height"], config["width"], config["channels"]) == (1, H, W, 14),
              f"{name}: input shape")
        check(config["variables"] == ",".join(VARS) and config["mask"] is True, f"{name}: variables and mask")
        imp = config.get("imported", {})
        check(imp.get("format") == "keras" and imp.get("from") == os.path.realpath(model),
              f"{name}: config says imported from {imp}")
        check(params.size == flat.size and np.array_equal(params, flat),
              f"{name}: {params.size} parameters equal the file's {flat.size} arrays in Keras' order")

    data = f"{work}/data"
    subprocess.run([fixture, data, "10", "5", "1", str(H), str(W)], check=True)
    r = run("eval", "--json", rundir, data)
    check(r.returncode == 0 and json.loads(r.stdout).get("n") == 10 if r.returncode == 0 else False,
          f"eval runs the imported model ({r.returncode}: {r.stderr.strip()[-300:]})")
    r = run("predict", rundir, data, "-o", f"{work}/p.csv")
    rows = open(f"{work}/p.csv").read().splitlines() if r.returncode == 0 else []
    check(r.returncode == 0 and len(rows) == 11, f"predict writes 10 rows ({r.returncode}: {r.stderr.strip()[-300:]})")

    def refused(path, want, what, code=1, args=None):
        out = f"{work}/refused"
        shutil.rmtree(out, ignore_errors=True)
        r = run(*(args or ("import", "keras", path, "-o", out)))
        msg = r.stderr.strip()
        ok = r.returncode == code and all(w in msg for w in want) and not os.path.exists(out)
        check(ok, f"{what}: exit {r.returncode}, {msg!r}")

    notzip = f"{work}/notzip.keras"
    with open(notzip, "w") as f:
        f.write("not a zip\n" * 20)
    refused(notzip, [notzip, "not a zip"], "not a zip")
    refused(f"{work}/absent.keras", [f"{work}/absent.keras"], "missing file")
    noweights = f"{work}/noweights.keras"
    write_keras(noweights, layers, arrays, members=("config.json", "metadata.json"))
    refused(noweights, [noweights, "no model.weights.h5"], "no model.weights.h5")
    noconfig = f"{work}/noconfig.keras"
    write_keras(noconfig, layers, arrays, members=("metadata.json", "model.weights.h5"))
    refused(noconfig, [noconfig, "no config.json"], "no config.json")
    shape = f"{work}/shape.keras"
    wrong = dict(arrays)
    wrong["layers/coord_conv2d_1/conv/vars/0"] = np.zeros((3, 3, 5, 4), np.float32)
    write_keras(shape, layers, wrong)
    refused(shape, [shape, "layers/coord_conv2d_1/conv/vars/0", "(3, 3, 5, 4)", "(3, 3, 6, 4)"], "wrong shape")
    missing = f"{work}/missing.keras"
    write_keras(missing, layers, arrays, skip=("layers/conv2d_2/vars/1",))
    refused(missing, [missing, "layers/conv2d_2/vars/1", "heatmap"], "missing array")
    dense = copy.deepcopy(layers)
    at = next(i for i, layer in enumerate(dense) if layer["name"] == "heatmap")
    dense.insert(at, {"module": "keras.layers", "class_name": "Dense", "name": "dense",
                      "config": {"name": "dense", "units": 256}, "inbound_nodes": node(tensor("conv2d_11"))})
    unknown = f"{work}/unknown.keras"
    write_keras(unknown, dense, arrays)
    refused(unknown, [unknown, "layer 'dense' (Dense)", "no counterpart"], "unknown layer")
    norm = copy.deepcopy(layers)
    norm[6]["config"]["variance"] = [100.0, 100.0]
    normf = f"{work}/norm.keras"
    write_keras(normf, norm, arrays)
    refused(normf, [normf, "Normalize_DBZ", "CHANNEL_MIN_MAX"], "other normalisation")
    fill = copy.deepcopy(layers)
    next(layer for layer in fill if layer["name"] == "fill_na_ns")["config"]["fill_val"] = 0.0
    fillf = f"{work}/fill.keras"
    write_keras(fillf, fill, arrays)
    refused(fillf, [fillf, "fill_na_ns", "-3"], "another no-data fill")
    valid = copy.deepcopy(layers)
    next(layer for layer in valid if layer["name"] == "coord_conv2d_2")["config"]["padding"] = "valid"
    validf = f"{work}/valid.keras"
    write_keras(validf, valid, arrays)
    refused(validf, [validf, "coord_conv2d_2", "'same'"], "valid padding")
    refused(model, ["no run directory"], "no -o", 2, ("import", "keras", model))
    refused(model, ["unknown format 'onnx'"], "unknown format", 2, ("import", "onnx", model, "-o", f"{work}/refused"))
    full = f"{work}/full"
    os.makedirs(full)
    with open(f"{full}/keep.txt", "w") as f:
        f.write("keep\n")
    r = run("import", "keras", model, "-o", full)
    check(r.returncode == 1 and "not empty" in r.stderr and sorted(os.listdir(full)) == ["keep.txt"],
          f"non-empty run directory refused and untouched: exit {r.returncode}, {r.stderr.strip()!r}")

    print("keras_layout: " + ("FAILED: " + "; ".join(bad) if bad else "all checks passed"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
