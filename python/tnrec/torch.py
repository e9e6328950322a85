"""tnrec.torch: tnrec datasets as torch.utils.data.Dataset.

    from tnrec.torch import TornetDataset
    ds = TornetDataset("out/train", layout="NCDHW")
    dl = torch.utils.data.DataLoader(ds, batch_size=16, shuffle=True, num_workers=4)
    for b in dl:
        b["x"], b["label"], b["weight"]

Safe with DataLoader workers, forked or spawned: the shards are opened
lazily in each process (a change of process id opens them afresh), so no
worker reads through a file descriptor or a decoder of another process.
Torch is imported only by this module."""
import os

import numpy as np
import torch
import torch.utils.data

from . import Dataset, MASK_FIELD


class TornetDataset(torch.utils.data.Dataset):
    """Sample i as a dict of tensors: x (float32, the model's input as
    tnrec train builds it: the last `frames` frames, channels = each
    variable's sweeps in order, then the range-folded mask per sweep if
    mask=True; layout "NDHWC" (frames, azimuth, range, channels) or
    "NCDHW"), label (float32), weight (float32: class_weights by label),
    category (int64: 0 TOR, 1 NUL, 2 WRN, 3 unknown), index (int64).
    With raw=True it is instead tnrec's dict of every field (ds[i]).

    fields: the variables (default tnrec train's DBZ,VEL,KDP,RHOHV,ZDR,WIDTH);
    class_weights: "balanced" (N / (2 N_c), tnrec train's default), "none"
    or (w0, w1); physical: physical units with NaN for no data (raw=True
    only; the model trains on normalised values)."""

    def __init__(self, path, fields=None, frames=None, mask=False, layout="NDHWC", class_weights="balanced",
                 physical=False, raw=False, transform=None, nodata=None):
        if layout not in ("NDHWC", "NCDHW"):
            raise ValueError("layout must be 'NDHWC' or 'NCDHW'")
        if physical and not raw:
            raise ValueError("physical=True needs raw=True (x is built from normalised values)")
        self.path = os.fspath(path)
        self.layout, self.raw, self.transform = layout, bool(raw), transform
        probe = Dataset(self.path, fields=fields, frames=frames, mask=mask, nodata=nodata)
        self.variables = probe._variables()
        self._n = len(probe)
        if class_weights == "balanced":
            cw = probe.class_weights
            self.class_weights = (cw[0], cw[1])
        elif class_weights in (None, "none"):
            self.class_weights = (1.0, 1.0)
        else:
            self.class_weights = tuple(float(v) for v in class_weights)
        probe.close()
        sel = fields if raw else self.variables + ([MASK_FIELD] if mask else [])
        self._opts = dict(fields=sel, frames=frames, mask=mask, physical=physical, nodata=nodata)
        self.mask = bool(mask)
        self._ds, self._pid = None, None

    def _dataset(self):
        if self._ds is None or self._pid != os.getpid():
            # Opened here, in the process that reads (a DataLoader worker
            # after fork or spawn); a handle inherited from the parent is
            # dropped without being used or closed in this process.
            self._ds = Dataset(self.path, **self._opts)
            self._pid = os.getpid()
        return self._ds

    def __getstate__(self):
        st = dict(self.__dict__)
        st["_ds"], st["_pid"] = None, None
        return st

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        s = self._dataset()[int(i)]
        if self.raw:
            out = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in s.items()}
        else:
            parts = [s[v] for v in self.variables]
            if self.mask:
                parts.append((s[MASK_FIELD] != 0).astype(np.float32))
            x = np.concatenate(parts, axis=-1)
            if self.layout == "NCDHW":
                x = np.ascontiguousarray(x.transpose(3, 0, 1, 2))
            y = 1 if s["label"] else 0
            out = {"x": torch.from_numpy(x), "label": torch.tensor(float(y)),
                   "weight": torch.tensor(float(np.float32(self.class_weights[y]))),
                   "category": torch.tensor(["TOR", "NUL", "WRN"].index(s["category"])
                                            if s["category"] in ("TOR", "NUL", "WRN") else 3),
                   "index": torch.tensor(int(i))}
        return self.transform(out) if self.transform else out
