/* tests/train/test_loader_decode.c: the loader's batches against the
 * reference decode, bit for bit.
 *
 * The loader converts the fields straight into their NDHWC channels
 * (tnrec_decoder_fields_rows: all fields in one SIMD pass where they share
 * an encoding and have two sweeps, else field by field). The reference
 * here is the path it replaced: tnrec_decoder_field into a whole-field
 * float32 buffer, then one element at a time into channels. Datasets with
 * every float encoding (float32 and float16 with shuffle on and off,
 * uint8) side by side, no-data gates, signed zeros, half subnormals and
 * infinities, uint8 values outside [qmin, qmax], odd shapes (1, 2, 3 and
 * 600 sweeps; element counts that are not multiples of 8), frames fewer
 * than the dataset's, a mask with bytes 0, 1 and 255, variables named
 * out of schema order or more than once (3 to 8 fields of one encoding),
 * and the loader's own no-data value. Also run with TNREC_CODEC_PORTABLE=1
 * (test_loader_decode_portable) for the portable conversions and with
 * TNREC_CODEC_AVX512=0 (test_loader_decode_avx) for the AVX path where
 * the CPU has AVX-512. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tnrec_test.h"

/* f32 shuffled, f32, f16 shuffled, f16, u8, then more of each float
 * encoding with other constants (several fields of one encoding take the
 * one-pass interleave); then the mask */
#define NF 9

static const char *const names[NF + 1] = { "A32S", "B32", "C16S", "D16", "E8", "F32", "G16S", "H8", "I8",
                                           "range_folded_mask" };

static uint64_t rng(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}

/* A value with the awkward cases mixed in. */
static float value(uint64_t *s)
{
    uint64_t r = rng(s) % 40;
    switch (r) {
    case 0: case 1: case 2: case 3: case 4: case 5: return NAN;
    case 6: return -0.0f;
    case 7: return 0.0f;
    case 8: return 3.0e-6f;    /* half subnormal */
    case 9: return -1.0e-7f;   /* half subnormal */
    case 10: return 1.0e5f;    /* half infinity; uint8 clamped */
    case 11: return -7.5f;     /* below qmin */
    case 12: return 1.0e-40f;  /* float32 subnormal */
    default: return (float)((double)(rng(s) % 2000001) / 1000000.0 - 1.0) * 1.3f;
    }
}

