#!/usr/bin/python3
"""Is the synthetic tornado signature learnable, and not trivially?

Trains a small 3D CNN (PyTorch, CPU) on a `tnrec synth` archive and reports
the held-out ROC-AUC, next to the AUC of a hand-made feature (the largest
azimuthal gate-to-gate velocity difference of the last frame), which shows
how far a single obvious cue gets.

usage: synth_learnability.py ROOT [--nontor-per-tor 3] [--epochs 8] [--threads 2]

All TOR samples of ROOT and a random subset of the others (WRN and NUL in
their own proportion) are used; 70% train, 30% test, split by sample.
Inputs as in the MIT baseline: 6 moments x 2 sweeps, x -> (x - mid) / half
range, NaN and MissingDataFlag gates -> -3.
"""
import argparse, csv, os, sys, time

import numpy as np
import netCDF4
import torch
import torch.nn as nn
from sklearn.metrics import roc_auc_score

LIMS = {"DBZ": (-20, 60), "VEL": (-60, 60), "KDP": (-2, 5), "RHOHV": (0.2, 1.04), "ZDR": (-1, 8), "WIDTH": (0, 9)}


def load(path):
    d = netCDF4.Dataset(path)
    d.set_auto_mask(False)
    chans = []
    for v, (lo, hi) in LIMS.items():
        a = d[v][:].astype(np.float32)  # time, az, range, sweep
        a[a == d.MissingDataFlag] = np.nan
        a = (a - (lo + hi) / 2) / ((hi - lo) / 2)
        a = np.nan_to_num(a, nan=-3.0)
        chans.append(np.moveaxis(a, 3, 0))  # sweep, time, az, range
    d.close()
    return np.concatenate(chans, 0).astype(np.float16)  # 12, 4, 120, 240


def shear_feature(x):
    vel = x[2, -1].astype(np.float32) * 60.0  # VEL, sweep 0, last frame (m/s)
    ok = x[2, -1] > -2.9
    dv = np.abs(np.diff(vel, axis=0))
    dv[~(ok[1:] & ok[:-1])] = 0
    return float(dv.max())


class Net(nn.Module):
    def __init__(self):
        super().__init__()

        def block(i, o, stride):
            return nn.Sequential(nn.Conv3d(i, o, 3, stride=stride, padding=1), nn.BatchNorm3d(o), nn.LeakyReLU(0.1))

        self.f = nn.Sequential(block(12, 16, (1, 2, 2)), block(16, 32, (1, 2, 2)), block(32, 48, (2, 2, 2)),
                               block(48, 64, (1, 1, 1)))
        self.head = nn.Linear(64, 1)

    def forward(self, x):
        h = self.f(x)
        return self.head(torch.amax(h, dim=(2, 3, 4))).squeeze(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--nontor-per-tor", type=float, default=3.0)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    rows = list(csv.DictReader(open(os.path.join(a.root, "catalog.csv"))))
    tor = [r for r in rows if r["category"] == "TOR"]
    other = [r for r in rows if r["category"] != "TOR"]
    k = min(len(other), int(a.nontor_per_tor * len(tor)))
    pick = tor + [other[i] for i in rng.choice(len(other), k, replace=False)]
    rng.shuffle(pick)
    t0 = time.time()
    X = np.stack([load(os.path.join(a.root, r["filename"])) for r in pick])
    y = np.array([r["category"] == "TOR" for r in pick], dtype=np.float32)
    print(f"loaded {len(pick)} samples ({int(y.sum())} TOR) in {time.time() - t0:.0f} s", flush=True)
    ntr = int(0.7 * len(pick))
    Xtr, ytr, Xte, yte = X[:ntr], y[:ntr], X[ntr:], y[ntr:]
    feat = np.array([shear_feature(x) for x in Xte])
    print(f"hand-made max-shear feature: test ROC-AUC {roc_auc_score(yte, feat):.3f}", flush=True)

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    posw = torch.tensor((1 - ytr.mean()) / ytr.mean())
    lossf = nn.BCEWithLogitsLoss(pos_weight=posw)
    best = 0.0
    for ep in range(a.epochs):
        net.train()
        perm = rng.permutation(ntr)
        t0 = time.time()
        for b in range(0, ntr, 16):
            idx = perm[b:b + 16]
            xb = torch.from_numpy(Xtr[idx].astype(np.float32))
            # random flips keep the model from memorising positions
            if rng.random() < 0.5:
                xb = torch.flip(xb, dims=[4])
            loss = lossf(net(xb), torch.from_numpy(ytr[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            s = np.concatenate([net(torch.from_numpy(Xte[b:b + 32].astype(np.float32))).numpy()
                                for b in range(0, len(Xte), 32)])
        auc = roc_auc_score(yte, s)
        best = max(best, auc)
        print(f"epoch {ep + 1}: loss {loss.item():.3f}  test ROC-AUC {auc:.3f}  ({time.time() - t0:.0f} s)", flush=True)
    print(f"best test ROC-AUC {best:.3f} (train {ntr}, test {len(yte)} with {int(yte.sum())} TOR)")


if __name__ == "__main__":
    sys.exit(main())
