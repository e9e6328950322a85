/* tests/fuzz/fuzz_common.h: what the fuzz targets and the corpus generator
 * share (public API only): the small deterministic shards and dataset, and
 * the scratch folder and input file of the targets that read files. */
#ifndef TNREC_FUZZ_COMMON_H
#define TNREC_FUZZ_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tnrec/tnrec.h"

/* A schema of four small fields: a float field of `enc`, a raw uint8
 * mask, raw int16 and a raw float64 scalar. */
static inline void fz_schema(tnrec_schema *s, tnrec_encoding enc)
{
    memset(s, 0, sizeof *s);
    s->nfields = 4;
    const char *names[4] = { "DBZ", "mask", "counts", "elev" };
    const tnrec_dtype dts[4] = { TNREC_DTYPE_F32, TNREC_DTYPE_U8, TNREC_DTYPE_I16, TNREC_DTYPE_F64 };
    for (int i = 0; i < 4; i++) {
        tnrec_field *f = &s->fields[i];
        snprintf(f->name, sizeof f->name, "%s", names[i]);
        f->encoding = i == 0 ? enc : TNREC_ENC_RAW;
        f->dtype = dts[i];
        f->ndim = i == 3 ? 0 : 2;
        if (i < 3) {
            f->shape[0] = 3;
            f->shape[1] = 4;
            snprintf(f->dims[0], sizeof f->dims[0], "azimuth");
            snprintf(f->dims[1], sizeof f->dims[1], "range");
        }
        f->shuffle = 1;
        f->offset = 20.0f;
        f->scale = 40.0f;
        f->nodata = -3.0f;
        f->qmin = -1.0f;
        f->qmax = 1.0f;
    }
}

/* Appends n deterministic records through `append` (a shard or dataset writer). */
typedef tnrec_err (*fz_append_fn)(void *w, const tnrec_blob *b, const tnrec_record_meta *m);

static inline tnrec_err fz_records(const tnrec_schema *s, uint64_t n, fz_append_fn append, void *w)
{
    tnrec_encoder *enc = NULL;
    tnrec_blob blob = { 0 };
    tnrec_err e = tnrec_encoder_create(&enc, s, 3);
    for (uint64_t i = 0; !e && i < n; i++) {
        float dbz[12];
        uint8_t mask[12];
        int16_t counts[12];
        double elev = 0.5 * (double)i;
        for (int k = 0; k < 12; k++) {
            dbz[k] = k % 5 == 0 ? (float)NAN : -20.0f + 7.0f * (float)k + (float)i;
            mask[k] = (uint8_t)((k + i) & 1);
            counts[k] = (int16_t)(k * 1000 - (int)i);
        }
        const void *values[4] = { dbz, mask, counts, &elev };
        tnrec_record_meta m = { .label = (int32_t)(i % 2), .category = (int32_t)(i % 2 ? TNREC_CAT_TOR : TNREC_CAT_NUL),
                                .ef = i % 2 ? (int32_t)(i % 6) : -1, .event_id = (int64_t)i, .episode_id = 7,
                                .time = 1400000000 + (int64_t)i };
        snprintf(m.key, sizeof m.key, "train/2013/sample_%llu.nc", (unsigned long long)i);
        e = tnrec_encoder_encode(enc, values, &blob);
        if (!e)
            e = append(w, &blob, &m);
    }
    tnrec_encoder_free(enc);
    tnrec_blob_free(&blob);
    return e;
}

static inline tnrec_err fz_append_shard(void *w, const tnrec_blob *b, const tnrec_record_meta *m)
{
    return tnrec_shard_writer_append(w, b, m);
}

static inline tnrec_err fz_append_dataset(void *w, const tnrec_blob *b, const tnrec_record_meta *m)
{
    return tnrec_dataset_writer_append(w, b, m);
}

static inline tnrec_err fz_write_shard(const char *path, tnrec_encoding enc, uint64_t n)
{
    tnrec_schema s;
    fz_schema(&s, enc);
    tnrec_shard_writer *w = NULL;
    tnrec_err e = tnrec_shard_writer_open(&w, path, &s);
    if (!e)
        e = fz_records(&s, n, fz_append_shard, w);
    if (e) {
        tnrec_shard_writer_abort(w);
        return e;
    }
    return tnrec_shard_writer_close(w, NULL);
}

/* The dataset fuzz_manifest checks manifests against: 5 records in shards of 2. */
static inline tnrec_err fz_write_dataset(const char *dir)
{
    tnrec_schema s;
    fz_schema(&s, TNREC_ENC_FLOAT16);
    tnrec_dataset_options opt = { .max_shard_records = 2, .prefix = "fz" };
    tnrec_dataset_writer *w = NULL;
    tnrec_err e = tnrec_dataset_writer_open(&w, dir, &s, &opt);
    if (!e)
        e = fz_records(&s, 5, fz_append_dataset, w);
    if (!e)
        e = tnrec_dataset_writer_skip(w, "train/2013/bad.nc", "unreadable");
    if (e) {
        tnrec_dataset_writer_abort(w);
        return e;
    }
    return tnrec_dataset_writer_close(w, "{\"seed\": 1}");
}

/* The scratch folder of a fuzz target ("" until fz_scratch_make). */
static inline char *fz_scratch(void)
{
    static char dir[256];
    return dir;
}

static inline void fz_scratch_remove(void)
{
    const char *dir = fz_scratch();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", dir);
}

/* Makes the scratch folder tnrec_fuzz_NAME_XXXXXX under $TMPDIR (or /tmp)
 * on its first call, removed at exit, and returns it; aborts when it
 * cannot be made. */
static inline const char *fz_scratch_make(const char *name)
{
    char *dir = fz_scratch();
    if (dir[0])
        return dir;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, 256, "%s/tnrec_fuzz_%s_XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "fuzz_%s: cannot make %s\n", name, dir);
        abort();
    }
    atexit(fz_scratch_remove);
    return dir;
}

/* Writes the input to path, whole; aborts when it cannot. */
static inline void fz_write_input(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    int bad = fwrite(data, 1, size, f) != size;
    if (fclose(f) != 0 || bad)
        abort();
}

#endif
