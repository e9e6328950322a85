#!/usr/bin/env python3
"""PyTorch parity: the same model spec trained by `tnrec train` and by
PyTorch from the same initial weights, on the same batches in the same
order, with the same loss, class weights and optimiser; the two loss
curves and ROC-AUCs side by side.

usage: parity_torch.py [--tnrec BIN] [--work DIR] [--train DIR --val DIR]
                       [--samples 64] [--model SPEC] [--frames N]
                       [--variables DBZ,VEL] [--batch 4] [--lr 1e-3]
                       [--seed 1] [--init glorot] [--epochs 1] [--steps N]
                       [--class-weights balanced|none|W0,W1]
                       [--adam keras|torch] [--threads 2] [--json FILE]
                       [--tol X] [--diagnose]

How the two runs are matched:
- data: `tnrec synth` + `tnrec build` (train split for training, test
  split for validation) under --work, unless --train and --val are given.
  PyTorch reads the shards through the tnrec Python package (python/,
  found through PYTHONPATH or an installed package): `Loader.epoch(e)`
  with the run's seed yields the batches `tnrec train` trains on in epoch
  e, record for record and bit for bit, with the same class weights
  (taken from the run's checkpoint configuration).
- initial weights: made by libtnrec itself (tnrec_model_create and
  tnrec_model_init_weights with the run's spec, input shape, --init and
  --seed, the calls `tnrec train` makes), read through ctypes, and
  checked against the first checkpoint: the step-1 weights of tnrec must
  follow from them and the step-1 Adam state to within 2 float32 ulps.
- tnrec's curve: `tnrec train ... --max-steps 1`, then `tnrec train
  --resume RUN --max-steps 1` once per further step (a resumed CPU run
  ends bit for bit where an uninterrupted one does, docs/train.md). After
  each call last.tnck holds the epoch's loss sum (float64) and the
  weights; the loss of the step is the difference of the sums. The last
  step of an epoch resets the sum, so its loss comes from the epoch's
  mean loss in metrics.jsonl (8 significant digits).
- layers: Conv3d 3x3x3 padding 1 with the kernel (kd, kh, kw, in, out)
  permuted to PyTorch's (out, in, kd, kh, kw); Keras batch norm (batch
  statistics with the biased variance, epsilon 1e-3, moving statistics
  with momentum 0.99 and the biased variance: PyTorch's own running
  variance is unbiased, so it is updated here by hand); LeakyReLU(0.1);
  MaxPool3d (floor); global max pooling as a max pool over the whole
  volume (the first maximum takes the gradient, as in tnrec); Linear with
  the (in, out) kernel transposed; dropout masks computed as
  train/reference.c draws them (splitmix64 of seed, step and layer), so
  specs with sR and xR are matched exactly.
- loss: weighted BCE from the logit, mean over the batch, plus l2 * sum
  w^2 per kernel; the loss printed for PyTorch is evaluated in float64
  from its float32 logits, as tnrec evaluates it from its own.
- optimiser: --adam keras (default) is Adam as tnrec and Keras apply it
  (w -= lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) + eps), eps 1e-7);
  --adam torch uses torch.optim.Adam with the same betas and eps, which
  adds eps to sqrt(v / (1-b2^t)) instead: the update differs where
  sqrt(v) is not large against eps (see docs/benchmarks.md).

Prints one line per step (tnrec loss, PyTorch loss, their difference, the
largest weight difference after the step) and per epoch (training and
validation ROC-AUC of both). --tol: exit 1 when a step's losses differ by
more than X. --diagnose: after step 1, the logits of the first batch and
each tensor's gradient (tnrec's from its Adam state: m1 = (1 - b1) g)
against PyTorch's and against a float64 PyTorch step (the yardstick of
both). Exit 77 (skipped) when torch cannot be imported; 1 on a failure.

max_dw is the largest weight difference after the step, leaving out the
biases of convolutions followed by batch norm: their gradient is zero in
exact arithmetic (the normalisation takes the mean out), so both
programs feed Adam rounding noise there, and Adam, which divides by the
gradient's own size, turns noise of either sign into steps of up to lr.
Those biases cannot change any output; their drift is printed apart
(bias_dw)."""
import argparse
import ctypes
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import time

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print("parity_torch: skipped: cannot import torch (%s)\nhint: apt-get install python3-torch" % e, file=sys.stderr)
    sys.exit(77)
