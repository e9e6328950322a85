/* benchmarks/bench_scale.c: a dataset with TorNet's record count, for
 * timing the paths that grow with the number of records and shards (shard
 * indexes, manifest, class counts, dataset open, verify, dump) rather than
 * with the bytes of the radar data.
 *
 * Writes RECORDS tiny records (one 16-byte uint8 field) with TorNet-like
 * keys ("train/2013/NUL_130220_032435_KILX_579373s_E2.nc"), 7 % TOR, in
 * SHARDS shards through the dataset writer API, and prints the time the
 * writer took. Time 'tnrec verify' and 'tnrec dump' on DIR afterwards
 * (docs/benchmarks.md, "Scale").
 * Usage: bench_scale DIR [records (203133)] [shards (200)] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "tnrec/tnrec.h"

enum { FIELD_BYTES = 16 };

static void make_schema(tnrec_schema *s)
{
    memset(s, 0, sizeof *s);
    s->nfields = 1;
    tnrec_field *f = &s->fields[0];
    snprintf(f->name, sizeof f->name, "%s", "tag");
    f->encoding = TNREC_ENC_RAW;
    f->dtype = TNREC_DTYPE_U8;
    f->ndim = 1;
    f->shape[0] = FIELD_BYTES;
    snprintf(f->dims[0], sizeof f->dims[0], "%s", "byte");
    f->scale = 1.0f;
    f->qmax = 1.0f;
}

/* Record i's metadata: a TorNet-like key, category and label. */
static void make_meta(tnrec_record_meta *m, uint64_t i)
{
    static const char *const sites[4] = { "KILX", "KTBW", "KJAN", "KOUN" };
    memset(m, 0, sizeof *m);
    int tor = i % 100 < 7, wrn = !tor && i % 100 < 39;
    m->category = tor ? 0 : wrn ? 2 : 1;
    m->label = tor;
    m->ef = tor ? (int32_t)(i % 6) : -1;
    m->event_id = (int64_t)(100000 + i / 3);
    m->episode_id = (int64_t)(10000 + i / 30);
    m->time = 1356998400 + (int64_t)i * 1500; /* from 2013-01-01 */
    snprintf(m->key, sizeof m->key, "%s/%d/%s_13%04u_%06u_%s_%06us_E%u.nc", i % 10 < 8 ? "train" : "test",
             2013 + (int)(i % 10), tor ? "TOR" : wrn ? "WRN" : "NUL", (unsigned)(i % 1231),
             (unsigned)(i % 235959), sites[i % 4], (unsigned)i, (unsigned)(i % 4));
}

static tnrec_err write_dataset(const char *dir, uint64_t records, uint64_t shards)
{
    tnrec_schema schema;
    make_schema(&schema);
    tnrec_dataset_options opt = { .max_shard_records = (records + shards - 1) / shards, .prefix = "train" };
    tnrec_encoder *enc = NULL;
    tnrec_dataset_writer *w = NULL;
    tnrec_blob blob = { 0 };
    uint8_t tag[FIELD_BYTES];
    const void *values[1] = { tag };
    tnrec_err e = tnrec_encoder_create(&enc, &schema, 1);
    if (!e)
        e = tnrec_dataset_writer_open(&w, dir, &schema, &opt);
    for (uint64_t i = 0; !e && i < records; i++) {
        tnrec_record_meta meta;
        make_meta(&meta, i);
        for (int b = 0; b < FIELD_BYTES; b++)
            tag[b] = (uint8_t)(i >> (8 * (b % 8)));
        e = tnrec_encoder_encode(enc, values, &blob);
        if (!e)
            e = tnrec_dataset_writer_append(w, &blob, &meta);
    }
    if (!e) {
        e = tnrec_dataset_writer_close(w, "{\"benchmark\": \"bench_scale\"}");
        w = NULL;
    }
    tnrec_dataset_writer_abort(w);
    tnrec_encoder_free(enc);
    tnrec_blob_free(&blob);
    return e;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: bench_scale DIR [records (203133)] [shards (200)]\n");
        return 2;
    }
    uint64_t records = argc > 2 ? strtoull(argv[2], NULL, 10) : 203133;
    uint64_t shards = argc > 3 ? strtoull(argv[3], NULL, 10) : 200;
    if (records == 0 || shards == 0 || shards > records) {
        fprintf(stderr, "bench_scale: need 1 <= shards <= records\n");
        return 2;
    }
    double t0 = bench_now();
    tnrec_err e = write_dataset(argv[1], records, shards);
    double t = bench_now() - t0;
    if (e) {
        fprintf(stderr, "bench_scale: %s\n", tnrec_error_last());
        return 1;
    }
    printf("wrote %llu records in %llu shards to %s in %.2f s (%.0f records/s)\n", (unsigned long long)records,
           (unsigned long long)shards, argv[1], t, (double)records / t);
    return 0;
}
