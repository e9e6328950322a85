/* tests/cli/dump_fixture.c: writes the data the CLI tests inspect.
 *
 * usage: dump_fixture OUT_DIR
 * Writes, through libtnrec's public API only:
 *   OUT_DIR/ds/          a dataset of 7 records in 3 shards (3 + 3 + 1),
 *                        with 2 skipped inputs;
 *   OUT_DIR/single.tnr   a bare shard of 3 records;
 *   OUT_DIR/empty/       a dataset with no records;
 *   OUT_DIR/latin1.tnr   one record whose key is not UTF-8 ("caf\xe9");
 *   OUT_DIR/inputs/<set>_<i>_<field>.bin   each field's input values as
 *                        given to the encoder (float32 physical values for
 *                        the float encodings, with NaN gates; the field's
 *                        own type for raw fields), little-endian;
 *   OUT_DIR/expected.json  the schema and every record's metadata.
 * The schema has every encoding (uint8, float16, float32, raw) and raw
 * fields of several types and ranks (0-d to 4-d); records have all three
 * categories, both labels and several EF ratings. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tnrec_test.h"

enum { T = 2, AZ = 3, RG = 4, SW = 2, GATES = T * AZ * RG * SW };

typedef struct rec_spec {
    int label, ef;
    const char *cat;
} rec_spec;

static const rec_spec ds_recs[] = {
    { 1, 0, "TOR" }, { 0, -1, "NUL" }, { 0, -1, "WRN" }, { 1, 3, "TOR" },
    { 0, -1, "NUL" }, { 1, 5, "TOR" }, { 0, -1, "WRN" },
};
static const rec_spec single_recs[] = { { 0, -1, "NUL" }, { 1, 1, "TOR" }, { 0, -1, "WRN" } };

static const char *skipped[][2] = {
    { "train/2013/TOR_130520_201500_KTLX_bad.nc", "cannot open: HDF5 error (truncated file)" },
    { "train/2013/NUL_130601_000000_KFWS_odd.nc", "variable 'DBZ' has shape (4, 120, 240, 3)" },
};

static void set_dims(tnrec_field *f, uint32_t ndim, const uint32_t *shape, const char *const *dims)
{
    f->ndim = ndim;
    for (uint32_t d = 0; d < ndim; d++) {
        f->shape[d] = shape[d];
        snprintf(f->dims[d], TNREC_NAME_MAX, "%s", dims[d]);
    }
}

static void make_schema(tnrec_schema *s)
{
    memset(s, 0, sizeof *s);
    static const uint32_t grid[4] = { T, AZ, RG, SW };
    static const char *const grid_dims[4] = { "time", "azimuth", "range", "sweep" };
    static const uint32_t ts[2] = { T, SW };
    static const char *const ts_dims[2] = { "time", "sweep" };
    tnrec_field *f;

    f = &s->fields[s->nfields++];
    snprintf(f->name, sizeof f->name, "DBZ");
    f->encoding = TNREC_ENC_UINT8;
    f->dtype = TNREC_DTYPE_F32;
    set_dims(f, 4, grid, grid_dims);
    f->shuffle = 1;
    f->offset = 20.0f; f->scale = 40.0f; f->nodata = -3.0f; f->qmin = -1.0f; f->qmax = 1.0f;

    f = &s->fields[s->nfields++];
    snprintf(f->name, sizeof f->name, "VEL");
    f->encoding = TNREC_ENC_FLOAT16;
    f->dtype = TNREC_DTYPE_F32;
    set_dims(f, 4, grid, grid_dims);
    f->shuffle = 1;
    f->offset = 0.0f; f->scale = 60.0f; f->nodata = -3.0f; f->qmin = -1.0f; f->qmax = 1.0f;

    f = &s->fields[s->nfields++];
    snprintf(f->name, sizeof f->name, "KDP");
    f->encoding = TNREC_ENC_FLOAT32;
    f->dtype = TNREC_DTYPE_F32;
    set_dims(f, 4, grid, grid_dims);
    f->shuffle = 1;
    f->offset = 1.5f; f->scale = 3.5f; f->nodata = -3.0f; f->qmin = -1.0f; f->qmax = 1.0f;

    f = &s->fields[s->nfields++];
    snprintf(f->name, sizeof f->name, "range_folded_mask");
    f->encoding = TNREC_ENC_RAW;
    f->dtype = TNREC_DTYPE_U8;
    set_dims(f, 4, grid, grid_dims);
    f->shuffle = 0;
    f->scale = 1.0f;

    f = &s->fields[s->nfields++];
    snprintf(f->name, sizeof f->name, "time");
    f->encoding = TNREC_ENC_RAW;
    f->dtype = TNREC_DTYPE_F64;
    set_dims(f, 1, ts, ts_dims);
    f->shuffle = 1;
    f->scale = 1.0f;

    f = &s->fields[s->nfields++];
    snprintf(f->name, sizeof f->name, "nyquist_velocity");
    f->encoding = TNREC_ENC_RAW;
    f->dtype = TNREC_DTYPE_F32;
    set_dims(f, 2, ts, ts_dims);
    f->shuffle = 1;
    f->scale = 1.0f;

    f = &s->fields[s->nfields++];
    snprintf(f->name, sizeof f->name, "elevation_code");
    f->encoding = TNREC_ENC_RAW;
    f->dtype = TNREC_DTYPE_I16;
    set_dims(f, 1, ts + 1, ts_dims + 1);
    f->shuffle = 1;
    f->scale = 1.0f;

    f = &s->fields[s->nfields++];
    snprintf(f->name, sizeof f->name, "sequence");
    f->encoding = TNREC_ENC_RAW;
    f->dtype = TNREC_DTYPE_I64;
    f->ndim = 0;
    f->shuffle = 0;
    f->scale = 1.0f;
}

/* Field inputs of record with seed r. Formulas are arbitrary but cover
 * clamping (DBZ beyond [-20, 60]), NaN gates in every float field and a
 * NaN in a raw float field. */