try:
    import tnrec
    from tnrec import _lib
except ImportError as e:
    raise SystemExit("parity_torch: cannot import the tnrec package (%s)\n"
                     "hint: PYTHONPATH=python TNREC_LIBRARY=build/libtnrec.so" % e)

PRESETS = {
    "seed3d": "c32/0.001,c32/0.001,p122,s0.1,c64/0.001,c64/0.001,p122,s0.1,"
              "c128/0.001,c128/0.001,p222,s0.1,g,d128/0.01,x0.1,o",
    "tiny": "p122,c16,p122,c16,p222,c32,g,d16,o",
}
BN_MOMENTUM, BN_EPS, ALPHA = 0.99, 1e-3, 0.1
M64 = (1 << 64) - 1


# ---- the checkpoint (train/checkpoint.h) ----

def read_checkpoint(path):
    with open(path, "rb") as f:
        b = f.read()
    if b[:8] != b"TNRCKPT\0":
        raise SystemExit("%s: not a tnrec checkpoint" % path)
    major, minor = struct.unpack_from("<II", b, 8)
    if major != 1:
        raise SystemExit("%s: checkpoint version %d.%d, this reads 1.x" % (path, major, minor))
    pos = 16

    def u64():
        nonlocal pos
        v = struct.unpack_from("<Q", b, pos)[0]
        pos += 8
        return v

    def f64():
        nonlocal pos
        v = struct.unpack_from("<d", b, pos)[0]
        pos += 8
        return v

    def arr(n, dt):
        nonlocal pos
        a = np.frombuffer(b, dt, n, pos).copy()
        pos += 4 * n
        return a

    n = u64()
    cfg = json.loads(b[pos:pos + n])
    pos += n
    ck = {"config": cfg}
    ck["params"] = arr(u64(), "<f4")
    ck["state"] = arr(u64(), "<f4")
    n = u64()
    ck["adam_m"], ck["adam_v"] = arr(n, "<f4"), arr(n, "<f4")
    ck["adam_t"] = u64()
    ck["epoch"], ck["step"], ck["global_step"] = u64(), u64(), u64()
    ck["lr"], ck["best_value"] = f64(), f64()
    pos += 3 * 8                       # best_epoch, wait, plateau_wait
    ck["loss_sum"], ck["seconds"] = f64(), f64()
    ck["samples"] = u64()
    n = u64()
    ck["part_prob"], ck["part_label"] = arr(n, "<f4"), arr(n, "<i4")
    return ck


# ---- initial weights from libtnrec ----

class ParamTensor(ctypes.Structure):
    _fields_ = [("off", ctypes.c_size_t), ("len", ctypes.c_size_t), ("layer", ctypes.c_int),
                ("layer_type", ctypes.c_char_p), ("role", ctypes.c_char_p)]


