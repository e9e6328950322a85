#!/usr/bin/env python3
"""PyTorch anchor for bench_gpu_train: the seed3d model, the same input
shapes, one training step = forward + weighted BCE (+ the L2 terms) +
backward + value clipping at 1 + Adam, the batch copied from host memory
each step (NDHWC float32 on the host, as tnrec's loader hands it over).

usage: bench_gpu_torch.py [--batch 32,64,128,256] [--modes bf16,fp16,fp32]
                          [--steps 10] [--warmup 3] [--device cuda]
                          [--frames 4] [--height 120] [--width 240] [--channels 12]
                          [--pinned] [--seconds S] [--expect-params 886337]

Modes: bf16 and fp16 are autocast (fp16 with a GradScaler) with the model
and input in channels_last_3d and cudnn.benchmark on; fp32 is float32
with TF32 off (cuDNN and cuBLAS), also channels_last_3d. One JSON object
per line: first the versions and the parameter count, then one per batch
and mode with the median step time and samples/s (train and inference),
like bench_gpu_train's. --seconds: start no new measurement after that
many seconds (the rest are listed as skipped). Exit 1 when the parameter
count is not --expect-params (checked for 12 channels only), 77 when
torch cannot be imported or --device cuda has no GPU. On the CPU (a
check of the script itself, at a small shape) use fp32 or bf16."""
import argparse
import json
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    print("bench_gpu_torch: skipped: cannot import torch (%s)" % e, file=sys.stderr)
    sys.exit(77)

# seed3d (train/model.c, docs/train.md): c32/0.001,c32/0.001,p122,s0.1,
# c64/0.001,c64/0.001,p122,s0.1,c128/0.001,c128/0.001,p222,s0.1,g,d128/0.01,x0.1,o
# cN/L2: Conv3D 3x3x3 'same' + bias, BatchNormalization (Keras: momentum
# 0.99, epsilon 1e-3), LeakyReLU(0.1); pDHW MaxPool3D; sR SpatialDropout3D;
# g GlobalMaxPooling3D; dN/L2 Dense + LeakyReLU(0.1); xR Dropout; o Dense 1.
SEED3D_CONVS = [(32, 0.001, None), (32, 0.001, (1, 2, 2)), (64, 0.001, None), (64, 0.001, (1, 2, 2)),
                (128, 0.001, None), (128, 0.001, (2, 2, 2))]
SEED3D_PARAMS = 886337  # tnrec's count: trainable 885,441 + BN moving mean and variance 896


class Seed3d(nn.Module):
    def __init__(self, channels=12):
        super().__init__()
        layers, self.l2, c = [], [], channels
        for f, l2, pool in SEED3D_CONVS:
            conv = nn.Conv3d(c, f, 3, padding=1)
            layers += [conv, nn.BatchNorm3d(f, momentum=0.01, eps=1e-3), nn.LeakyReLU(0.1)]
            self.l2.append((conv.weight, l2))
            c = f
            if pool:
                layers += [nn.MaxPool3d(pool), nn.Dropout3d(0.1)]
        self.features = nn.Sequential(*layers)
        self.dense = nn.Linear(c, 128)
        self.l2.append((self.dense.weight, 0.01))
        self.head = nn.Sequential(nn.LeakyReLU(0.1), nn.Dropout(0.1), nn.Linear(128, 1))

    def forward(self, x):
        x = self.features(x)
        x = torch.amax(x, dim=(2, 3, 4))  # GlobalMaxPooling3D
        return self.head(self.dense(x)).squeeze(1)

    def l2_loss(self):
        return sum(k * w.float().pow(2).sum() for w, k in self.l2)


def param_counts(model):
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    moving = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return trainable, moving


