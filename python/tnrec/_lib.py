"""tnrec._lib: finds libtnrec and declares the part of its C API the
package uses (include/tnrec/records.h and train.h), through ctypes.

The library is looked up, in order: the file named by the environment
variable TNREC_LIBRARY; a libtnrec.so* installed beside this package;
the libdir of pkg-config's `tnrec` package; the system loader
(libtnrec.so.0, then libtnrec.so)."""
import ctypes
import glob
import os
import subprocess

c_int, c_int32, c_uint32, c_uint64, c_int64 = ctypes.c_int, ctypes.c_int32, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int64
c_float, c_double, c_char_p, c_void_p, c_size_t = ctypes.c_float, ctypes.c_double, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t

NAME_MAX = 32
MAX_DIMS = 4
MAX_FIELDS = 32
KEY_MAX = 256

DTYPE_U8, DTYPE_F16, DTYPE_F32 = 1, 9, 10
ENC_RAW = 0


class Field(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * NAME_MAX), ("encoding", c_int), ("dtype", c_int), ("ndim", c_uint32),
                ("shape", c_uint32 * MAX_DIMS), ("dims", (ctypes.c_char * NAME_MAX) * MAX_DIMS),
                ("shuffle", c_uint32), ("offset", c_float), ("scale", c_float), ("nodata", c_float),
                ("qmin", c_float), ("qmax", c_float)]


class Schema(ctypes.Structure):
    _fields_ = [("nfields", c_uint32), ("fields", Field * MAX_FIELDS)]


class RecordMeta(ctypes.Structure):
    _fields_ = [("label", c_int32), ("category", c_int32), ("ef", c_int32), ("event_id", c_int64),
                ("episode_id", c_int64), ("time", c_int64), ("key", ctypes.c_char * KEY_MAX)]


class RecordInfo(ctypes.Structure):
    _fields_ = [("meta", RecordMeta), ("offset", c_uint64), ("size", c_uint64), ("raw_size", c_uint64),
                ("checksum", c_uint64)]


class InputShape(ctypes.Structure):
    _fields_ = [("frames", c_int), ("height", c_int), ("width", c_int), ("channels", c_int)]


class LoaderConfig(ctypes.Structure):
    _fields_ = [("variables", c_char_p), ("frames", c_int), ("mask", c_int), ("batch", c_int), ("threads", c_int),
                ("prefetch", c_int), ("shuffle", c_int), ("seed", c_uint64), ("rank", c_int), ("world", c_int),
                ("class_weight", c_float * 2), ("has_nodata", c_int), ("nodata", c_float),
                ("range_limits", c_int)]


class Batch(ctypes.Structure):
    _fields_ = [("n", c_int), ("global_n", c_int), ("global_first", c_int), ("step", c_uint64),
                ("x", ctypes.POINTER(c_float)), ("label", ctypes.POINTER(c_float)),
                ("weight", ctypes.POINTER(c_float)), ("category", ctypes.POINTER(c_int32)),
                ("index", ctypes.POINTER(c_uint64)), ("range_limits", ctypes.POINTER(c_float))]


def _candidates():
    env = os.environ.get("TNREC_LIBRARY")
    if env:
        yield env, True
        return
    here = os.path.dirname(os.path.abspath(__file__))
    for p in sorted(glob.glob(os.path.join(here, "libtnrec.so*"))):
        yield p, False
    try:
        r = subprocess.run(["pkg-config", "--variable=libdir", "tnrec"], capture_output=True, text=True, timeout=10)
        libdir = r.stdout.strip() if r.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        libdir = ""
    if libdir:
        for name in ("libtnrec.so.0", "libtnrec.so"):
            yield os.path.join(libdir, name), False
    yield "libtnrec.so.0", False
    yield "libtnrec.so", False


def _load():
    tried = []
    for path, explicit in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
            if explicit:
                break
    raise ImportError("cannot load libtnrec; tried: " + "; ".join(tried) +
                      "\nhint: install tnrec (cmake --install build), or set TNREC_LIBRARY to the path of libtnrec.so")


lib, path = _load()


def _decl(name, restype, *argtypes, optional=False):
    fn = getattr(lib, name, None)
    if fn is None:
        if optional:
            return
        raise ImportError("libtnrec at '%s' lacks %s\nhint: it is older than this package; install a newer tnrec"
                          % (path, name))
    fn.restype = restype
    fn.argtypes = list(argtypes)


P = ctypes.POINTER
_decl("tnrec_version", c_char_p)
_decl("tnrec_error_last", c_char_p)
_decl("tnrec_err_name", c_char_p, c_int)
_decl("tnrec_error_clear", None)
_decl("tnrec_dataset_open", c_int, P(c_void_p), c_char_p)
_decl("tnrec_dataset_close", None, c_void_p)
_decl("tnrec_dataset_count", c_uint64, c_void_p)
_decl("tnrec_dataset_schema", P(Schema), c_void_p)
_decl("tnrec_dataset_locate", c_int, c_void_p, c_uint64, P(c_size_t), P(c_uint64))
_decl("tnrec_dataset_shard", c_void_p, c_void_p, c_size_t)
_decl("tnrec_dataset_shard_count", c_size_t, c_void_p)
_decl("tnrec_dataset_class_weight", c_double, c_void_p, c_int)
_decl("tnrec_shard_info", P(RecordInfo), c_void_p, c_uint64)
_decl("tnrec_shard_path", c_char_p, c_void_p)
_decl("tnrec_decoder_create", c_int, P(c_void_p))
_decl("tnrec_decoder_free", None, c_void_p)
_decl("tnrec_decoder_load", c_int, c_void_p, c_void_p, c_uint64)
_decl("tnrec_decoder_field", c_int, c_void_p, c_uint32, c_int, c_void_p, c_size_t)
_decl("tnrec_decoder_field_physical", c_int, c_void_p, c_uint32, c_void_p, c_size_t, optional=True)
_decl("tnrec_decoder_set_nodata", None, c_void_p, P(c_float), optional=True)
_decl("tnrec_loader_create", c_int, P(c_void_p), c_void_p, P(LoaderConfig))
_decl("tnrec_loader_free", None, c_void_p)
_decl("tnrec_loader_shape", InputShape, c_void_p)
_decl("tnrec_loader_steps", c_uint64, c_void_p)
_decl("tnrec_loader_start", c_int, c_void_p, c_uint64, c_uint64)
_decl("tnrec_loader_next", c_int, c_void_p, P(P(Batch)))
_decl("tnrec_loader_batch_floats", c_size_t, c_void_p, optional=True)
_decl("tnrec_loader_swap", c_int, c_void_p, c_void_p, P(c_void_p), optional=True)

has_physical = hasattr(lib, "tnrec_decoder_field_physical")
has_nodata = hasattr(lib, "tnrec_decoder_set_nodata")
has_swap = hasattr(lib, "tnrec_loader_swap") and hasattr(lib, "tnrec_loader_batch_floats")
# tnrec_loader_config.range_limits and tnrec_batch.range_limits came with it
has_range_limits = hasattr(lib, "tnrec_net_predict_at")
libc = ctypes.CDLL(None)
libc.free.restype = None
libc.free.argtypes = [c_void_p]
version = lib.tnrec_version().decode()
