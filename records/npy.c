/* records/npy.c: NumPy .npy output (format version 1.0).
 *
 * Layout: "\x93NUMPY", major 1, minor 0, a little-endian u16 header length,
 * then an ASCII Python dict literal {'descr': ..., 'fortran_order': False,
 * 'shape': (...), } padded with spaces and ended by '\n' so that the data
 * starts at a multiple of 64 bytes, then the elements in C order,
 * little-endian. The file goes through the atomic writer: it appears under
 * its name complete or not at all.
 *
 * Deliberately not here: reading .npy, Fortran order, structured dtypes,
 * format 2.0 (a header over 65535 bytes cannot happen with at most
 * TNREC_NPY_MAX_DIMS dimensions). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "tnrec/records.h"

/* NumPy itself allows 32 (64 since NumPy 2) dimensions. */
#define TNREC_NPY_MAX_DIMS 32
#define NPY_PREAMBLE 10 /* magic (6) + version (2) + header length (2) */
#define NPY_ALIGN 64
#define NPY_SWAP_CHUNK 65536

static const char *npy_descr(tnrec_dtype dt, size_t *out_size)
{
    switch (dt) {
    case TNREC_DTYPE_U8: *out_size = 1; return "|u1";
    case TNREC_DTYPE_I8: *out_size = 1; return "|i1";
    case TNREC_DTYPE_U16: *out_size = 2; return "<u2";
    case TNREC_DTYPE_I16: *out_size = 2; return "<i2";
    case TNREC_DTYPE_U32: *out_size = 4; return "<u4";
    case TNREC_DTYPE_I32: *out_size = 4; return "<i4";
    case TNREC_DTYPE_U64: *out_size = 8; return "<u8";
    case TNREC_DTYPE_I64: *out_size = 8; return "<i8";
    case TNREC_DTYPE_F16: *out_size = 2; return "<f2";
    case TNREC_DTYPE_F32: *out_size = 4; return "<f4";
    case TNREC_DTYPE_F64: *out_size = 8; return "<f8";
    }
    *out_size = 0;
    return NULL;
}

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Writes the data little-endian; on a big-endian host each element is
 * reversed through a bounded scratch buffer. */
static tnrec_err write_elements(tnrec_atomic_file *f, const uint8_t *data, size_t elem_size, size_t n)
{
    if (elem_size == 1 || host_is_little_endian())
        return tnrec__atomic_write(f, data, elem_size * n);
    uint8_t buf[NPY_SWAP_CHUNK];
    size_t per_chunk = sizeof buf / elem_size;
    while (n > 0) {
        size_t k = n < per_chunk ? n : per_chunk;
        for (size_t i = 0; i < k; i++)
            for (size_t b = 0; b < elem_size; b++)
                buf[i * elem_size + b] = data[i * elem_size + elem_size - 1 - b];
        tnrec_err e = tnrec__atomic_write(f, buf, k * elem_size);
        if (e)
            return e;
        data += k * elem_size;
        n -= k;
    }
    return TNREC_OK;
}

tnrec_err tnrec_npy_write(const char *path, tnrec_dtype dt, uint32_t ndim, const uint32_t *shape, const void *data)
{
    if (!path || !*path)
        return tnrec__fail(TNREC_EINVAL, "npy: no output path given");
    size_t elem_size = 0;
    const char *descr = npy_descr(dt, &elem_size);
    if (!descr)
        return tnrec__fail(TNREC_EINVAL, "npy '%s': unknown element type %d", path, (int)dt);
    if (ndim > TNREC_NPY_MAX_DIMS)
        return tnrec__fail(TNREC_EINVAL, "npy '%s': %" PRIu32 " dimensions, NumPy allows at most %d",
                           path, ndim, TNREC_NPY_MAX_DIMS);
    if (ndim > 0 && !shape)
        return tnrec__fail(TNREC_EINVAL, "npy '%s': %" PRIu32 " dimensions but no shape", path, ndim);

    /* Header text; the longest possible one fits easily (32 x 12 chars). */
    char header[NPY_PREAMBLE + 128 + TNREC_NPY_MAX_DIMS * 14 + NPY_ALIGN];
    size_t n_elems = 1;
    int len = snprintf(header + NPY_PREAMBLE, sizeof header - NPY_PREAMBLE,
                       "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (uint32_t d = 0; d < ndim; d++) {
        if (shape[d] != 0 && n_elems > SIZE_MAX / elem_size / shape[d])
            return tnrec__fail(TNREC_ERANGE, "npy '%s': shape too large for this machine", path);
        n_elems *= shape[d];
        len += snprintf(header + NPY_PREAMBLE + len, sizeof header - NPY_PREAMBLE - (size_t)len,
                        ndim == 1 ? "%" PRIu32 ",)" : (d + 1 < ndim ? "%" PRIu32 ", " : "%" PRIu32 ")"),
                        shape[d]);
    }
    if (ndim == 0)
        len += snprintf(header + NPY_PREAMBLE + len, sizeof header - NPY_PREAMBLE - (size_t)len, ")");
    len += snprintf(header + NPY_PREAMBLE + len, sizeof header - NPY_PREAMBLE - (size_t)len, ", }");
    /* Pad with spaces so that preamble + dict + '\n' is a multiple of 64. */
    size_t total = NPY_PREAMBLE + (size_t)len + 1;
    size_t padded = (total + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    if (padded > sizeof header)
        return tnrec__fail(TNREC_EINTERNAL, "npy '%s': header buffer too small", path);
    memset(header + NPY_PREAMBLE + len, ' ', padded - total);
    header[padded - 1] = '\n';
    memcpy(header, "\x93NUMPY", 6);
    header[6] = 1;
    header[7] = 0;
    tnrec__put_u16((uint8_t *)header + 8, (uint16_t)(padded - NPY_PREAMBLE));

    if (n_elems > 0 && !data)
        return tnrec__fail(TNREC_EINVAL, "npy '%s': %zu elements but no data", path, n_elems);

    tnrec_atomic_file f;
    tnrec_err e = tnrec__atomic_open(&f, path);
    if (e)
        return e;
    e = tnrec__atomic_write(&f, header, padded);
    if (!e && n_elems > 0)
        e = write_elements(&f, data, elem_size, n_elems);
    if (e) {
        tnrec__atomic_abort(&f);
        return e;
    }
    return tnrec__atomic_commit(&f);
}