typedef struct rec_values {
    float dbz[GATES], vel[GATES], kdp[GATES];
    uint8_t rfm[GATES];
    double time[T];
    float nyq[T * SW];
    int16_t elev[SW];
    int64_t seq;
} rec_values;

static void make_values(rec_values *v, int r)
{
    for (int k = 0; k < GATES; k++) {
        v->dbz[k] = (k + r) % 5 == 0 ? NAN : -25.0f + (float)((k * 7 + r * 13) % 90) + 0.5f;
        v->vel[k] = (k * 3 + r) % 7 == 0 ? NAN : (float)((k * 11 + r * 5) % 121) - 60.0f + 0.37f;
        v->kdp[k] = (k + 2 * r) % 6 == 1 ? NAN : (float)(k % 17) * 0.41f - 2.0f + (float)r * 0.01f;
        v->rfm[k] = (k + r) % 3 == 0 ? 1 : 0;
    }
    for (int t = 0; t < T; t++)
        v->time[t] = 1369999999.5 + r * 3600.0 + t * 300.0;
    for (int k = 0; k < T * SW; k++)
        v->nyq[k] = 25.5f + (float)r + 0.25f * (float)k;
    if (r % 2 == 1)
        v->nyq[2] = NAN;
    v->elev[0] = (int16_t)(-(r + 1) * 100);
    v->elev[1] = (int16_t)(r * 300 + 7);
    v->seq = (int64_t)r * 1000000007 - 5;
}

static void make_meta(tnrec_record_meta *m, const rec_spec *spec, int r)
{
    memset(m, 0, sizeof *m);
    m->label = spec->label;
    m->category = tnrec_category_parse(spec->cat);
    m->ef = spec->ef;
    m->event_id = 600000 + r * 17;
    m->episode_id = 90000 + r;
    m->time = 1369999999 + (int64_t)r * 86400 + 7;
    snprintf(m->key, sizeof m->key, "train/2013/%s_1305%02d_120000_KTLX_%" PRId64 "_r%d.nc", spec->cat,
             1 + r % 28, m->event_id, r);
}

static int write_bin(const char *dir, const char *set, int i, const char *field, const void *p, size_t n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/inputs/%s_%d_%s.bin", dir, set, i, field);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        return -1;
    }
    return 0;
}