static tnrec_err write_dataset(const char *dir, int n, int T, int A, int R, int S, uint64_t seed)
{
    tnrec_schema sc;
    memset(&sc, 0, sizeof sc);
    sc.nfields = NF + 1;
    const tnrec_encoding enc_of[NF] = { TNREC_ENC_FLOAT32, TNREC_ENC_FLOAT32, TNREC_ENC_FLOAT16, TNREC_ENC_FLOAT16,
                                        TNREC_ENC_UINT8,   TNREC_ENC_FLOAT32, TNREC_ENC_FLOAT16, TNREC_ENC_UINT8,
                                        TNREC_ENC_UINT8 };
    for (int f = 0; f <= NF; f++) {
        tnrec_field *fd = &sc.fields[f];
        snprintf(fd->name, sizeof fd->name, "%s", names[f]);
        fd->encoding = f < NF ? enc_of[f] : TNREC_ENC_RAW;
        fd->dtype = f < NF ? TNREC_DTYPE_F32 : TNREC_DTYPE_U8;
        fd->ndim = 4;
        fd->shape[0] = (uint32_t)T; fd->shape[1] = (uint32_t)A; fd->shape[2] = (uint32_t)R; fd->shape[3] = (uint32_t)S;
        snprintf(fd->dims[0], TNREC_NAME_MAX, "time");
        snprintf(fd->dims[1], TNREC_NAME_MAX, "azimuth");
        snprintf(fd->dims[2], TNREC_NAME_MAX, "range");
        snprintf(fd->dims[3], TNREC_NAME_MAX, "sweep");
        fd->shuffle = f == 0 || f == 2 || f == 6;
        fd->offset = f == 4 ? 0.25f : (f >= 5 ? -0.125f * (float)f : 0.0f);
        fd->scale = f == 4 ? 1.5f : (f >= 5 ? 0.5f + 0.25f * (float)f : 1.0f);
        fd->nodata = f == 1 ? -0.0f : (f >= 5 ? (float)f : -3.0f);
        fd->qmin = f == 7 ? -2.5f : (f == 8 ? -0.3f : -1.0f);
        fd->qmax = f == 7 ? 0.75f : (f == 8 ? 1.7f : 1.0f);
    }
    size_t elems = (size_t)T * A * R * S;
    float *vals[NF];
    uint8_t *mask = malloc(elems);
    for (int v = 0; v < NF; v++)
        vals[v] = malloc(elems * sizeof(float));
    tnrec_encoder *enc = NULL;
    tnrec_dataset_writer *w = NULL;
    tnrec_blob blob = { 0 };
    tnrec_dataset_options opt = { 0 };
    opt.max_shard_records = 4;
    tnrec_err err = tnrec_encoder_create(&enc, &sc, 1);
    if (!err)
        err = tnrec_dataset_writer_open(&w, dir, &sc, &opt);
    uint64_t rs = seed;
    for (int i = 0; i < n && !err; i++) {
        for (int v = 0; v < NF; v++)
            for (size_t k = 0; k < elems; k++)
                vals[v][k] = value(&rs);
        for (size_t k = 0; k < elems; k++) {
            uint64_t r = rng(&rs) % 4;
            mask[k] = r == 0 ? 1 : (r == 1 ? 255 : 0);
        }
        const void *ptrs[NF + 1];
        for (int v = 0; v < NF; v++)
            ptrs[v] = vals[v];
        ptrs[NF] = mask;
        tnrec_record_meta meta;
        memset(&meta, 0, sizeof meta);
        meta.label = i % 3 == 0;
        meta.category = meta.label ? TNREC_CAT_TOR : TNREC_CAT_NUL;
        meta.ef = -1;
        meta.time = 1368000000 + 600 * (int64_t)i;
        snprintf(meta.key, sizeof meta.key, "test/%04d.nc", i);
        err = tnrec_encoder_encode(enc, ptrs, &blob);
        if (!err)
            err = tnrec_dataset_writer_append(w, &blob, &meta);
    }
    if (!err) {
        err = tnrec_dataset_writer_close(w, "{}");
        w = NULL;
    }
    tnrec_dataset_writer_abort(w);
    tnrec_encoder_free(enc);
    tnrec_blob_free(&blob);
    for (int v = 0; v < NF; v++)
        free(vals[v]);
    free(mask);
    return err;
}

/* The reference sample: whole fields decoded, then interleaved. */
static void reference(const tnrec_dataset *ds, tnrec_decoder *dec, uint64_t rec, const int *fields, int nvars,
                      int mask_f, int frames, float *out)
{
    size_t shard_i;
    uint64_t local;
    CHECK_OK(tnrec_dataset_locate(ds, rec, &shard_i, &local));
    const tnrec_shard *sh = tnrec_dataset_shard(ds, shard_i);
    CHECK_OK(tnrec_decoder_load(dec, sh, local));
    const tnrec_field *fd = &tnrec_dataset_schema(ds)->fields[fields[0]];
    int T = (int)fd->shape[0], A = (int)fd->shape[1], R = (int)fd->shape[2], S = (int)fd->shape[3];
    int C = (nvars + (mask_f >= 0)) * S, t0 = T - frames;
    size_t n = tnrec_field_elems(fd);
    float *tmp = malloc(n * sizeof(float));
    uint8_t *tmp8 = malloc(n);
    for (int v = 0; v <= nvars; v++) {
        if (v == nvars && mask_f < 0)
            break;
        if (v < nvars)
            CHECK_OK(tnrec_decoder_field(dec, (uint32_t)fields[v], TNREC_DTYPE_F32, tmp, n * sizeof(float)));
        else
            CHECK_OK(tnrec_decoder_field(dec, (uint32_t)mask_f, TNREC_DTYPE_U8, tmp8, n));
        for (int t = t0; t < T; t++)
            for (int a = 0; a < A; a++)
                for (int r = 0; r < R; r++)
                    for (int s = 0; s < S; s++) {
                        size_t k = (((size_t)t * A + a) * R + r) * S + (size_t)s;
                        float *dst = out + (((size_t)(t - t0) * A + a) * R + r) * C + (size_t)v * S + (size_t)s;
                        *dst = v < nvars ? tmp[k] : (tmp8[k] ? 1.0f : 0.0f);
                    }
    }
    free(tmp);
    free(tmp8);
}

