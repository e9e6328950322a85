"""tests/python/test_torch.py: tnrec.torch.TornetDataset under a PyTorch
DataLoader with num_workers=2 (forked workers): every sample equals the C
loader's (batches() with shuffle=False), each worker opened the shards
itself (in its own process, never the parent's handle), a handle the parent
opened before the fork stays the parent's, and a spawned-worker
DataLoader gives the same (the parent opening nothing).
Exits 77 when torch is not installed.

usage: test_torch.py TNREC_BINARY SCRATCH_DIR"""
import os

import numpy as np

from pycommon import args, check, finish

try:
    import torch
    import torch.utils.data
except ImportError:
    torch = None


def with_pid(sample):
    sample["pid"] = torch.tensor(os.getpid())
    return sample


def main():
    _, scratch, _ = args()
    if torch is None:
        print("test_torch: skipped: python3-torch is not installed")
        raise SystemExit(77)
    import tnrec
    from tnrec.torch import TornetDataset

    path = os.path.join(scratch, "float16")
    ref = {}
    for b in tnrec.open(path, frames=2).batches(6, shuffle=False, threads=2):
        for j, i in enumerate(b["index"]):
            ref[int(i)] = (b["x"][j], b["label"][j], b["weight"][j], b["category"][j])
    for ctx in ("fork", "spawn"):
        tds = TornetDataset(path, frames=2, layout="NCDHW", transform=with_pid)
        check(len(tds) == 24, "%s: len %d" % (ctx, len(tds)))
        if ctx == "fork":
            tds[0]                       # the parent opens first: forked workers must not use its handle
            parent_ds = tds._ds
        dl = torch.utils.data.DataLoader(tds, batch_size=4, shuffle=True, num_workers=2,
                                         multiprocessing_context=ctx, generator=torch.Generator().manual_seed(0))
        seen, pids = [], set()
        for b in dl:
            check(b["x"].shape == (len(b["index"]), 12, 2, 120, 240) and b["x"].dtype == torch.float32,
                  "%s: batch shape %s" % (ctx, tuple(b["x"].shape)))
            for j, i in enumerate(b["index"].tolist()):
                x, y, w, c = ref[i]
                check(np.array_equal(b["x"][j].numpy(), x.transpose(3, 0, 1, 2)), "%s: x of record %d" % (ctx, i))
                check(b["label"][j].item() == y and b["weight"][j].item() == w and b["category"][j].item() == c,
                      "%s: label/weight/category of record %d" % (ctx, i))
                seen.append(i)
            pids.update(b["pid"].tolist())
        check(sorted(seen) == list(range(24)), "%s: not every record once" % ctx)
        check(len(pids) == 2 and os.getpid() not in pids, "%s: samples read in processes %s" % (ctx, sorted(pids)))
        if ctx == "fork":
            check(tds._ds is parent_ds and tds._pid == os.getpid(), "fork: the parent's handle changed")
        else:
            check(tds._ds is None, "%s: the parent process opened the shards" % ctx)
    # in the parent the same object works, opening its own handle
    tds = TornetDataset(path, raw=True, physical=True)
    s = tds[3]
    check(torch.isnan(s["DBZ"]).any().item() and s["DBZ"].dtype == torch.float32, "raw=True physical sample")
    check(tds._pid == os.getpid(), "parent handle")
    finish("test_torch")


if __name__ == "__main__":
    main()
