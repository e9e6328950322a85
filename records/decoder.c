/* records/decoder.c: loads one record (one pread, checksum, zstd) and
 * decodes its fields into caller buffers.
 *
 * One decoder per thread; it keeps its compressed and decompressed
 * buffers and only grows them, so a warm decoder allocates nothing per
 * record. It borrows the shard of the last load: the shard must stay open
 * while fields of that record are decoded. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_d_forceIgnoreChecksum, set through the stable ZSTD_DCtx_setParameter */
#include <zstd.h>
#include <zstd_errors.h>

#include "records_internal.h"

struct tnrec_decoder {
    ZSTD_DCtx *dctx;
    uint8_t *comp, *raw, *mask, *vals;   /* vals: one decoded field, for statistics */
    size_t comp_cap, raw_cap, mask_cap, vals_cap;
    const tnrec_shard *shard;   /* of the loaded record; NULL when none */
    uint64_t index;
    int has_nodata;             /* 1: float fields' no data decodes as nodata, not the schema's */
    int stream;                 /* 1: fields_rows writes past the cache (tnrec_decoder_set_stream) */
    float nodata;
};

void tnrec_decoder_set_content_check(tnrec_decoder *d, int on)
{
    if (!d)
        return;
    /* A libzstd that does not know the parameter keeps checking. */
    (void)ZSTD_DCtx_setParameter(d->dctx, ZSTD_d_forceIgnoreChecksum,
                                 on ? ZSTD_d_validateChecksum : ZSTD_d_ignoreChecksum);
}

void tnrec_decoder_set_stream(tnrec_decoder *d, int on)
{
    if (d)
        d->stream = on != 0;
}

void tnrec_decoder_set_nodata(tnrec_decoder *d, const float *value)
{
    if (!d)
        return;
    d->has_nodata = value != NULL;
    d->nodata = value ? *value : 0.0f;
}

/* fd, or a copy of it in *tmp with the decoder's no-data value. */
static const tnrec_field *with_nodata(const tnrec_decoder *d, const tnrec_field *fd, tnrec_field *tmp)
{
    return tnrec_field_with_nodata(fd, d->has_nodata ? &d->nodata : NULL, tmp);
}

tnrec_err tnrec_decoder_create(tnrec_decoder **out)
{
    *out = NULL;
    tnrec_decoder *d = calloc(1, sizeof *d);
    if (!d || !(d->dctx = ZSTD_createDCtx())) {
        free(d);
        return tnrec__fail(TNREC_ENOMEM, "out of memory creating a decoder");
    }
    *out = d;
    return TNREC_OK;
}

void tnrec_decoder_free(tnrec_decoder *d)
{
    if (!d)
        return;
    ZSTD_freeDCtx(d->dctx);
    free(d->comp);
    free(d->raw);
    free(d->mask);
    free(d->vals);
    free(d);
}

static tnrec_err load(tnrec_decoder *d, const tnrec_shard *s, uint64_t i)
{
    const char *path = s->path;
    if (i >= s->count)
        return tnrec__fail(TNREC_ERANGE, "shard '%s': record %llu out of range (%llu records)", path,
                           (unsigned long long)i, (unsigned long long)s->count);
    const tnrec_record_info *r = &s->info[i];
    /* raw_size equals the schema's, which is at most REC_RECORD_MAX. */
    tnrec_err e = tnrec__grow(&d->raw, &d->raw_cap, r->raw_size ? (size_t)r->raw_size : 1, 1, path);
    if (!e)
        e = rec_read_frame(s, i, &d->comp, &d->comp_cap);
    if (e)
        return e;
    size_t n = ZSTD_decompressDCtx(d->dctx, d->raw, (size_t)r->raw_size, d->comp, (size_t)r->size);
    if (ZSTD_isError(n) && ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation)
        return tnrec__fail(TNREC_ENOMEM, "out of memory decompressing record %llu of '%s'", (unsigned long long)i,
                           path);
    if (ZSTD_isError(n))
        return tnrec__fail(TNREC_ECORRUPT, "shard '%s': record %llu does not decompress: %s", path,
                           (unsigned long long)i, ZSTD_getErrorName(n));
    if (n != r->raw_size)
        return tnrec__fail(TNREC_ECORRUPT, "shard '%s': record %llu decompressed to %zu bytes, expected %llu", path,
                           (unsigned long long)i, n, (unsigned long long)r->raw_size);
    return TNREC_OK;
}

tnrec_err tnrec_decoder_load(tnrec_decoder *d, const tnrec_shard *s, uint64_t i)
{
    if (!d || !s)
        return tnrec__fail(TNREC_EINVAL, "tnrec_decoder_load: NULL argument");
    d->shard = NULL;
    tnrec_err e = load(d, s, i);
    if (e)
        return e;
    d->shard = s;
    d->index = i;
    return TNREC_OK;
}