def tnrec_initial_weights(spec, shape, init, seed):
    """The weights `tnrec train` starts from: tnrec_model_create (which
    expands presets) and tnrec_model_init_weights, as train/trainer.c calls
    them. Returns (expanded spec, params, state, tensors)."""
    L, P = _lib.lib, ctypes.POINTER
    decl = [("tnrec_model_create", ctypes.c_int, [P(ctypes.c_void_p), ctypes.c_char_p, P(_lib.InputShape), ctypes.c_uint64]),
            ("tnrec_model_free", None, [ctypes.c_void_p]),
            ("tnrec_init_parse", ctypes.c_int, [P(ctypes.c_int), ctypes.c_char_p]),
            ("tnrec_model_init_weights", ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64]),
            ("tnrec_model_spec", ctypes.c_char_p, [ctypes.c_void_p]),
            ("tnrec_model_params", P(ctypes.c_float), [ctypes.c_void_p]),
            ("tnrec_model_trainable_count", ctypes.c_size_t, [ctypes.c_void_p]),
            ("tnrec_model_state", P(ctypes.c_float), [ctypes.c_void_p]),
            ("tnrec_model_state_count", ctypes.c_size_t, [ctypes.c_void_p]),
            ("tnrec_model_tensor_count", ctypes.c_size_t, [ctypes.c_void_p]),
            ("tnrec_model_tensor", ctypes.c_int, [P(ParamTensor), ctypes.c_void_p, ctypes.c_size_t])]
    for name, res, args in decl:
        fn = getattr(L, name)
        fn.restype, fn.argtypes = res, args
    m = ctypes.c_void_p()
    ini = ctypes.c_int()
    shp = _lib.InputShape(*shape)
    tnrec._check(L.tnrec_init_parse(ctypes.byref(ini), init.encode()))
    tnrec._check(L.tnrec_model_create(ctypes.byref(m), spec.encode(), ctypes.byref(shp), seed))
    try:
        tnrec._check(L.tnrec_model_init_weights(m, ini.value, seed))
        n, ns = L.tnrec_model_trainable_count(m), L.tnrec_model_state_count(m)
        params = np.ctypeslib.as_array(L.tnrec_model_params(m), shape=(n,)).copy()
        state = np.ctypeslib.as_array(L.tnrec_model_state(m), shape=(ns,)).copy() if ns else np.zeros(0, np.float32)
        tensors = []
        for i in range(L.tnrec_model_tensor_count(m)):
            t = ParamTensor()
            tnrec._check(L.tnrec_model_tensor(ctypes.byref(t), m, i))
            tensors.append((t.layer, t.layer_type.decode(), t.role.decode(), t.off, t.len))
        return L.tnrec_model_spec(m).decode(), params, state, tensors
    finally:
        L.tnrec_model_free(m)


# ---- the model in PyTorch ----

def parse_spec(spec, shape):
    """tnrec's layer table (train/model.c: add_token): one dict per layer,
    with the offsets of its tensors in the flat parameter and state
    arrays. Layer indexes matter: they name the dropout streams."""
    frames, height, width, channels = shape
    d, h, w, c = frames, height, width, channels
    layers = []
    for tok in PRESETS.get(spec, spec).split(","):
        tok = tok.strip()
        k = tok[0]
        if k in "ck":
            units, _, l2 = tok[1:].partition("/")
            layers.append(dict(kind="conv", cin=c, c=int(units), l2=float(l2 or 0)))
            c = int(units)
            if k == "c":
                layers.append(dict(kind="bn", c=c))
            layers.append(dict(kind="lrelu"))
        elif k == "p":
            pool = tuple(int(ch) for ch in tok[1:4])
            layers.append(dict(kind="pool", pool=pool))
            d, h, w = d // pool[0], h // pool[1], w // pool[2]
        elif k in "sx":
            layers.append(dict(kind="drop", rate=float(tok[1:]), c=c))
        elif k == "g":
            layers.append(dict(kind="gpool"))
            d = h = w = 1
        elif k in "do":
            units, _, l2 = ("1", "", "") if k == "o" else tok[1:].partition("/")
            layers.append(dict(kind="dense", cin=c, c=int(units), l2=float(l2 or 0)))
            c = int(units)
            if k == "d":
                layers.append(dict(kind="lrelu"))
        else:
            raise SystemExit("parity_torch: unknown layer '%s'" % tok)
    off = soff = 0
    for L in layers:
        if L["kind"] == "conv":
            L["w_len"], L["b_len"] = 27 * L["cin"] * L["c"], L["c"]
        elif L["kind"] == "dense":
            L["w_len"], L["b_len"] = L["cin"] * L["c"], L["c"]
        elif L["kind"] == "bn":
            L["w_len"] = L["b_len"] = L["c"]
            L["s_off"] = soff
            soff += 2 * L["c"]
        else:
            L["w_len"] = L["b_len"] = 0
        L["w_off"], L["b_off"] = off, off + L["w_len"]
        off += L["w_len"] + L["b_len"]
    return layers, off, soff


