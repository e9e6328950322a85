#!/usr/bin/python3
"""A small PyTorch counterpart of `tnrec train` for the couplet experiment
(docs/train.md, "Why the couplet is not learned"): the same spec language
(c, k, p, g, d, o tokens), balanced class weights, Adam, batches from the
tnrec Python package, with one thing `tnrec train` cannot vary: the value
that no-data gates take in the input (tnrec's decoders give the field's
nodata, -3). Not a parity test (benchmarks/parity_torch.py is): PyTorch's
own initialisation, Adam and batch order.

usage: PYTHONPATH=python TNREC_LIBRARY=build/libtnrec.so \
       /usr/bin/python3 benchmarks/meso_torch.py TRAIN VAL [--variables VEL]
           [--model p122,c16,p122,c16,p222,c32,g,d16,o] [--fill -3] [--epochs 4]
           [--batch 8] [--lr 1e-3] [--seed 1] [--frames 4] [--bn-momentum 0.01]
           [--init torch|glorot] [--threads 2]

--fill X: no-data gates (value == -3 after decoding) set to X in every
variable (-3 leaves tnrec's input unchanged). --bn-momentum: PyTorch's
convention (0.01 is Keras's 0.99). Prints one line per epoch: training loss,
training ROC-AUC (of the epoch's batches, before each step, as tnrec train
reports it) and validation loss and ROC-AUC (eval mode)."""
import argparse
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tnrec


def roc_auc(s, y):
    s, y = np.asarray(s, np.float64), np.asarray(y)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    for v in np.unique(s):
        m = s == v
        if m.sum() > 1:
            ranks[m] = ranks[m].mean()
    n1 = int((y == 1).sum())
    n0 = len(y) - n1
    return (ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


def load(path, variables, frames, fill):
    ds = tnrec.open(path, fields=variables, frames=frames)
    xs, ys = [], []
    with ds.loader(16, shuffle=False, layout="NCDHW", class_weights="none") as ld:
        for b in ld.epoch(0):
            x = np.array(b["x"], np.float32)
            if fill != -3.0:
                x[x == -3.0] = fill
            xs.append(x)
            ys.append(np.array(b["label"], np.float32))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)), ds.class_weights


class GlobalMax(nn.Module):
    def forward(self, x):
        return x.amax(dim=(2, 3, 4))


def build(spec, cin, bn_momentum, init):
    layers, c = [], cin
    for tok in spec.split(","):
        k = tok[0]
        if k in "ck":
            n = int(tok[1:].split("/")[0])
            layers.append(nn.Conv3d(c, n, 3, padding=1))
            if k == "c":
                layers.append(nn.BatchNorm3d(n, eps=1e-3, momentum=bn_momentum))
            layers.append(nn.LeakyReLU(0.1))
            c = n
        elif k == "p":
            layers.append(nn.MaxPool3d(tuple(int(ch) for ch in tok[1:4])))
        elif k == "g":
            layers.append(GlobalMax())
        elif k == "d":
            n = int(tok[1:].split("/")[0])
            layers += [nn.Linear(c, n), nn.LeakyReLU(0.1)]
            c = n
        elif k == "o":
            layers.append(nn.Linear(c, 1))
        else:
            raise SystemExit("meso_torch: unknown layer '%s'" % tok)
    net = nn.Sequential(*layers)
    if init == "glorot":
        for m in net.modules():
            if isinstance(m, (nn.Conv3d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
    return net


def main():
    p = argparse.ArgumentParser()
    p.add_argument("train")
    p.add_argument("val")
    p.add_argument("--variables", default="DBZ,VEL,KDP,RHOHV,ZDR,WIDTH")
    p.add_argument("--model", default="p122,c16,p122,c16,p222,c32,g,d16,o")
    p.add_argument("--fill", type=float, default=-3.0)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--frames", type=int, default=4)
    p.add_argument("--bn-momentum", type=float, default=0.01)
    p.add_argument("--init", choices=("torch", "glorot"), default="torch")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    variables = a.variables.split(",")
    xt, yt, cw = load(a.train, variables, a.frames, a.fill)
    xv, yv, _ = load(a.val, variables, a.frames, a.fill)
    net = build(a.model, xt.shape[1], a.bn_momentum, a.init)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr, eps=1e-7)
    wt = torch.tensor([cw[0], cw[1]], dtype=torch.float32)
    g = torch.Generator().manual_seed(a.seed)
    print("meso_torch: train %s val %s input %s fill %g model %s init %s lr %g batch %d"
          % (tuple(xt.shape), tuple(xv.shape), variables, a.fill, a.model, a.init, a.lr, a.batch), flush=True)
    for ep in range(1, a.epochs + 1):
        t0 = time.time()
        net.train()
        perm = torch.randperm(len(yt), generator=g)
        scores, labels, losses = [], [], []
        for i in range(0, len(perm), a.batch):
            idx = perm[i:i + a.batch]
            x, y = xt[idx], yt[idx]
            logit = net(x).squeeze(1)
            loss = (F.binary_cross_entropy_with_logits(logit, y, reduction="none") * wt[y.long()]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            scores += logit.detach().tolist()
            labels += y.tolist()
            losses.append(loss.item() * len(idx))
        net.eval()
        with torch.no_grad():
            lv = torch.cat([net(xv[i:i + 16]).squeeze(1) for i in range(0, len(yv), 16)])
            vloss = (F.binary_cross_entropy_with_logits(lv, yv, reduction="none") * wt[yv.long()]).mean().item()
        print("epoch %d  loss %.4f  roc_auc %.4f  val_loss %.4f  val_roc_auc %.4f  %.1f s"
              % (ep, sum(losses) / len(yt), roc_auc(scores, np.array(labels)), vloss,
                 roc_auc(lv.numpy(), yv.numpy()), time.time() - t0), flush=True)


if __name__ == "__main__":
    main()
