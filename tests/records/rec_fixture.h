/* tests/records/rec_fixture.h: small schemas and deterministic synthetic
 * records shared by the records tests (public API only). */
#ifndef TNREC_REC_FIXTURE_H
#define TNREC_REC_FIXTURE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tnrec/tnrec.h"

static inline uint64_t fx_rand(uint64_t *s)
{
    /* xorshift64*: deterministic, good enough for test data */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static inline float fx_uniform(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)((fx_rand(s) >> 40) / (double)(1u << 24));
}

static inline void fx_field(tnrec_field *f, const char *name, tnrec_encoding enc, tnrec_dtype dt, uint32_t ndim,
                            const uint32_t *shape, uint32_t shuffle)
{
    static const char *const dim_names[4] = { "time", "azimuth", "range", "sweep" };
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->encoding = enc;
    f->dtype = dt;
    f->ndim = ndim;
    for (uint32_t d = 0; d < ndim; d++) {
        f->shape[d] = shape[d];
        snprintf(f->dims[d], sizeof f->dims[d], "%s", dim_names[d]);
    }
    f->shuffle = shuffle;
    f->offset = 20.0f;
    f->scale = 40.0f;
    f->nodata = -3.0f;
    f->qmin = -1.0f;
    f->qmax = 1.0f;
}

/* A small schema with one field of each kind: a float field of the given
 * encoding, a raw uint8 mask, raw int16, raw float64, a raw int32 scalar. */
static inline void fx_schema(tnrec_schema *s, tnrec_encoding enc, uint32_t shuffle)
{
    static const uint32_t radar[4] = { 2, 3, 5, 2 }, vec7[1] = { 7 }, vec3[1] = { 3 };
    memset(s, 0, sizeof *s);
    s->nfields = 5;
    fx_field(&s->fields[0], "DBZ", enc, TNREC_DTYPE_F32, 4, radar, shuffle);
    if (enc == TNREC_ENC_RAW)
        s->fields[0].dtype = TNREC_DTYPE_F32;
    fx_field(&s->fields[1], "range_folded_mask", TNREC_ENC_RAW, TNREC_DTYPE_U8, 4, radar, shuffle);
    fx_field(&s->fields[2], "counts", TNREC_ENC_RAW, TNREC_DTYPE_I16, 1, vec7, shuffle);
    fx_field(&s->fields[3], "elevation", TNREC_ENC_RAW, TNREC_DTYPE_F64, 1, vec3, shuffle);
    fx_field(&s->fields[4], "site", TNREC_ENC_RAW, TNREC_DTYPE_I32, 0, NULL, shuffle);
}

/* Input arrays for one record of fx_schema, filled from seed. */
typedef struct fx_record {
    float dbz[60];
    uint8_t mask[60];
    int16_t counts[7];
    double elevation[3];
    int32_t site;
    const void *values[5];
    tnrec_record_meta meta;
} fx_record;

static inline void fx_fill(fx_record *r, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int k = 0; k < 60; k++) {
        r->dbz[k] = (fx_rand(&s) % 5 == 0) ? NAN : fx_uniform(&s, -20.0f, 60.0f);
        r->mask[k] = (uint8_t)(fx_rand(&s) & 1);
    }
    for (int k = 0; k < 7; k++)
        r->counts[k] = (int16_t)(fx_rand(&s) & 0xffff);
    for (int k = 0; k < 3; k++)
        r->elevation[k] = 0.5 + 0.1 * (double)(fx_rand(&s) % 100);
    r->site = (int32_t)(fx_rand(&s) & 0x7fffffff);
    r->values[0] = r->dbz;
    r->values[1] = r->mask;
    r->values[2] = r->counts;
    r->values[3] = r->elevation;
    r->values[4] = &r->site;
    memset(&r->meta, 0, sizeof r->meta);
    r->meta.label = (int32_t)(seed % 3 == 0);
    r->meta.category = r->meta.label ? TNREC_CAT_TOR : (int32_t)(1 + seed % 2);
    r->meta.ef = r->meta.label ? (int32_t)(seed % 6) : -1;
    r->meta.event_id = (int64_t)(1000 + seed);
    r->meta.episode_id = (int64_t)(2000 + seed / 2);
    r->meta.time = (int64_t)(1400000000 + 3600 * seed);
    snprintf(r->meta.key, sizeof r->meta.key, "train/2013/%s_%03llu.nc", tnrec_category_name(r->meta.category),
             (unsigned long long)seed);
}

/* Writes a shard of n records of fx_schema(enc, shuffle) to path. */
static inline tnrec_err fx_write_shard(const char *path, tnrec_encoding enc, uint32_t shuffle, uint64_t n)
{
    tnrec_schema schema;
    fx_schema(&schema, enc, shuffle);
    tnrec_encoder *e = NULL;
    tnrec_shard_writer *w = NULL;
    tnrec_blob blob = { 0 };
    fx_record r;
    tnrec_err err = tnrec_encoder_create(&e, &schema, 3);
    if (!err)
        err = tnrec_shard_writer_open(&w, path, &schema);
    for (uint64_t i = 0; !err && i < n; i++) {
        fx_fill(&r, i);
        err = tnrec_encoder_encode(e, r.values, &blob);
        if (!err)
            err = tnrec_shard_writer_append(w, &blob, &r.meta);
    }
    if (!err) {
        err = tnrec_shard_writer_close(w, NULL);
        w = NULL;
    }
    tnrec_shard_writer_abort(w);
    tnrec_encoder_free(e);
    tnrec_blob_free(&blob);
    return err;
}

static inline int fx_read_all(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = malloc(n > 0 ? (size_t)n : 1);
    *len = (size_t)n;
    size_t got = fread(*out, 1, (size_t)n, f);
    fclose(f);
    return got == (size_t)n ? 0 : -1;
}

static inline int fx_write_all(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t put = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && put == len) ? 0 : -1;
}

#endif
