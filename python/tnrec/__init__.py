"""tnrec: read tnrec record shards and datasets from Python.

    import tnrec
    ds = tnrec.open("out/train")            # a dataset directory or one .tnr shard
    len(ds), ds.schema, ds.manifest, ds.class_weights
    s = ds[0]                                # dict of numpy arrays + label, category, ef, event_id, time, key
    for b in ds.batches(16, shuffle=True, seed=1, threads=2):
        b["x"], b["label"], b["weight"]      # float32 (n, frames, azimuth, range, channels)

Every byte is decoded by libtnrec (the C library of the `tnrec` tool),
so the values are the ones `tnrec dump --npy` writes and `tnrec train`
trains on. Errors are raised as TnrecError with libtnrec's message.
`tnrec.torch` holds a torch.utils.data.Dataset."""
import builtins
import ctypes
import json
import math
import os
import sys
import threading
import weakref

import numpy as np

from . import _lib

__all__ = ["open", "Dataset", "Loader", "TnrecError", "CATEGORIES", "__version__"]
__version__ = "0.1.0"
library_version = _lib.version
library_path = _lib.path

CATEGORIES = ("TOR", "NUL", "WRN", "UNKNOWN")
META_KEYS = ("label", "category", "ef", "event_id", "time", "key")
DEFAULT_VARIABLES = ("DBZ", "VEL", "KDP", "RHOHV", "ZDR", "WIDTH")  # tnrec train's default
MASK_FIELD = "range_folded_mask"

_NP_DTYPE = {1: np.uint8, 2: np.int8, 3: np.uint16, 4: np.int16, 5: np.uint32, 6: np.int32,
             7: np.uint64, 8: np.int64, 9: np.float16, 10: np.float32, 11: np.float64}
_DTYPE_NAME = {1: "uint8", 2: "int8", 3: "uint16", 4: "int16", 5: "uint32", 6: "int32", 7: "uint64",
               8: "int64", 9: "float16", 10: "float32", 11: "float64"}
_DTYPE_CODE = {v: k for k, v in _DTYPE_NAME.items()}
_ENC_NAME = {0: "raw", 1: "float32", 2: "float16", 3: "uint8"}


class TnrecError(Exception):
    """A libtnrec failure: .code (the tnrec_err number), .name ("corrupt",
    "truncated", ...), and the library's message (it names the file and,
    for a bad record, the shard and the record's index in it)."""

    def __init__(self, code, message):
        self.code = int(code)
        self.name = _lib.lib.tnrec_err_name(self.code).decode()
        self.message = message
        super().__init__(message)


def _check(rc):
    if rc != 0:
        msg = (_lib.lib.tnrec_error_last() or b"").decode("utf-8", "replace")
        raise TnrecError(rc, msg or "tnrec error %d" % rc)


def _field_info(f):
    shape = tuple(int(f.shape[k]) for k in range(f.ndim))
    d = {"name": f.name.decode(), "encoding": _ENC_NAME.get(f.encoding, str(f.encoding)),
         "dtype": _DTYPE_NAME.get(f.dtype, str(f.dtype)), "shape": shape,
         "dims": tuple(f.dims[k].value.decode() for k in range(f.ndim)), "shuffle": bool(f.shuffle)}
    if f.encoding != _lib.ENC_RAW:
        d.update(offset=float(f.offset), scale=float(f.scale), nodata=float(f.nodata))
        if f.encoding == 3:
            d.update(qmin=float(f.qmin), qmax=float(f.qmax))
    return d


class _Decoder:
    """One libtnrec decoder (one per thread: ctypes releases the GIL)."""

    def __init__(self, nodata=None):
        h = ctypes.c_void_p()
        _check(_lib.lib.tnrec_decoder_create(ctypes.byref(h)))
        self.h = h
        if nodata is not None:
            _lib.lib.tnrec_decoder_set_nodata(h, ctypes.byref(ctypes.c_float(nodata)))

    def __del__(self):
        if getattr(self, "h", None) and _lib is not None and _lib.lib is not None:
            _lib.lib.tnrec_decoder_free(self.h)
            self.h = None