/* nodata: NULL, or the value no-data gates decode as (the loader's and the
 * reference decoder's override). */
static void check_config_nodata(const char *dir, const char *vars, int frames, int mask, int batch, int threads,
                                const float *nodata)
{
    tnrec_dataset *ds = NULL;
    CHECK_OK(tnrec_dataset_open(&ds, dir));
    if (!ds)
        return;
    const tnrec_schema *sc = tnrec_dataset_schema(ds);
    int fields[2 * NF], nvars = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", vars);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t && nvars < 2 * NF; t = strtok_r(NULL, ",", &save))
        fields[nvars++] = tnrec_schema_find(sc, t);
    int mask_f = mask ? tnrec_schema_find(sc, "range_folded_mask") : -1;
    tnrec_loader_config lc = { .batch = batch, .threads = threads, .prefetch = 2, .shuffle = 1, .seed = 5,
                               .frames = frames, .mask = mask, .variables = vars };
    lc.has_nodata = nodata != NULL;
    lc.nodata = nodata ? *nodata : 0.0f;
    tnrec_loader *l = NULL;
    CHECK_OK(tnrec_loader_create(&l, ds, &lc));
    tnrec_decoder *dec = NULL;
    CHECK_OK(tnrec_decoder_create(&dec));
    tnrec_decoder_set_nodata(dec, nodata);
    if (l && dec) {
        tnrec_input_shape s = tnrec_loader_shape(l);
        size_t elems = (size_t)s.frames * s.height * s.width * s.channels;
        float *ref = malloc(elems * sizeof(float));
        uint64_t seen = 0, diffs = 0;
        CHECK_OK(tnrec_loader_start(l, 1, 0));
        const tnrec_batch *b = NULL;
        while (tnrec_loader_next(l, &b) == TNREC_OK && b) {
            for (int i = 0; i < b->n; i++) {
                reference(ds, dec, b->index[i], fields, nvars, mask_f, frames, ref);
                const float *got = b->x + (size_t)i * elems;
                if (memcmp(got, ref, elems * sizeof(float)) != 0) {
                    for (size_t k = 0; k < elems; k++) {
                        uint32_t x, y;
                        memcpy(&x, got + k, 4);
                        memcpy(&y, ref + k, 4);
                        if (x != y && diffs++ < 5)
                            fprintf(stderr, "vars %s frames %d: record %llu element %zu (channel %zu): %08x, reference %08x\n",
                                    vars, frames, (unsigned long long)b->index[i], k, k % (size_t)s.channels, x, y);
                    }
                }
                seen++;
            }
        }
        CHECK(diffs == 0);
        CHECK(seen == tnrec_dataset_count(ds));
        free(ref);
    }
    tnrec_decoder_free(dec);
    tnrec_loader_free(l);
    tnrec_dataset_close(ds);
}

static void check_config(const char *dir, const char *vars, int frames, int mask, int batch, int threads)
{
    check_config_nodata(dir, vars, frames, mask, batch, threads, NULL);
}

/* tnrec_decoder_fields_rows refuses what tnrec_decoder_field_rows refuses,
 * and a field list that does not fit the stride. */