def versions(dev):
    v = {"impl": "pytorch " + torch.__version__, "torch_cuda": torch.version.cuda}
    try:
        v["cudnn"] = torch.backends.cudnn.version()
    except Exception:  # noqa: BLE001 - informative only
        v["cudnn"] = None
    if dev.type == "cuda":
        v["device"] = torch.cuda.get_device_name(dev)
        try:
            v["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
        except Exception:  # noqa: BLE001
            v["nccl"] = None
    else:
        v["device"] = "cpu (%d threads)" % torch.get_num_threads()
    return v


def measure(dev, mode, batch, shape, steps, warmup, pinned):
    frames, height, width, channels = shape
    torch.manual_seed(0)
    model = Seed3d(channels).to(dev).to(memory_format=torch.channels_last_3d)
    fused = {"fused": True} if dev.type == "cuda" else {}
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, eps=1e-7, **fused)
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mode)
    if hasattr(torch.amp, "GradScaler"):
        scaler = torch.amp.GradScaler(dev.type, enabled=(mode == "fp16"))
    else:  # PyTorch before 2.3: CUDA only
        scaler = torch.cuda.amp.GradScaler(enabled=(mode == "fp16" and dev.type == "cuda"))
    tf32 = mode != "fp32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True
    # The batch on the host, NDHWC float32 as tnrec's loader hands it over;
    # its permute to (N, C, D, H, W) on the device is channels_last_3d.
    g = torch.Generator().manual_seed(12345)
    xh = torch.rand((batch, frames, height, width, channels), generator=g) * 2 - 1
    yh = (torch.arange(batch) % 7 == 0).float()
    wh = torch.where(yh > 0, torch.tensor(7.33), torch.tensor(0.537))
    if pinned and dev.type == "cuda":
        xh, yh, wh = xh.pin_memory(), yh.pin_memory(), wh.pin_memory()
    params = list(model.parameters())

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def train_step():
        x = xh.to(dev, non_blocking=pinned).permute(0, 4, 1, 2, 3)
        y, w = yh.to(dev, non_blocking=pinned), wh.to(dev, non_blocking=pinned)
        with torch.autocast(dev.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            logits = model(x)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y, weight=w) + model.l2_loss()
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_value_(params, 1.0)
        scaler.step(opt)
        scaler.update()
        return loss.item()  # the loss on the host, as tnrec's step ends

    @torch.no_grad()
    def infer():
        x = xh.to(dev, non_blocking=pinned).permute(0, 4, 1, 2, 3)
        with torch.autocast(dev.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            p = torch.sigmoid(model(x).float())
        return p.cpu()

    model.train()
    ts = []
    for i in range(warmup + steps):
        sync()
        t0 = time.perf_counter()
        loss = train_step()
        if i >= warmup:
            ts.append(time.perf_counter() - t0)
    model.eval()
    ti = []
    for i in range(warmup + steps):
        sync()
        t0 = time.perf_counter()
        infer()
        if i >= warmup:
            ti.append(time.perf_counter() - t0)
    st, si = statistics.median(ts), statistics.median(ti)
    out = {"impl": "pytorch " + torch.__version__, "model": "seed3d", "precision": mode, "batch": batch,
           "steps": steps, "train_step_s": round(st, 5), "train_samples_per_s": round(batch / st, 1),
           "infer_batch_s": round(si, 5), "infer_samples_per_s": round(batch / si, 1),
           "epoch_171666_s": round(171666 / (batch / st), 1), "last_loss": round(loss, 5)}
    if dev.type == "cuda":
        out["max_memory_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", default="32,64,128,256")
    ap.add_argument("--modes", default="bf16,fp16,fp32")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--height", type=int, default=120)
    ap.add_argument("--width", type=int, default=240)
    ap.add_argument("--channels", type=int, default=12)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    ap.add_argument("--pinned", action="store_true", help="page-locked host batch (default: pageable)")
    ap.add_argument("--seconds", type=float, default=0, help="start nothing new after this many seconds (0: no limit)")
    ap.add_argument("--expect-params", type=int, default=SEED3D_PARAMS)
    a = ap.parse_args()
    t_start = time.monotonic()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("bench_gpu_torch: skipped: torch.cuda.is_available() is false", file=sys.stderr)
        return 77
    modes = [m for m in a.modes.split(",") if m]
    for m in modes:
        if m not in ("bf16", "fp16", "fp32"):
            ap.error("unknown mode %r (bf16, fp16, fp32)" % m)
    batches = [int(b) for b in a.batch.split(",") if b]
    trainable, moving = param_counts(Seed3d(a.channels))
    head = versions(dev)
    head.update({"params": trainable + moving, "trainable": trainable, "moving_stats": moving,
                 "shape": [a.frames, a.height, a.width, a.channels], "pinned": a.pinned})
    print(json.dumps(head), flush=True)
    if a.channels == 12 and trainable + moving != a.expect_params:
        print("bench_gpu_torch: seed3d has %d parameters here, not %d" % (trainable + moving, a.expect_params),
              file=sys.stderr)
        return 1
    rc = 0
    shape = (a.frames, a.height, a.width, a.channels)
    for b in batches:
        for m in modes:
            if a.seconds and time.monotonic() - t_start > a.seconds:
                print(json.dumps({"precision": m, "batch": b, "skipped": "time limit"}), flush=True)
                continue
            try:
                print(json.dumps(measure(dev, m, b, shape, a.steps, a.warmup, a.pinned)), flush=True)
            except Exception as e:  # noqa: BLE001 - one failed configuration must not end the others
                rc = 1
                print(json.dumps({"precision": m, "batch": b, "error": "%s: %s" % (type(e).__name__, str(e)[:300])}),
                      flush=True)
            if dev.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(dev)
    return rc


if __name__ == "__main__":
    sys.exit(main())