class Dataset:
    """An open dataset directory or shard. Use tnrec.open()."""

    def __init__(self, path, fields=None, frames=None, mask=False, physical=False, nodata=None):
        self.path = os.fspath(path)
        self.physical = bool(physical)
        if self.physical and not _lib.has_physical:
            raise TnrecError(1, "libtnrec at '%s' cannot decode physical units (tnrec_decoder_field_physical)\n"
                                "hint: install a newer tnrec" % _lib.path)
        if nodata is not None:
            nodata = float(nodata)
            if not math.isfinite(nodata):
                raise ValueError("nodata must be a finite number or None")
            if not _lib.has_nodata:
                raise TnrecError(1, "libtnrec at '%s' cannot set the no-data value (tnrec_decoder_set_nodata)\n"
                                    "hint: install a newer tnrec" % _lib.path)
        self.nodata = nodata
        self._h = None
        self._pid = None
        self._local = threading.local()
        self._loaders = weakref.WeakSet()   # they borrow the handle: closed first
        self._open()
        sc = self._schema_c()
        self.schema = [_field_info(sc.fields[k]) for k in range(sc.nfields)]
        self._by_name = {f["name"]: k for k, f in enumerate(self.schema)}
        if frames is not None:
            frames = int(frames)
            if frames < 1:
                raise ValueError("frames must be >= 1")
        self.frames = frames
        self.mask = bool(mask)
        if fields is None:
            self.fields = None
            names = [f["name"] for f in self.schema]
        else:
            self.fields = [fields] if isinstance(fields, str) else list(fields)
            names = list(self.fields)
            if self.mask and MASK_FIELD not in names:
                names.append(MASK_FIELD)
        for n in names:
            if n not in self._by_name:
                raise TnrecError(7, "dataset '%s' has no field '%s'\nhint: choose among %s"
                                 % (self.path, n, ", ".join(self._by_name)))
        self._sample_fields = [self._by_name[n] for n in names]
        self._manifest = None

    # ---- handles, reopened in every process (fork-safe) ----
    def _open(self):
        h = ctypes.c_void_p()
        _check(_lib.lib.tnrec_dataset_open(ctypes.byref(h), self.path.encode()))
        self._h, self._pid = h, os.getpid()
        self._local = threading.local()

    def _handle(self):
        if self._h is None:
            raise ValueError("dataset '%s' is closed" % self.path)
        if self._pid != os.getpid():
            # A forked child: the parent's handle (and its file descriptors)
            # is left alone, and this process opens the shards afresh.
            self._h = None
            self._open()
        return self._h

    def _decoder(self):
        d = getattr(self._local, "dec", None)
        if d is None:
            d = self._local.dec = _Decoder(self.nodata)
        return d

    def _schema_c(self):
        return _lib.lib.tnrec_dataset_schema(self._handle()).contents

    def close(self):
        """Closes the shards (only in the process that opened them)."""
        if self._h is not None and self._pid == os.getpid():
            for ld in list(self._loaders):
                ld.close()
            self._local = threading.local()
            _lib.lib.tnrec_dataset_close(self._h)
        self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __getstate__(self):  # pickling (spawned workers) carries the options, not the handle
        st = dict(self.__dict__)
        st["_h"], st["_pid"], st["_local"], st["_loaders"] = None, None, None, None
        return st

    def __setstate__(self, st):
        self.__dict__.update(st)
        self._loaders = weakref.WeakSet()
        self._open()

    # ---- sizes, manifest ----
    def __len__(self):
        return int(_lib.lib.tnrec_dataset_count(self._handle()))

    @property
    def manifest(self):
        """manifest.json parsed (None for a bare shard)."""
        if self._manifest is None and os.path.isdir(self.path):
            with builtins.open(os.path.join(self.path, "manifest.json"), "rb") as f:
                self._manifest = json.load(f)
        return self._manifest

    @property
    def class_weights(self):
        """Balanced class weights N / (2 N_c) by label, from the shards' indexes."""
        h = self._handle()
        return {c: float(_lib.lib.tnrec_dataset_class_weight(h, c)) for c in (0, 1)}

    def _locate(self, i):
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("record %d out of range (%d records)" % (i, n))
        s, loc = ctypes.c_size_t(), ctypes.c_uint64()
        h = self._handle()
        _check(_lib.lib.tnrec_dataset_locate(h, i, ctypes.byref(s), ctypes.byref(loc)))
        return _lib.lib.tnrec_dataset_shard(h, s.value), loc.value

    def meta(self, i):
        """The index entry of record i (no decompression): label, category,
        ef, event_id, episode_id, time (Unix seconds), key, shard."""
        sh, loc = self._locate(int(i))
        m = _lib.lib.tnrec_shard_info(sh, loc).contents.meta
        return {"label": int(m.label), "category": CATEGORIES[m.category] if 0 <= m.category < 4 else str(m.category),
                "ef": int(m.ef), "event_id": int(m.event_id), "episode_id": int(m.episode_id),
                "time": int(m.time), "key": m.key.decode("utf-8", "replace"),
                "shard": _lib.lib.tnrec_shard_path(sh).decode(), "shard_index": int(loc)}

    # ---- one record ----
    def __getitem__(self, i):
        """Record i as a dict: each selected field as a numpy array, then
        label, category, ef, event_id, time and key from the index. Float
        encodings give float32 normalised values (no data = the field's
        nodata), or with physical=True physical units (no data = NaN); raw
        fields their own dtype. A field named like one of the metadata
        keys (TorNet's per-frame `time`) is given as '<name>_field'."""
        if not isinstance(i, (int, np.integer)):
            raise TypeError("record index must be an integer")
        sh, loc = self._locate(int(i))
        dec = self._decoder().h
        lib = _lib.lib
        _check(lib.tnrec_decoder_load(dec, sh, loc))
        out = {}
        for k in self._sample_fields:
            f = self.schema[k]
            raw = f["encoding"] == "raw"
            arr = np.empty(f["shape"], dtype=_NP_DTYPE[_lib.DTYPE_F32] if not raw else np.dtype(f["dtype"]))
            if self.physical and not raw:
                _check(lib.tnrec_decoder_field_physical(dec, k, arr.ctypes.data, arr.nbytes))
            else:
                dt = _lib.DTYPE_F32 if not raw else _DTYPE_CODE[f["dtype"]]
                _check(lib.tnrec_decoder_field(dec, k, dt, arr.ctypes.data, arr.nbytes))
            if self.frames is not None and f["dims"][:1] == ("time",) and f["shape"][0] >= self.frames:
                arr = arr[f["shape"][0] - self.frames:]
            name = f["name"]
            out[name + "_field" if name in META_KEYS else name] = arr
        m = lib.tnrec_shard_info(sh, loc).contents.meta
        out["label"] = int(m.label)
        out["category"] = CATEGORIES[m.category] if 0 <= m.category < 4 else str(m.category)
        out["ef"] = int(m.ef)
        out["event_id"] = int(m.event_id)
        out["time"] = int(m.time)
        out["key"] = m.key.decode("utf-8", "replace")
        return out

    # ---- batches from the C loader ----
    def _variables(self):
        if self.fields is not None:
            return [n for n in self.fields if n != MASK_FIELD]
        names = [f["name"] for f in self.schema]
        if all(v in names for v in DEFAULT_VARIABLES):
            return list(DEFAULT_VARIABLES)
        return [f["name"] for f in self.schema if f["encoding"] != "raw" and len(f["shape"]) == 4]

    def loader(self, batch_size, shuffle=True, seed=0, threads=2, drop_last=False, layout="NDHWC",
               class_weights="balanced", prefetch=2, copy=True, range_limits=False):
        """A C loader (tnrec_loader, the code `tnrec train` uses) kept for
        several epochs: `for b in ld.epoch(e)`; its threads and buffers are
        made once. Close it (or use `with`) when done. See batches()."""
        if layout not in ("NDHWC", "NCDHW"):
            raise ValueError("layout must be 'NDHWC' or 'NCDHW'")
        if self.physical:
            raise ValueError("batches give normalised values (what the model trains on); open without physical=True")
        if class_weights == "balanced":
            cw = self.class_weights
            w = (cw[0], cw[1])
            if w[0] <= 0 or w[1] <= 0:
                raise TnrecError(1, "dataset '%s' lacks one of the classes, so balanced class weights are undefined\n"
                                    "hint: class_weights='none' or (w0, w1)" % self.path)
        elif class_weights in (None, "none"):
            w = (1.0, 1.0)
        else:
            w = tuple(float(v) for v in class_weights)
        if range_limits and not _lib.has_range_limits:
            raise TnrecError(1, "libtnrec at '%s' cannot hand out range_limits with batches\n"
                                "hint: install a newer tnrec" % _lib.path)
        return Loader(self, int(batch_size), bool(shuffle), int(seed), int(threads), bool(drop_last), layout, w,
                      int(prefetch), bool(copy), bool(range_limits))

    def batches(self, batch_size, shuffle=True, seed=0, threads=2, drop_last=False, layout="NDHWC",
                epoch=0, class_weights="balanced", prefetch=2, copy=True, range_limits=False):
        """Iterates over one epoch of the C loader's batches (tnrec_loader,
        the code `tnrec train` uses): dicts with x (float32, normalised,
        (n, frames, azimuth, range, channels) for NDHWC or (n, channels,
        frames, azimuth, range) for NCDHW), label, weight (float32), category
        (int32: 0 TOR, 1 NUL, 2 WRN, 3 unknown), index (uint64, the records),
        step. Channels: each field's sweeps in field order, then the
        range-folded mask per sweep if mask=True. The order of epoch
        `epoch` with `seed` is tnrec train's. class_weights: "balanced"
        (tnrec train's default), "none" or (w0, w1). Batches stay valid
        however long they are kept: the loader hands each decoded NDHWC
        input array over (tnrec_loader_swap, no copy) and decodes later
        batches into arrays given back once nothing refers to them (NCDHW
        is transposed into a new array; the small arrays are copied).
        copy=False yields views of the loader's buffer instead, valid only
        until the next batch. range_limits=True adds range_limits (float32
        (n, 2), metres: each chip's range window, from which CoordConv
        models such as tornet-cnn make their coordinates)."""
        ld = self.loader(batch_size, shuffle=shuffle, seed=seed, threads=threads, drop_last=drop_last,
                         layout=layout, class_weights=class_weights, prefetch=prefetch, copy=copy,
                         range_limits=range_limits)
        return ld.epoch(epoch, close=True)