def mix64(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def mix64_np(z):
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def dropout_mask(count, rate, seed, stream, first=0):
    """train/reference.c dropout_mask: element j of stream `stream`."""
    base = mix64(seed ^ mix64(stream))
    j = np.arange(first, first + count, dtype=np.uint64)
    u = (mix64_np(np.uint64(base) + j) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    keep = np.float32(1.0 / (1.0 - rate))
    return np.where(u < rate, np.float32(0), keep).astype(np.float32)


class TorchNet:
    """The spec's layers over PyTorch tensors in NCDHW, with parameters
    taken from (and written back to) tnrec's flat layout."""

    def __init__(self, layers, params, state, dtype=np.float32):
        self.layers = layers
        self.t = {}                    # (layer index, "w" or "b") -> leaf tensor
        params = params.astype(dtype)
        self.state = torch.from_numpy(state.astype(dtype))
        for i, L in enumerate(layers):
            if not L["w_len"]:
                continue
            w = params[L["w_off"]:L["w_off"] + L["w_len"]]
            b = params[L["b_off"]:L["b_off"] + L["b_len"]]
            if L["kind"] == "conv":   # (kd, kh, kw, in, out) -> (out, in, kd, kh, kw)
                w = w.reshape(3, 3, 3, L["cin"], L["c"]).transpose(4, 3, 0, 1, 2)
            elif L["kind"] == "dense":  # (in, out) -> (out, in)
                w = w.reshape(L["cin"], L["c"]).T
            self.t[(i, "w")] = torch.tensor(np.ascontiguousarray(w), requires_grad=True)
            self.t[(i, "b")] = torch.tensor(b.copy(), requires_grad=True)

    def parameters(self):
        return list(self.t.values())

    def flat(self, grads=False):
        """Parameters (or gradients) in tnrec's flat layout."""
        out = []
        for (i, r), t in self.t.items():
            a = (t.grad if grads else t).detach().numpy()
            L = self.layers[i]
            if r == "w" and L["kind"] == "conv":
                a = a.transpose(2, 3, 4, 1, 0)
            elif r == "w" and L["kind"] == "dense":
                a = a.T
            out.append(np.ascontiguousarray(a).ravel())
        return np.concatenate(out)

    def forward(self, x, training, dropout_seed=0):
        for i, L in enumerate(self.layers):
            k = L["kind"]
            if k == "conv":
                x = F.conv3d(x, self.t[(i, "w")], self.t[(i, "b")], padding=1)
            elif k == "bn":
                g, b, c = self.t[(i, "w")], self.t[(i, "b")], L["c"]
                mm = self.state[L["s_off"]:L["s_off"] + c]
                mv = self.state[L["s_off"] + c:L["s_off"] + 2 * c]
                if training:
                    # Keras: normalise with the batch's biased variance, and
                    # move the statistics with that same biased variance.
                    dims = (0, 2, 3, 4)
                    mean = x.mean(dims)
                    var = x.var(dims, unbiased=False)
                    with torch.no_grad():
                        mm.mul_(BN_MOMENTUM).add_((1 - BN_MOMENTUM) * mean)
                        mv.mul_(BN_MOMENTUM).add_((1 - BN_MOMENTUM) * var)
                    x = F.batch_norm(x, None, None, g, b, True, 0.0, BN_EPS)
                else:
                    x = F.batch_norm(x, mm, mv, g, b, False, 0.0, BN_EPS)
            elif k == "lrelu":
                x = F.leaky_relu(x, ALPHA)
            elif k == "pool":
                x = F.max_pool3d(x, L["pool"], L["pool"])
            elif k == "gpool":
                x = F.max_pool3d(x, x.shape[2:]).flatten(1)
            elif k == "drop":
                if training and L["rate"] > 0:
                    n = x.shape[0]
                    mask = torch.from_numpy(dropout_mask(n * L["c"], L["rate"], dropout_seed, i)).view(n, L["c"]).to(x.dtype)
                    x = x * mask.view(mask.shape + (1,) * (x.dim() - 2))
            elif k == "dense":
                x = F.linear(x, self.t[(i, "w")], self.t[(i, "b")])
        return x.view(-1)

    def l2(self):
        terms = [L["l2"] * (self.t[(i, "w")] ** 2).sum() for i, L in enumerate(self.layers) if L.get("l2", 0) > 0]
        return sum(terms) if terms else torch.zeros(())


class KerasAdam:
    """Adam as train/optim.c (and Keras) applies it, in float32."""

    def __init__(self, params, lr, b1=0.9, b2=0.999, eps=1e-7):
        self.p, self.lr, self.b1, self.b2, self.eps, self.t = params, lr, b1, b2, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self):
        self.t += 1
        alpha = np.float32(self.lr * math.sqrt(1 - self.b2 ** self.t) / (1 - self.b1 ** self.t))
        fb1, fb2 = np.float32(self.b1), np.float32(self.b2)
        for p, m, v in zip(self.p, self.m, self.v):
            g = p.grad
            m.mul_(float(fb1)).add_(g * float(np.float32(1) - fb1))
            v.mul_(float(fb2)).add_(g * float(np.float32(1) - fb2) * g)
            p.sub_(float(alpha) * m / (v.sqrt() + float(np.float32(self.eps))))

    def zero_grad(self):
        for p in self.p:
            p.grad = None


def roc_auc(prob, label):
    """Exact ROC-AUC with ties counted half (scikit-learn's roc_auc_score)."""
    prob, label = np.asarray(prob, np.float64), np.asarray(label) > 0.5
    npos, nneg = int(label.sum()), int((~label).sum())
    if npos == 0 or nneg == 0:
        return float("nan")
    order = np.argsort(prob, kind="mergesort")
    ranks = np.empty(len(prob))
    sp = prob[order]
    i = 0
    while i < len(sp):
        j = i
        while j + 1 < len(sp) and sp[j + 1] == sp[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[label].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def bce64(logit, y, w):
    """train/reference.c bce_logits in float64: sum w l / n."""
    z = logit.astype(np.float64)
    l = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    return float((w.astype(np.float64) * l).sum() / len(z))


# ---- the two runs ----

def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit("parity_torch: '%s' failed (%d):\n%s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
    return r.stdout


def make_data(a):
    arch = os.path.join(a.work, "tornet")
    for d in ("tornet", "train", "val"):
        shutil.rmtree(os.path.join(a.work, d), ignore_errors=True)
    run([a.tnrec, "synth", arch, "--samples", str(a.samples), "--seed", str(a.data_seed), "--tor-fraction", "0.33",
         "-j", str(a.threads), "-q"])
    a.train = os.path.join(a.work, "train")
    a.val = os.path.join(a.work, "val")
    run([a.tnrec, "build", arch, "--split", "train", "-o", a.train, "-j", str(a.threads), "-q"])
    run([a.tnrec, "build", arch, "--split", "test", "-o", a.val, "-j", str(a.threads), "-q"])


def tnrec_run(a, steps_per_epoch, total):
    """`tnrec train` one step per call; per step: epoch, loss, weights."""
    rd = os.path.join(a.work, "run")
    shutil.rmtree(rd, ignore_errors=True)
    first = [a.tnrec, "train", a.train, "--val", a.val, "-o", rd, "--model", a.model, "--batch", str(a.batch),
             "--lr", repr(a.lr), "--seed", str(a.seed), "--init", a.init, "--epochs", str(a.epochs),
             "--class-weights", a.class_weights, "--variables", a.variables, "-j", str(a.threads), "-q"]
    if a.frames:
        first += ["--frames", str(a.frames)]
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    steps, epochs, ckpts = [], [], []
    prev_sum, prev_epoch = 0.0, 0
    t0 = time.time()
    for k in range(total):
        run((first if k == 0 else [a.tnrec, "train", "--resume", rd, "-j", str(a.threads), "-q"]) + ["--max-steps", "1"],
            env=env)
        ck = read_checkpoint(os.path.join(rd, "last.tnck"))
        n = a.batch if (k % steps_per_epoch) + 1 < steps_per_epoch else a.ntrain - a.batch * (steps_per_epoch - 1)
        if ck["epoch"] > prev_epoch:       # the epoch ended: its mean loss is in metrics.jsonl
            with open(os.path.join(rd, "metrics.jsonl")) as f:
                m = [json.loads(line) for line in f][-1]
            loss = (m["loss"] * a.ntrain - prev_sum) / n
            epochs.append(dict(roc_auc=m["roc_auc"], val_roc_auc=m["val_roc_auc"], loss=m["loss"],
                               val_loss=m["val_loss"]))
            prev_sum, prev_epoch = 0.0, ck["epoch"]
        else:
            loss = (ck["loss_sum"] - prev_sum) / n
            prev_sum = ck["loss_sum"]
        steps.append(loss)
        ckpts.append(ck["params"])
        if k == 0:
            first_ck = ck
    return steps, epochs, ckpts, first_ck, time.time() - t0


def torch_run(a, net, ds, val, cw, total, steps_per_epoch, ref=None):
    params = net.parameters()
    opt = KerasAdam(params, a.lr) if a.adam == "keras" else torch.optim.Adam(params, lr=a.lr, eps=1e-7)
    steps, epochs, flats, diag = [], [], [], None
    k = 0
    t0 = time.time()
    with ds.loader(a.batch, shuffle=True, seed=a.seed, threads=a.threads, layout="NCDHW", class_weights=cw) as ld:
        for epoch in range(a.epochs):
            probs, labels = [], []
            for b in ld.epoch(epoch):
                if k >= total:
                    break
                x, y, w = (torch.from_numpy(np.ascontiguousarray(b[key])) for key in ("x", "label", "weight"))
                dseed = mix64(a.seed ^ mix64(k + 1))   # train/trainer.c: per global step
                logit = net.forward(x, True, dseed)
                bce = (F.binary_cross_entropy_with_logits(logit, y, reduction="none") * w).mean()
                l2 = net.l2()
                opt.zero_grad()
                (bce + l2).backward()
                z = logit.detach().numpy()
                steps.append(bce64(z, b["label"], b["weight"]) + float(l2))
                if k == 0 and ref is not None:
                    diag = dict(logits=z.copy(), grads=net.flat(grads=True), ref=ref(b, dseed))
                opt.step()
                flats.append(net.flat())
                probs.append(1 / (1 + np.exp(-z.astype(np.float64))))
                labels.append(b["label"].copy())
                k += 1
            ep = dict(roc_auc=roc_auc(np.concatenate(probs), np.concatenate(labels)) if probs else float("nan"))
            if k % steps_per_epoch == 0 and probs:
                vp, vl = [], []
                with torch.no_grad():
                    for vb in val.batches(a.batch, shuffle=False, threads=a.threads, layout="NCDHW", class_weights="none"):
                        vz = net.forward(torch.from_numpy(np.ascontiguousarray(vb["x"])), False).numpy()
                        vp.append(1 / (1 + np.exp(-vz.astype(np.float64))))
                        vl.append(vb["label"].copy())
                ep["val_roc_auc"] = roc_auc(np.concatenate(vp), np.concatenate(vl))
                epochs.append(ep)
            if k >= total:
                break
    return steps, epochs, flats, diag, time.time() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tnrec", default=os.environ.get("TNREC_BIN", "build/bin/tnrec"))
    p.add_argument("--work", default="out/parity")
    p.add_argument("--train")
    p.add_argument("--val")
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--data-seed", type=int, default=1)
    p.add_argument("--model", default="p122,c8,p222,k8,g,d8,o")
    p.add_argument("--frames", type=int, default=2)
    p.add_argument("--variables", default="DBZ,VEL")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--init", default="glorot")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--steps", type=int, default=0, help="stop after N steps (default: all epochs)")
    p.add_argument("--class-weights", default="balanced")
    p.add_argument("--adam", choices=("keras", "torch"), default="keras")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json")
    p.add_argument("--tol", type=float, default=0.0)
    p.add_argument("--diagnose", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.work, exist_ok=True)
    if bool(a.train) != bool(a.val):
        p.error("--train and --val go together")
    if not a.train:
        make_data(a)
    fields = a.variables.split(",")
    ds = tnrec.open(a.train, fields=fields, frames=a.frames or None)
    val = tnrec.open(a.val, fields=fields, frames=a.frames or None)
    a.ntrain = len(ds)
    steps_per_epoch = -(-a.ntrain // a.batch)
    total = a.epochs * steps_per_epoch if not a.steps else min(a.steps, a.epochs * steps_per_epoch)

    t_steps, t_epochs, t_ck, ck1, t_sec = tnrec_run(a, steps_per_epoch, total)
    cfg = ck1["config"]
    if cfg.get("nodata") is not None:
        # tnrec fed this value at no-data gates (tnrec train --nodata): read the same
        ds = tnrec.open(a.train, fields=fields, frames=a.frames or None, nodata=cfg["nodata"])
        val = tnrec.open(a.val, fields=fields, frames=a.frames or None, nodata=cfg["nodata"])
    cw = (cfg["class_weight_0"], cfg["class_weight_1"])
    shape = (cfg["frames"], cfg["height"], cfg["width"], cfg["channels"])
    spec, params0, state0, tensors = tnrec_initial_weights(a.model, shape, a.init, a.seed)
    layers, nparams, nstate = parse_spec(spec, shape)
    mine = [(i, L["kind"], r, L[r + "_off"], L[r + "_len"]) for i, L in enumerate(layers) if L["w_len"] for r in ("w", "b")]
    if nparams != len(params0) or nstate != len(state0) or [(t[0], t[3], t[4]) for t in tensors] != [(t[0], t[3], t[4]) for t in mine]:
        raise SystemExit("parity_torch: the layer table of '%s' differs from libtnrec's" % spec)
    # The initial weights are the run's: step 1 of tnrec follows from them.
    alpha = np.float32(a.lr * math.sqrt(1 - 0.999) / (1 - 0.9))
    w1 = params0 - alpha * ck1["adam_m"] / (np.sqrt(ck1["adam_v"]) + np.float32(1e-7))
    ulp = np.spacing(np.abs(ck1["params"])).astype(np.float64)
    init_ulps = float(np.max(np.abs(w1.astype(np.float64) - ck1["params"]) / ulp))
    if init_ulps > 2:
        raise SystemExit("parity_torch: the initial weights do not lead to tnrec's step 1 (%.1f ulps)" % init_ulps)

    def ref64(b, dseed):
        """Step 1's logits and gradient in float64 (PyTorch), the yardstick
        for both float32 runs."""
        r = TorchNet(layers, params0, state0, np.float64)
        x, y, w = (torch.from_numpy(np.ascontiguousarray(b[key]).astype(np.float64)) for key in ("x", "label", "weight"))
        z = r.forward(x, True, dseed)
        ((F.binary_cross_entropy_with_logits(z, y, reduction="none") * w).mean() + r.l2()).backward()
        return dict(logits=z.detach().numpy(), grads=r.flat(grads=True))

    net = TorchNet(layers, params0, state0)
    p_steps, p_epochs, p_flats, diag, p_sec = torch_run(a, net, ds, val, cw, total, steps_per_epoch,
                                                         ref64 if a.diagnose else None)

    print("# spec %s, input %s, %d parameters, batch %d, lr %g, seed %d, init %s, adam %s, class weights %.6g/%.6g"
          % (spec, "x".join(map(str, shape)), nparams, a.batch, a.lr, a.seed, a.init, a.adam, cw[0], cw[1]))
    print("# initial weights: libtnrec, reproduce tnrec's step 1 within %.1f ulp" % init_ulps)
    # Biases of convolutions followed by batch norm (see max_dw above).
    pre_bn = np.zeros(nparams, bool)
    for i, L in enumerate(layers[:-1]):
        if L["kind"] == "conv" and layers[i + 1]["kind"] == "bn":
            pre_bn[L["b_off"]:L["b_off"] + L["b_len"]] = True
    print("%5s %5s %14s %14s %10s %10s %10s %10s" % ("step", "epoch", "tnrec_loss", "torch_loss", "abs_diff", "rel_diff",
                                                    "max_dw", "bias_dw"))
    rows, maxd = [], 0.0
    for k in range(total):
        d = abs(t_steps[k] - p_steps[k])
        dw = np.abs(t_ck[k].astype(np.float64) - p_flats[k])
        mdw, bdw = float(np.max(dw[~pre_bn])), float(np.max(dw[pre_bn])) if pre_bn.any() else 0.0
        maxd = max(maxd, d)
        rows.append(dict(step=k + 1, epoch=k // steps_per_epoch + 1, tnrec=t_steps[k], torch=p_steps[k], abs_diff=d,
                         max_dw=mdw, bias_dw=bdw))
        print("%5d %5d %14.9f %14.9f %10.3e %10.3e %10.3e %10.3e" % (k + 1, k // steps_per_epoch + 1, t_steps[k],
                                                                     p_steps[k], d, d / max(abs(t_steps[k]), 1e-30),
                                                                     mdw, bdw))
    print("max |loss difference| %.3e over %d steps; after the last step max |weight difference| %.3e"
          " (biases before batch norm %.3e)" % (maxd, total, rows[-1]["max_dw"], rows[-1]["bias_dw"]))
    def auc(v):  # metrics.jsonl writes an undefined AUC (one class only) as null
        return "n/a" if v is None or v != v else "%.6f" % v

    for e in range(min(len(t_epochs), len(p_epochs))):
        print("epoch %d: training ROC-AUC tnrec %s torch %s; validation ROC-AUC tnrec %s torch %s"
              % (e + 1, auc(t_epochs[e]["roc_auc"]), auc(p_epochs[e]["roc_auc"]), auc(t_epochs[e]["val_roc_auc"]),
                 auc(p_epochs[e]["val_roc_auc"])))
    print("time: tnrec %.1f s (one process per step), torch %.1f s" % (t_sec, p_sec))
    if diag is not None:
        z_t = np.log(ck1["part_prob"].astype(np.float64) / (1 - ck1["part_prob"]))
        z64 = diag["ref"]["logits"]
        print("diagnose step 1 (batch 1, against float64 PyTorch): logits max |tnrec - f64| %.3e, |torch - f64| %.3e"
              " (tnrec's from its float32 probabilities)"
              % (float(np.max(np.abs(z_t - z64))), float(np.max(np.abs(diag["logits"] - z64)))))
        g_t = (ck1["adam_m"] / (np.float32(1) - np.float32(0.9))).astype(np.float64)
        g_p, g_64 = diag["grads"].astype(np.float64), diag["ref"]["grads"]
        dw1 = np.abs(t_ck[0].astype(np.float64) - p_flats[0])
        print("  %-18s %10s %10s %10s %10s %10s" % ("gradient", "max |g64|", "tnrec-f64", "torch-f64", "tnrec-torch",
                                                    "max |dw|"))
        for (i, kind, r, off, n) in mine:
            sl = slice(off, off + n)
            e = lambda u, v: float(np.max(np.abs(u[sl] - v[sl])))
            print("  layer %2d %-5s %-3s %10.3e %10.3e %10.3e %10.3e %10.3e"
                  % (i, kind, r, float(np.max(np.abs(g_64[sl]))), e(g_t, g_64), e(g_p, g_64), e(g_t, g_p),
                     float(np.max(dw1[sl]))))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(spec=spec, shape=shape, batch=a.batch, lr=a.lr, seed=a.seed, init=a.init, adam=a.adam,
                           class_weights=cw, init_ulps=init_ulps, steps=rows, max_abs_diff=maxd,
                           tnrec_epochs=t_epochs, torch_epochs=p_epochs, tnrec_seconds=t_sec, torch_seconds=p_sec),
                      f, indent=1)
    if a.tol > 0 and maxd > a.tol:
        print("parity_torch: FAIL: the losses differ by %.3e > %.3e" % (maxd, a.tol), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