/* Field f of the loaded record's schema. */
static tnrec_err loaded_field(const tnrec_decoder *d, uint32_t f, const tnrec_field **out)
{
    if (!d || !d->shard)
        return tnrec__fail(TNREC_EINVAL, "decode: no record loaded");
    const tnrec_shard *s = d->shard;
    if (f >= s->schema.nfields)
        return tnrec__fail(TNREC_ENOTFOUND, "shard '%s': no field %u (schema has %u)", s->path, f, s->schema.nfields);
    *out = &s->schema.fields[f];
    return TNREC_OK;
}

static tnrec_err field_check(const tnrec_decoder *d, uint32_t f, tnrec_dtype as, size_t dst_cap,
                             const tnrec_field **out)
{
    const tnrec_field *fd = NULL;
    tnrec_err err = loaded_field(d, f, &fd);
    if (err)
        return err;
    const tnrec_shard *s = d->shard;
    int ok = fd->encoding == TNREC_ENC_RAW ? as == fd->dtype : (as == TNREC_DTYPE_F32 || as == TNREC_DTYPE_F16);
    if (!ok)
        return tnrec__fail(TNREC_EINVAL, "shard '%s': field '%s' (%s, %s) cannot be decoded as %s", s->path, fd->name,
                           tnrec_encoding_name(fd->encoding), tnrec_dtype_name(fd->dtype), tnrec_dtype_name(as));
    size_t need = tnrec_field_elems(fd) * tnrec_dtype_size(as);
    if (dst_cap < need)
        return tnrec__fail(TNREC_ERANGE, "shard '%s': field '%s' needs %zu bytes, buffer has %zu", s->path, fd->name,
                           need, dst_cap);
    *out = fd;
    return TNREC_OK;
}

tnrec_err tnrec_decoder_field(tnrec_decoder *d, uint32_t f, tnrec_dtype as, void *dst, size_t dst_cap)
{
    const tnrec_field *fd;
    tnrec_err e = field_check(d, f, as, dst_cap, &fd);
    if (e)
        return e;
    if (!dst)
        return tnrec__fail(TNREC_EINVAL, "decode: NULL destination");
    tnrec_field tmp;
    rec_field_decode(with_nodata(d, fd, &tmp), d->raw + d->shard->field_off[f], as, dst, NULL);
    return TNREC_OK;
}

tnrec_err tnrec_decoder_field_mask(tnrec_decoder *d, uint32_t f, float *dst, size_t dst_cap, uint8_t *mask)
{
    const tnrec_field *fd;
    tnrec_err e = field_check(d, f, TNREC_DTYPE_F32, dst_cap, &fd);
    if (e)
        return e;
    if (!dst || !mask)
        return tnrec__fail(TNREC_EINVAL, "decode: NULL destination or mask");
    tnrec_field tmp;
    rec_field_decode(with_nodata(d, fd, &tmp), d->raw + d->shard->field_off[f], TNREC_DTYPE_F32, dst, mask);
    return TNREC_OK;
}

tnrec_err tnrec_decoder_field_physical(tnrec_decoder *d, uint32_t f, float *dst, size_t dst_cap)
{
    const tnrec_field *fd;
    tnrec_err e = field_check(d, f, TNREC_DTYPE_F32, dst_cap, &fd);
    if (e)
        return e;
    if (!dst)
        return tnrec__fail(TNREC_EINVAL, "decode: NULL destination");
    const uint8_t *stored = d->raw + d->shard->field_off[f];
    if (fd->encoding == TNREC_ENC_RAW) { /* a raw float32 field holds physical values already */
        rec_field_decode(fd, stored, TNREC_DTYPE_F32, dst, NULL);
        return TNREC_OK;
    }
    size_t n = tnrec_field_elems(fd);
    if ((e = tnrec__grow(&d->mask, &d->mask_cap, n ? n : 1, sizeof *d->mask, d->shard->path)))
        return e;
    rec_field_decode(fd, stored, TNREC_DTYPE_F32, dst, d->mask);
    const float scale = fd->scale, offset = fd->offset;
    for (size_t k = 0; k < n; k++)
        dst[k] = d->mask[k] ? NAN : dst[k] * scale + offset;
    return TNREC_OK;
}

tnrec_err tnrec_decoder_field_stats(tnrec_decoder *d, uint32_t f, tnrec_channel_stats *out, size_t out_cap)
{
    const tnrec_field *fd = NULL;
    tnrec_err err = loaded_field(d, f, &fd);
    if (err)
        return err;
    const tnrec_shard *s = d->shard;
    size_t n = tnrec_field_elems(fd), nch = tnrec_field_channels(fd);
    if (!out || out_cap < nch)
        return tnrec__fail(TNREC_ERANGE, "shard '%s': field '%s' has %zu channels, statistics have room for %zu",
                           s->path, fd->name, nch, out ? out_cap : 0);
    tnrec_dtype as = tnrec_field_decoded_dtype(fd);
    int raw = fd->encoding == TNREC_ENC_RAW;
    tnrec_err e = tnrec__grow(&d->vals, &d->vals_cap, n ? n * tnrec_dtype_size(as) : 1, 1, s->path);
    if (!e && !raw)
        e = tnrec__grow(&d->mask, &d->mask_cap, n ? n : 1, 1, s->path);
    if (e)
        return e;
    rec_field_decode(fd, d->raw + s->field_off[f], as, d->vals, raw ? NULL : d->mask);
    rec_field_stats(fd, d->vals, raw ? NULL : d->mask, out);
    return TNREC_OK;
}

