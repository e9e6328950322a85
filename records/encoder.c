/* records/encoder.c: field arrays -> one encoded record (a zstd frame).
 *
 * One encoder per thread. Its buffers (stored payload, shuffle scratch,
 * zstd context) are sized once from the schema, and the caller's blob only
 * grows, so a warm encoder allocates nothing per record. */
#include <stdlib.h>
#include <xxhash.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "records_internal.h"

struct tnrec_encoder {
    tnrec_schema schema;
    int level;
    uint64_t raw_size;
    uint8_t *raw;       /* stored payload of all fields */
    uint8_t *scratch;   /* one field before shuffling */
    ZSTD_CCtx *cctx;
};

void tnrec_blob_free(tnrec_blob *blob)
{
    if (!blob)
        return;
    free(blob->data);
    blob->data = NULL;
    blob->size = blob->cap = 0;
}

tnrec_err tnrec_encoder_create(tnrec_encoder **out, const tnrec_schema *schema, int zstd_level)
{
    *out = NULL;
    tnrec_err e = tnrec_schema_check(schema);
    if (e)
        return e;
    if (zstd_level == 0 || zstd_level < TNREC_ZSTD_LEVEL_MIN || zstd_level > TNREC_ZSTD_LEVEL_MAX)
        return tnrec__fail(TNREC_EINVAL, "zstd level %d out of range %d..-1 or 1..%d", zstd_level,
                           TNREC_ZSTD_LEVEL_MIN, TNREC_ZSTD_LEVEL_MAX);
    tnrec_encoder *enc = calloc(1, sizeof *enc);
    if (!enc)
        return tnrec__fail(TNREC_ENOMEM, "out of memory creating an encoder");
    enc->schema = *schema;
    enc->level = zstd_level;
    enc->raw_size = rec_record_raw_size(schema);
    size_t largest = 1;
    for (uint32_t i = 0; i < schema->nfields; i++) {
        size_t b = tnrec_field_stored_bytes(&schema->fields[i]);
        if (b > largest)
            largest = b;
    }
    enc->raw = malloc(enc->raw_size ? enc->raw_size : 1);
    enc->scratch = malloc(largest);
    enc->cctx = ZSTD_createCCtx();
    if (!enc->raw || !enc->scratch || !enc->cctx) {
        unsigned long long raw = (unsigned long long)enc->raw_size;
        tnrec_encoder_free(enc);
        return tnrec__fail(TNREC_ENOMEM, "out of memory creating an encoder for %llu-byte records", raw);
    }
    if (ZSTD_isError(ZSTD_CCtx_setParameter(enc->cctx, ZSTD_c_compressionLevel, zstd_level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(enc->cctx, ZSTD_c_checksumFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(enc->cctx, ZSTD_c_contentSizeFlag, 1))) {
        tnrec_encoder_free(enc);
        return tnrec__fail(TNREC_EINTERNAL, "zstd refused the encoder parameters");
    }
    *out = enc;
    return TNREC_OK;
}

void tnrec_encoder_free(tnrec_encoder *enc)
{
    if (!enc)
        return;
    ZSTD_freeCCtx(enc->cctx);
    free(enc->raw);
    free(enc->scratch);
    free(enc);
}

tnrec_err tnrec_encoder_encode(tnrec_encoder *enc, const void *const *values, tnrec_blob *blob)
{
    if (!enc || !values || !blob)
        return tnrec__fail(TNREC_EINVAL, "tnrec_encoder_encode: NULL argument");
    const tnrec_schema *s = &enc->schema;
    uint8_t *p = enc->raw;
    for (uint32_t i = 0; i < s->nfields; i++) {
        if (!values[i])
            return tnrec__fail(TNREC_EINVAL, "encode: no values for field '%s'", s->fields[i].name);
        rec_field_encode(&s->fields[i], values[i], p, enc->scratch);
        p += tnrec_field_stored_bytes(&s->fields[i]);
    }
    size_t bound = ZSTD_compressBound(enc->raw_size);
    tnrec_err e = tnrec__grow(&blob->data, &blob->cap, bound, 1, "a record buffer");
    if (e)
        return e;
    size_t n = ZSTD_compress2(enc->cctx, blob->data, blob->cap, enc->raw, enc->raw_size);
    if (ZSTD_isError(n)) {
        blob->size = 0;
        return tnrec__fail(ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation ? TNREC_ENOMEM : TNREC_EINTERNAL,
                           "zstd compression failed: %s", ZSTD_getErrorName(n));
    }
    blob->size = n;
    blob->raw_size = enc->raw_size;
    blob->checksum = XXH3_64bits(blob->data, n);
    blob->zstd_level = enc->level;
    return TNREC_OK;
}
