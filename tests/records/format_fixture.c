/* tests/records/format_fixture.c: writes a small dataset covering every
 * encoding for check_format.py, which reads it back independently of
 * libtnrec, from docs/format.md alone.
 * Usage: format_fixture <dir>: writes <dir>/ds (3 records, 2 per shard)
 * and <dir>/inputs.bin (each record's input arrays, in schema order). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tnrec/tnrec.h"

enum { NREC = 3, G = 2 * 3 * 4 * 2 };

static void field(tnrec_field *f, const char *name, tnrec_encoding enc, tnrec_dtype dt, uint32_t ndim,
                  const uint32_t *shape, uint32_t shuffle, float offset, float scale)
{
    static const char *const dims[4] = { "time", "azimuth", "range", "sweep" };
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->encoding = enc;
    f->dtype = dt;
    f->ndim = ndim;
    for (uint32_t d = 0; d < ndim; d++) {
        f->shape[d] = shape[d];
        snprintf(f->dims[d], sizeof f->dims[d], "%s", ndim == 4 ? dims[d] : "n");
    }
    f->shuffle = shuffle;
    f->offset = offset;
    f->scale = scale;
    f->nodata = -3.0f;
    f->qmin = -1.0f;
    f->qmax = 1.0f;
}

static float value(int rec, int field_no, int k)
{
    if ((k * 7 + rec + field_no) % 9 == 0)
        return NAN;
    static const float special[6] = { 1e6f, -1e6f, 1e-6f, -2.5e-7f, 65519.0f, 0.0f };
    if (field_no == 1 && k < 6)
        return special[k]; /* overflow, subnormal and rounding edges of float16 */
    return -25.0f + 0.37f * (float)((k * 31 + rec * 17 + field_no * 5) % 260) + 0.001f * (float)k;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <dir>\n", argv[0]);
        return 2;
    }
    static const uint32_t radar[4] = { 2, 3, 4, 2 }, five[1] = { 5 }, two[1] = { 2 };
    tnrec_schema s;
    memset(&s, 0, sizeof s);
    s.nfields = 8;
    field(&s.fields[0], "DBZ", TNREC_ENC_FLOAT32, TNREC_DTYPE_F32, 4, radar, 1, 20.0f, 40.0f);
    field(&s.fields[1], "VEL", TNREC_ENC_FLOAT16, TNREC_DTYPE_F32, 4, radar, 1, 0.0f, 1.0f);
    field(&s.fields[2], "KDP", TNREC_ENC_UINT8, TNREC_DTYPE_F32, 4, radar, 1, 1.5f, 3.5f);
    field(&s.fields[3], "RHOHV", TNREC_ENC_FLOAT16, TNREC_DTYPE_F32, 4, radar, 0, 0.62f, 0.42f);
    field(&s.fields[4], "range_folded_mask", TNREC_ENC_RAW, TNREC_DTYPE_U8, 4, radar, 0, 0.0f, 1.0f);
    field(&s.fields[5], "counts", TNREC_ENC_RAW, TNREC_DTYPE_I16, 1, five, 1, 0.0f, 1.0f);
    field(&s.fields[6], "elevation", TNREC_ENC_RAW, TNREC_DTYPE_F64, 1, two, 1, 0.0f, 1.0f);
    field(&s.fields[7], "site", TNREC_ENC_RAW, TNREC_DTYPE_I32, 0, NULL, 1, 0.0f, 1.0f);

    char ds_dir[4096], in_path[4096];
    snprintf(ds_dir, sizeof ds_dir, "%s/ds", argv[1]);
    snprintf(in_path, sizeof in_path, "%s/inputs.bin", argv[1]);
    FILE *in = fopen(in_path, "wb");
    tnrec_encoder *enc = NULL;
    tnrec_dataset_writer *w = NULL;
    tnrec_blob blob = { 0 };
    tnrec_dataset_options opt = { .max_shard_records = 2, .prefix = "fmt" };
    tnrec_err e = in ? tnrec_encoder_create(&enc, &s, 3) : TNREC_EIO;
    if (!e)
        e = tnrec_dataset_writer_open(&w, ds_dir, &s, &opt);
    for (int r = 0; r < NREC && !e; r++) {
        float f32[4][G];
        uint8_t mask[G];
        int16_t counts[5];
        double elev[2] = { 0.5 + r, 1.45 + r };
        int32_t site = -12345 + r;
        for (int f = 0; f < 4; f++)
            for (int k = 0; k < G; k++)
                f32[f][k] = value(r, f, k);
        for (int k = 0; k < G; k++)
            mask[k] = (uint8_t)((k + r) % 3 == 0);
        for (int k = 0; k < 5; k++)
            counts[k] = (int16_t)(k * 9000 - 20000 + r);
        const void *values[8] = { f32[0], f32[1], f32[2], f32[3], mask, counts, elev, &site };
        fwrite(f32, sizeof f32, 1, in);
        fwrite(mask, sizeof mask, 1, in);
        fwrite(counts, sizeof counts, 1, in);
        fwrite(elev, sizeof elev, 1, in);
        fwrite(&site, sizeof site, 1, in);
        tnrec_record_meta m = { .label = r == 1, .category = r == 1 ? TNREC_CAT_TOR : (r == 0 ? TNREC_CAT_NUL : TNREC_CAT_WRN),
                                .ef = r == 1 ? 2 : -1, .event_id = 100 + r, .episode_id = -7 - r,
                                .time = 1368000000 + 300 * r };
        snprintf(m.key, sizeof m.key, "train/2013/sample_%d.nc", r);
        e = tnrec_encoder_encode(enc, values, &blob);
        if (!e)
            e = tnrec_dataset_writer_append(w, &blob, &m);
    }
    if (!e)
        e = tnrec_dataset_writer_skip(w, "train/2013/bad.nc", "cannot read DBZ");
    if (!e) {
        e = tnrec_dataset_writer_close(w, "{\"fixture\": \"format\"}");
        w = NULL;
    }
    tnrec_dataset_writer_abort(w);
    tnrec_encoder_free(enc);
    tnrec_blob_free(&blob);
    if (in && fclose(in) != 0 && !e)
        e = TNREC_EIO;
    if (e) {
        fprintf(stderr, "format_fixture: %s\n", tnrec_error_last());
        return 1;
    }
    return 0;
}