/* Field f of the loaded record, checked for a decode of rows [first, +rows x width). */
static tnrec_err rows_check(const tnrec_decoder *d, uint32_t f, uint64_t first, size_t rows, size_t width,
                            const float *dst, size_t stride, const tnrec_field **out)
{
    const tnrec_field *fd = NULL;
    tnrec_err err = loaded_field(d, f, &fd);
    if (err)
        return err;
    const tnrec_shard *s = d->shard;
    if (fd->encoding == TNREC_ENC_RAW && fd->dtype != TNREC_DTYPE_U8)
        return tnrec__fail(TNREC_EINVAL, "shard '%s': field '%s' (raw %s) cannot be decoded into float32 rows",
                           s->path, fd->name, tnrec_dtype_name(fd->dtype));
    size_t n = tnrec_field_elems(fd);
    if (!dst || width == 0 || stride < width)
        return tnrec__fail(TNREC_EINVAL, "decode rows: NULL destination, or width %zu zero or above stride %zu",
                           width, stride);
    if (first > n || rows > (n - first) / width)
        return tnrec__fail(TNREC_ERANGE, "shard '%s': field '%s' has %zu elements, rows ask [%llu, +%zu x %zu)",
                           s->path, fd->name, n, (unsigned long long)first, rows, width);
    *out = fd;
    return TNREC_OK;
}

tnrec_err tnrec_decoder_field_rows(tnrec_decoder *d, uint32_t f, uint64_t first, size_t rows, size_t width,
                                   float *dst, size_t stride)
{
    const tnrec_field *fd = NULL;
    tnrec_err err = rows_check(d, f, first, rows, width, dst, stride, &fd);
    if (err)
        return err;
    const tnrec_shard *s = d->shard;
    tnrec_field tmp;
    rec_field_decode_rows(with_nodata(d, fd, &tmp), d->raw + s->field_off[f], (size_t)first, rows, width, dst,
                          stride);
    return TNREC_OK;
}

#define FIELDS_ROWS_BLOCK 1024

/* Fields of 2-element rows packed side by side (stride = 2 * nf) in one
 * pass; the rows it leaves (the last rows % 4, or all without the SIMD
 * path) are decoded field by field. */
static size_t fields_pairs(tnrec_decoder *d, const uint32_t *fields, size_t nf, uint64_t first, size_t rows,
                           float *dst)
{
    const tnrec_shard *s = d->shard;
    const tnrec_field *fp[REC_PAIRS_MAX_FIELDS];
    const uint8_t *stored[REC_PAIRS_MAX_FIELDS];
    tnrec_field tmp[REC_PAIRS_MAX_FIELDS];
    for (size_t j = 0; j < nf; j++) {
        fp[j] = with_nodata(d, &s->schema.fields[fields[j]], &tmp[j]);
        stored[j] = d->raw + s->field_off[fields[j]];
    }
    return rec_fields_decode_pairs(fp, stored, (int)nf, (size_t)first, rows, dst, d->stream);
}

tnrec_err tnrec_decoder_fields_rows(tnrec_decoder *d, const uint32_t *fields, size_t nf, uint64_t first,
                                    size_t rows, size_t width, float *dst, size_t stride)
{
    if (!fields && nf > 0)
        return tnrec__fail(TNREC_EINVAL, "decode rows: NULL field list");
    if (nf > 0 && (width > SIZE_MAX / nf || stride < nf * width))
        return tnrec__fail(TNREC_EINVAL, "decode rows: %zu fields of width %zu do not fit a stride of %zu", nf,
                           width, stride);
    for (size_t j = 0; j < nf; j++) {
        const tnrec_field *fd = NULL;
        tnrec_err err = rows_check(d, fields[j], first, rows, width, dst, stride, &fd);
        if (err)
            return err;
    }
    size_t done = 0;
    if (width == 2 && stride == 2 * nf && nf <= REC_PAIRS_MAX_FIELDS)
        done = fields_pairs(d, fields, nf, first, rows, dst);
    /* The rest field by field, a block of rows at a time for all fields, so
     * that the block's part of dst stays in cache while every field writes
     * its columns (1024 rows of 12 floats: 48 KiB). */
    for (size_t r0 = done; r0 < rows; r0 += FIELDS_ROWS_BLOCK) {
        size_t nr = rows - r0 < FIELDS_ROWS_BLOCK ? rows - r0 : FIELDS_ROWS_BLOCK;
        for (size_t j = 0; j < nf; j++) {
            tnrec_err err = tnrec_decoder_field_rows(d, fields[j], first + r0 * width, nr, width,
                                                     dst + r0 * stride + j * width, stride);
            if (err)
                return err;
        }
    }
    return TNREC_OK;
}