static void check_fields_rows_errors(const char *dir)
{
    tnrec_dataset *ds = NULL;
    tnrec_decoder *dec = NULL;
    CHECK_OK(tnrec_dataset_open(&ds, dir));
    CHECK_OK(tnrec_decoder_create(&dec));
    if (!ds || !dec) {
        tnrec_decoder_free(dec);
        tnrec_dataset_close(ds);
        return;
    }
    const tnrec_schema *sc = tnrec_dataset_schema(ds);
    uint32_t f[2] = { (uint32_t)tnrec_schema_find(sc, "C16S"), (uint32_t)tnrec_schema_find(sc, "D16") };
    float out[64];
    CHECK(tnrec_decoder_fields_rows(dec, f, 2, 0, 4, 2, out, 4) == TNREC_EINVAL); /* nothing loaded */
    size_t shard_i;
    uint64_t local;
    CHECK_OK(tnrec_dataset_locate(ds, 0, &shard_i, &local));
    CHECK_OK(tnrec_decoder_load(dec, tnrec_dataset_shard(ds, shard_i), local));
    CHECK_OK(tnrec_decoder_fields_rows(dec, f, 2, 0, 4, 2, out, 4));
    CHECK_OK(tnrec_decoder_fields_rows(dec, f, 0, 0, 4, 2, out, 4));
    CHECK(tnrec_decoder_fields_rows(dec, NULL, 2, 0, 4, 2, out, 4) == TNREC_EINVAL);
    CHECK(tnrec_decoder_fields_rows(dec, f, 2, 0, 4, 2, out, 3) == TNREC_EINVAL);
    CHECK(tnrec_decoder_fields_rows(dec, f, 2, 0, 4, 2, NULL, 4) == TNREC_EINVAL);
    CHECK(tnrec_decoder_fields_rows(dec, f, 2, 1u << 30, 4, 2, out, 4) == TNREC_ERANGE);
    uint32_t bad[2] = { f[0], 99 };
    CHECK(tnrec_decoder_fields_rows(dec, bad, 2, 0, 4, 2, out, 4) == TNREC_ENOTFOUND);
    tnrec_decoder_free(dec);
    tnrec_dataset_close(ds);
}

int main(void)
{
    const char *tmp = tnrec_test_dir();
    static const int shapes[][4] = { { 3, 5, 7, 3 }, { 4, 9, 13, 2 }, { 2, 3, 5, 1 }, { 2, 1, 2, 600 }, { 3, 24, 48, 2 } };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int *sh = shapes[k];
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/ds%zu", tmp, k);
        CHECK_OK(write_dataset(dir, 7, sh[0], sh[1], sh[2], sh[3], 100 + k));
        check_config(dir, "A32S,B32,C16S,D16,E8", sh[0], 1, 3, 2);
        check_config(dir, "E8,C16S,A32S", sh[0] - 1, 1, 2, 1);
        check_config(dir, "D16,B32", 1, 0, 4, 3);
        check_config(dir, "C16S", sh[0], 0, 5, 1);  /* one field, no mask: rows are contiguous */
        check_config(dir, "E8", 1, 0, 7, 2);
        check_config(dir, "B32", sh[0], 1, 3, 1);
        /* Fields of one encoding (and a mask), 3 to 7 of them: with two
         * sweeps, converted and interleaved together (tnrec_decoder_fields_rows). */
        check_config(dir, "A32S,B32,F32,B32,F32,A32S", sh[0], 1, 3, 2);
        check_config(dir, "C16S,D16,G16S,D16,C16S,G16S", sh[0] - 1, 0, 2, 1);
        check_config(dir, "E8,H8,I8,H8,E8", sh[0], 1, 4, 2);
        check_config(dir, "I8,E8,H8,E8", 1, 1, 3, 1);
        /* 4, 7 and 8 fields (with AVX-512, 8 rows at once; float32 there
         * only unshuffled) */
        check_config(dir, "E8,H8,I8", sh[0], 1, 3, 2);
        check_config(dir, "D16,G16S,C16S", sh[0] - 1, 1, 2, 1);
        check_config(dir, "B32,F32,B32,F32", sh[0], 0, 3, 2);
        check_config(dir, "C16S,D16,G16S,D16,C16S,G16S,D16", sh[0], 0, 3, 2);
        check_config(dir, "I8,H8,E8,I8,H8,E8", sh[0], 1, 2, 1);
        check_config(dir, "B32,F32,B32,F32,B32,F32,B32", 1, 1, 3, 2);
        check_config(dir, "E8,H8,I8,E8,H8,I8,E8,H8", sh[0], 0, 4, 2);
        check_config(dir, "G16S,D16,C16S,D16,G16S,D16,C16S", sh[0], 1, 3, 1);
        check_config(dir, "G16S,D16", sh[0], 1, 5, 2);
        const float fill = 0.5f;
        check_config_nodata(dir, "C16S,D16,G16S,D16,E8", sh[0], 1, 3, 2, &fill);
        check_config_nodata(dir, "H8,E8,I8,H8,E8,I8", sh[0], 0, 3, 1, &fill);
        if (k == 1)
            check_fields_rows_errors(dir);
    }
    return tnrec_test_result("test_loader_decode");
}