static int write_inputs(const char *dir, const char *set, int i, const rec_values *v)
{
    int rc = 0;
    rc |= write_bin(dir, set, i, "DBZ", v->dbz, sizeof v->dbz);
    rc |= write_bin(dir, set, i, "VEL", v->vel, sizeof v->vel);
    rc |= write_bin(dir, set, i, "KDP", v->kdp, sizeof v->kdp);
    rc |= write_bin(dir, set, i, "range_folded_mask", v->rfm, sizeof v->rfm);
    rc |= write_bin(dir, set, i, "time", v->time, sizeof v->time);
    rc |= write_bin(dir, set, i, "nyquist_velocity", v->nyq, sizeof v->nyq);
    rc |= write_bin(dir, set, i, "elevation_code", v->elev, sizeof v->elev);
    rc |= write_bin(dir, set, i, "sequence", &v->seq, sizeof v->seq);
    return rc;
}

static void values_ptrs(const rec_values *v, const void *p[8])
{
    p[0] = v->dbz; p[1] = v->vel; p[2] = v->kdp; p[3] = v->rfm;
    p[4] = v->time; p[5] = v->nyq; p[6] = v->elev; p[7] = &v->seq;
}

static void json_meta(FILE *f, const tnrec_record_meta *m, const rec_spec *spec, int seed, int last)
{
    fprintf(f, "      {\"seed\": %d, \"label\": %d, \"category\": \"%s\", \"ef\": %d, \"event_id\": %" PRId64
            ", \"episode_id\": %" PRId64 ", \"time\": %" PRId64 ", \"key\": \"%s\"}%s\n",
            seed, m->label, spec->cat, m->ef, m->event_id, m->episode_id, m->time, m->key, last ? "" : ",");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: dump_fixture OUT_DIR\n");
        return 2;
    }
    const char *out = argv[1];
    char path[4200];
    snprintf(path, sizeof path, "%s/inputs", out);
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        perror(out);
        return 1;
    }
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        perror(path);
        return 1;
    }

    tnrec_schema schema;
    make_schema(&schema);
    CHECK_OK(tnrec_schema_check(&schema));
    tnrec_encoder *enc = NULL;
    CHECK_OK(tnrec_encoder_create(&enc, &schema, 3));
    if (!enc)
        return tnrec_test_result("dump_fixture");
    tnrec_blob blob = { 0 };
    rec_values *v = calloc(1, sizeof *v);
    if (!v)
        return 1;
    const void *ptrs[8];

    /* The dataset: 3 records per shard. */
    size_t nds = sizeof ds_recs / sizeof ds_recs[0];
    snprintf(path, sizeof path, "%s/ds", out);
    tnrec_dataset_options opt = { 0 };
    opt.max_shard_records = 3;
    tnrec_dataset_writer *dw = NULL;
    CHECK_OK(tnrec_dataset_writer_open(&dw, path, &schema, &opt));
    for (size_t i = 0; dw && i < nds; i++) {
        tnrec_record_meta m;
        make_values(v, (int)i);
        make_meta(&m, &ds_recs[i], (int)i);
        values_ptrs(v, ptrs);
        CHECK_OK(tnrec_encoder_encode(enc, ptrs, &blob));
        CHECK_OK(tnrec_dataset_writer_append(dw, &blob, &m));
        CHECK(write_inputs(out, "ds", (int)i, v) == 0);
    }
    for (size_t i = 0; dw && i < 2; i++)
        CHECK_OK(tnrec_dataset_writer_skip(dw, skipped[i][0], skipped[i][1]));
    if (dw)
        CHECK_OK(tnrec_dataset_writer_close(dw, "{\"source\": \"dump_fixture\", \"encoding\": \"mixed\"}"));

    /* A bare shard with seeds 100, 101, 102. */
    size_t nsingle = sizeof single_recs / sizeof single_recs[0];
    snprintf(path, sizeof path, "%s/single.tnr", out);
    tnrec_shard_writer *sw = NULL;
    CHECK_OK(tnrec_shard_writer_open(&sw, path, &schema));
    for (size_t i = 0; sw && i < nsingle; i++) {
        tnrec_record_meta m;
        make_values(v, 100 + (int)i);
        make_meta(&m, &single_recs[i], 100 + (int)i);
        values_ptrs(v, ptrs);
        CHECK_OK(tnrec_encoder_encode(enc, ptrs, &blob));
        CHECK_OK(tnrec_shard_writer_append(sw, &blob, &m));
        CHECK(write_inputs(out, "single", (int)i, v) == 0);
    }
    if (sw)
        CHECK_OK(tnrec_shard_writer_close(sw, NULL));

    /* A key that is not UTF-8 (a Latin-1 file name). */
    snprintf(path, sizeof path, "%s/latin1.tnr", out);
    tnrec_shard_writer *lw = NULL;
    CHECK_OK(tnrec_shard_writer_open(&lw, path, &schema));
    if (lw) {
        tnrec_record_meta m;
        make_values(v, 7);
        make_meta(&m, &ds_recs[0], 7);
        snprintf(m.key, sizeof m.key, "train/2013/caf\xe9.nc");
        values_ptrs(v, ptrs);
        CHECK_OK(tnrec_encoder_encode(enc, ptrs, &blob));
        CHECK_OK(tnrec_shard_writer_append(lw, &blob, &m));
        CHECK_OK(tnrec_shard_writer_close(lw, NULL));
    }

    /* A dataset with no records at all. */
    snprintf(path, sizeof path, "%s/empty", out);
    tnrec_dataset_writer *ew = NULL;
    CHECK_OK(tnrec_dataset_writer_open(&ew, path, &schema, NULL));
    if (ew)
        CHECK_OK(tnrec_dataset_writer_close(ew, NULL));

    /* expected.json: schema and metadata, in the form the checks read. */
    snprintf(path, sizeof path, "%s/expected.json", out);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fprintf(f, "{\n  \"fields\": [\n");
        for (uint32_t i = 0; i < schema.nfields; i++) {
            const tnrec_field *fl = &schema.fields[i];
            fprintf(f, "    {\"name\": \"%s\", \"encoding\": \"%s\", \"dtype\": \"%s\", \"shape\": [", fl->name,
                    tnrec_encoding_name(fl->encoding), tnrec_dtype_name(fl->dtype));
            for (uint32_t d = 0; d < fl->ndim; d++)
                fprintf(f, "%s%" PRIu32, d ? ", " : "", fl->shape[d]);
            fprintf(f, "], \"dims\": [");
            for (uint32_t d = 0; d < fl->ndim; d++)
                fprintf(f, "%s\"%s\"", d ? ", " : "", fl->dims[d]);
            fprintf(f, "], \"offset\": %.9g, \"scale\": %.9g, \"nodata\": %.9g, \"qmin\": %.9g, \"qmax\": %.9g}%s\n",
                    fl->offset, fl->scale, fl->nodata, fl->qmin, fl->qmax, i + 1 < schema.nfields ? "," : "");
        }
        fprintf(f, "  ],\n  \"sets\": {\n    \"ds\": [\n");
        for (size_t i = 0; i < nds; i++) {
            tnrec_record_meta m;
            make_meta(&m, &ds_recs[i], (int)i);
            json_meta(f, &m, &ds_recs[i], (int)i, i + 1 == nds);
        }
        fprintf(f, "    ],\n    \"single\": [\n");
        for (size_t i = 0; i < nsingle; i++) {
            tnrec_record_meta m;
            make_meta(&m, &single_recs[i], 100 + (int)i);
            json_meta(f, &m, &single_recs[i], 100 + (int)i, i + 1 == nsingle);
        }
        fprintf(f, "    ]\n  },\n  \"skipped\": [\n");
        for (size_t i = 0; i < 2; i++)
            fprintf(f, "    {\"input\": \"%s\", \"reason\": \"%s\"}%s\n", skipped[i][0], skipped[i][1],
                    i ? "" : ",");
        fprintf(f, "  ]\n}\n");
        CHECK(fclose(f) == 0);
    }

    free(v);
    tnrec_blob_free(&blob);
    tnrec_encoder_free(enc);
    return tnrec_test_result("dump_fixture");
}