class Loader:
    """tnrec_loader for a Dataset; made by Dataset.loader()."""

    def __init__(self, ds, batch, shuffle, seed, threads, drop_last, layout, w, prefetch, copy, range_limits=False):
        if batch < 1 or threads < 1:
            raise ValueError("batch_size and threads must be >= 1")
        self.ds, self.batch, self.drop_last, self.layout, self.copy = ds, batch, drop_last, layout, copy
        self._h = None
        self._vars = ",".join(ds._variables()).encode()
        cfg = _lib.LoaderConfig(variables=self._vars, frames=ds.frames or 0, mask=int(ds.mask), batch=batch,
                                threads=threads, prefetch=prefetch, shuffle=int(shuffle), seed=seed, rank=0, world=1,
                                has_nodata=int(ds.nodata is not None),
                                nodata=0.0 if ds.nodata is None else ds.nodata, range_limits=int(range_limits))
        self.range_limits = range_limits
        cfg.class_weight[0], cfg.class_weight[1] = w
        self._dsh = ds._handle()      # borrowed by the loader; self.ds keeps it open
        h = ctypes.c_void_p()
        _check(_lib.lib.tnrec_loader_create(ctypes.byref(h), self._dsh, ctypes.byref(cfg)))
        self._h, self._pid = h, os.getpid()
        ds._loaders.add(self)
        s = _lib.lib.tnrec_loader_shape(h)
        self.shape = (s.frames, s.height, s.width, s.channels)
        self.steps = int(_lib.lib.tnrec_loader_steps(h))
        self._pool = []               # output arrays, reused when only the pool refers to them
        self._gen = 0
        # Zero-copy inputs (NDHWC): tnrec_loader_swap hands over the decoded
        # array and takes a free one of ours in its place.
        self._swap = copy and layout == "NDHWC" and _lib.has_swap
        if self._swap:
            self._xfloats = int(_lib.lib.tnrec_loader_batch_floats(h))
            self._xpool = []          # ours, free once nothing else refers to them
            self._given = {}          # address -> array the loader holds now

    def __len__(self):
        return len(self.ds) // self.batch if self.drop_last else self.steps

    def _out(self, shape, dtype):
        for a in self._pool:
            # the pool's list and getrefcount's argument: nobody else holds it
            if a.shape == shape and a.dtype == dtype and sys.getrefcount(a) == 3:
                return a
        a = np.empty(shape, dtype)
        if len(self._pool) < 64:
            self._pool.append(a)
        return a

    def epoch(self, epoch=0, close=False):
        """Generator over the batches of epoch `epoch` (restarts the loader;
        a generator of an earlier epoch stops). close=True frees the loader
        at the end."""
        if self._h is None:
            raise ValueError("loader is closed")
        if self._pid != os.getpid():
            raise RuntimeError("a loader cannot be used in a forked process; make one there")
        _check(_lib.lib.tnrec_loader_start(self._h, int(epoch), 0))
        self._gen += 1
        return self._run(self._gen, close)

    def _run(self, gen, close):
        try:
            while self._h is not None and gen == self._gen:
                b = self._next()
                if b is None:
                    return
                yield b
                b = None              # so that its arrays can be reused once the caller drops them
        finally:
            if close:
                self.close()

    def _next(self):
        bp = ctypes.POINTER(_lib.Batch)()
        _check(_lib.lib.tnrec_loader_next(self._h, ctypes.byref(bp)))
        if not bp:
            return None
        b = bp.contents
        n = b.n
        if self.drop_last and b.global_n < self.batch:
            return None
        x = np.ctypeslib.as_array(b.x, shape=(n,) + self.shape)
        if self.layout == "NCDHW":
            x = x.transpose(0, 4, 1, 2, 3)
        out = {"x": x, "label": np.ctypeslib.as_array(b.label, shape=(n,)),
               "weight": np.ctypeslib.as_array(b.weight, shape=(n,)),
               "category": np.ctypeslib.as_array(b.category, shape=(n,)),
               "index": np.ctypeslib.as_array(b.index, shape=(n,))}
        if self.range_limits:
            out["range_limits"] = np.ctypeslib.as_array(b.range_limits, shape=(n, 2))
        if self._swap:
            out["x"] = self._take_x(n)
        if self.copy:
            for k, v in out.items():
                if k == "x" and self._swap:
                    continue
                dst = self._out(v.shape, v.dtype)
                np.copyto(dst, v)
                out[k] = dst
        out["step"] = int(b.step)
        return out

    # The arrays handed to the loader start on a 64-byte boundary, where its
    # streaming stores write whole cache lines (numpy's large arrays start 16
    # bytes past a page). The pool keeps the allocations themselves, so that
    # the batches handed out, views of them, count in their reference counts.
    _ALIGN = 64

    def _x_start(self, raw):
        return (-raw.ctypes.data % self._ALIGN) // 4     # in floats

    def _x_alloc(self):
        return np.empty(self._xfloats + self._ALIGN // 4, np.float32)

    def _take_x(self, n):
        give = None
        for k in range(len(self._xpool)):
            if sys.getrefcount(self._xpool[k]) == 2:   # the pool's list and the argument
                give = self._xpool.pop(k)
                break
        if give is None:
            give = self._x_alloc()
        addr = give.ctypes.data + 4 * self._x_start(give)
        got = ctypes.c_void_p()
        _check(_lib.lib.tnrec_loader_swap(self._h, addr, ctypes.byref(got)))
        self._given[addr] = give
        arr = self._given.pop(got.value, None)
        if arr is None:
            # one of the loader's own arrays (the first batch of each slot):
            # copied once, then released; its slot decodes into ours from now on
            arr = self._x_alloc()
            ctypes.memmove(arr.ctypes.data + 4 * self._x_start(arr), got.value, 4 * self._xfloats)
            _lib.libc.free(got.value)
        self._xpool.append(arr)
        o, m = self._x_start(arr), n * int(np.prod(self.shape))
        return arr[o:o + m].reshape((n,) + self.shape)

    def close(self):
        if getattr(self, "_h", None) is not None and self._pid == os.getpid():
            _lib.lib.tnrec_loader_free(self._h)
            self._given = {}              # the loader no longer holds them
        self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def open(path, fields=None, frames=None, mask=False, physical=False, nodata=None):  # noqa: A001 (tnrec.open)
    """Opens a dataset directory (shards + manifest.json, checked against
    each other) or a single .tnr shard.

    fields: names to decode (default: all fields for ds[i]; tnrec train's
    DBZ,VEL,KDP,RHOHV,ZDR,WIDTH for batches()). frames: keep the last N
    frames of each (time, ...) field. mask: add range_folded_mask (a
    field of ds[i], a channel per sweep in batches()). physical: ds[i]
    gives float fields in physical units with NaN for no data. nodata:
    the value no-data gates of normalised float fields take (default: the
    schema's, -3 from a default build), as `tnrec train --nodata X` feeds
    them (0 by default there; a checkpoint's config records its value)."""
    return Dataset(path, fields=fields, frames=frames, mask=mask, physical=physical, nodata=nodata)
