#!/usr/bin/python3
"""PyTorch (CPU) baseline for bench_train: the seed3d model, same shapes.

usage: bench_train_torch.py [--batch 8] [--steps 3] [--threads 2]
Prints one JSON object like bench_train's: median seconds per training
step (forward, weighted BCE, backward, Adam) and per inference batch,
and the median CPU seconds (all threads) of each."""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn


def seed3d(channels=12):
    layers, c = [], channels
    for i, (f, pool) in enumerate([(32, None), (32, (1, 2, 2)), (64, None), (64, (1, 2, 2)), (128, None), (128, (2, 2, 2))]):
        layers += [nn.Conv3d(c, f, 3, padding=1), nn.BatchNorm3d(f, momentum=0.01, eps=1e-3), nn.LeakyReLU(0.1)]
        c = f
        if pool:
            layers += [nn.MaxPool3d(pool), nn.Dropout3d(0.1)]
    layers += [nn.AdaptiveMaxPool3d(1), nn.Flatten(), nn.Linear(128, 128), nn.LeakyReLU(0.1), nn.Dropout(0.1), nn.Linear(128, 1)]
    return nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = seed3d()
    nparams = sum(p.numel() for p in model.parameters()) + sum(b.numel() for n, b in model.named_buffers() if "running" in n)
    x = torch.rand(a.batch, 12, 4, 120, 240) * 2 - 1
    y = (torch.arange(a.batch) % 2).float()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-7)
    loss_fn = nn.BCEWithLogitsLoss()
    train, infer, train_cpu, infer_cpu = [], [], [], []
    for k in range(a.steps + 1):
        model.train()
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad()
        loss = loss_fn(model(x).squeeze(1), y)
        loss.backward()
        opt.step()
        t1, c1 = time.perf_counter(), time.process_time()
        model.eval()
        with torch.no_grad():
            model(x)
        t2, c2 = time.perf_counter(), time.process_time()
        if k:
            train.append(t1 - t0)
            infer.append(t2 - t1)
            train_cpu.append(c1 - c0)
            infer_cpu.append(c2 - c1)
    mt, mi = statistics.median(train), statistics.median(infer)
    print(json.dumps({"impl": "pytorch " + torch.__version__, "model": "seed3d", "params": nparams, "batch": a.batch,
                      "steps": a.steps, "threads": a.threads, "train_step_s": round(mt, 4),
                      "train_samples_per_s": round(a.batch / mt, 3), "infer_batch_s": round(mi, 4),
                      "infer_samples_per_s": round(a.batch / mi, 3),
                      "train_cpu_s": round(statistics.median(train_cpu), 4),
                      "infer_cpu_s": round(statistics.median(infer_cpu), 4)}))


if __name__ == "__main__":
    main()
