/* tests/records/test_codec.c: every encoding round-trips within its bound
 * (raw exact for several dtypes, float32 exact, float16 round-to-nearest-
 * even against an independent reference, uint8 within half a step), NaN
 * becomes nodata with an exact mask, shuffle on and off decode alike, and
 * the decoder refuses wrong types and short buffers. */
#include "rec_fixture.h"
#include "tnrec_test.h"

static char dir[4096];

/* Value of binary16 h, computed independently of the library. */
static double ref_f16_value(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

/* Round-to-nearest-even binary16 of a non-NaN float, by search. */
static uint16_t ref_f16(float x)
{
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    double a = fabs((double)x);
    if (a >= 65520.0)
        return sign | 0x7c00;
    uint32_t lo = 0, hi = 0x7bff;
    while (lo < hi) { /* largest h with value(h) <= a */
        uint32_t mid = (lo + hi + 1) / 2;
        if (ref_f16_value((uint16_t)mid) <= a)
            lo = mid;
        else
            hi = mid - 1;
    }
    double below = ref_f16_value((uint16_t)lo);
    double above = lo == 0x7bff ? 65536.0 : ref_f16_value((uint16_t)(lo + 1));
    uint32_t h = lo;
    if (a - below > above - a || (a - below == above - a && (lo & 1)))
        h = lo + 1;
    return (uint16_t)(sign | h);
}

/* Writes one record of `schema` to a shard, reopens it and loads it. */
static int roundtrip(const tnrec_schema *schema, const void *const *values, const char *name, tnrec_shard **shard,
                     tnrec_decoder **dec)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.tnr", dir, name);
    tnrec_encoder *enc = NULL;
    tnrec_shard_writer *w = NULL;
    tnrec_blob blob = { 0 };
    tnrec_record_meta meta = { .label = 0, .category = TNREC_CAT_NUL, .ef = -1 };
    snprintf(meta.key, sizeof meta.key, "%s", name);
    int ok = tnrec_encoder_create(&enc, schema, 3) == TNREC_OK && tnrec_encoder_encode(enc, values, &blob) == TNREC_OK &&
             tnrec_shard_writer_open(&w, path, schema) == TNREC_OK &&
             tnrec_shard_writer_append(w, &blob, &meta) == TNREC_OK && tnrec_shard_writer_close(w, NULL) == TNREC_OK &&
             tnrec_shard_open(shard, path) == TNREC_OK && tnrec_decoder_create(dec) == TNREC_OK &&
             tnrec_decoder_load(*dec, *shard, 0) == TNREC_OK;
    tnrec_encoder_free(enc);
    tnrec_blob_free(&blob);
    CHECK(ok);
    return ok;
}

static void test_encoding(tnrec_encoding encoding, uint32_t shuffle)
{
    tnrec_schema schema;
    fx_schema(&schema, encoding, shuffle);
    fx_record r;
    fx_fill(&r, 7);
    r.dbz[0] = 1e30f;  /* beyond float16 and the uint8 range */
    r.dbz[1] = -1e30f;
    r.dbz[2] = 20.0f;  /* normalises to 0 */
    r.dbz[3] = NAN;
    char name[64];
    snprintf(name, sizeof name, "enc_%s_%u", tnrec_encoding_name(encoding), shuffle);
    tnrec_shard *shard = NULL;
    tnrec_decoder *dec = NULL;
    if (!roundtrip(&schema, r.values, name, &shard, &dec))
        goto done;
    const tnrec_field *f = &schema.fields[0];
    float out[60], out_m[60];
    uint16_t out16[60];
    uint8_t mask[60];
    if (encoding == TNREC_ENC_RAW) {
        CHECK_OK(tnrec_decoder_field(dec, 0, TNREC_DTYPE_F32, out, sizeof out));
        CHECK(memcmp(out, r.dbz, sizeof out) == 0); /* bit for bit, NaN included */
    } else {
        CHECK_OK(tnrec_decoder_field(dec, 0, TNREC_DTYPE_F32, out, sizeof out));
        CHECK_OK(tnrec_decoder_field_mask(dec, 0, out_m, sizeof out_m, mask));
        CHECK_OK(tnrec_decoder_field(dec, 0, TNREC_DTYPE_F16, out16, sizeof out16));
        CHECK(memcmp(out, out_m, sizeof out) == 0);
        for (int k = 0; k < 60; k++) {
            float x = r.dbz[k];
            if (isnan(x)) {
                CHECK(mask[k] == 1 && out[k] == f->nodata && out16[k] == ref_f16(f->nodata));
                continue;
            }
            CHECK(mask[k] == 0);
            float n = (x - f->offset) / f->scale;
            if (encoding == TNREC_ENC_FLOAT32) {
                CHECK(out[k] == n);
            } else if (encoding == TNREC_ENC_FLOAT16) {
                uint16_t h = ref_f16(n);
                CHECK(out16[k] == h);
                CHECK((double)out[k] == ref_f16_value(h) || (isinf(out[k]) && (h & 0x7fff) == 0x7c00));
                if (fabsf(n) < 65504.0f) {
                    double bound = fabs((double)n) >= ldexp(1, -14) ? fabs((double)n) * ldexp(1, -11) : ldexp(1, -25);
                    CHECK(fabs((double)out[k] - (double)n) <= bound);
                }
            } else {
                float c = n < f->qmin ? f->qmin : (n > f->qmax ? f->qmax : n);
                CHECK(fabsf(out[k] - c) <= (f->qmax - f->qmin) / 508.0f * 1.0001f);
                CHECK(out16[k] == ref_f16(out[k]));
                /* bit for bit one of docs/format.md's 255 decoded values, in
                 * float arithmetic (whichever path decoded it) */
                int code_found = 0;
                for (int q = 1; q < 256 && !code_found; q++) {
                    float v = f->qmin + (float)(q - 1) * (f->qmax - f->qmin) / 254.0f;
                    code_found = memcmp(&v, &out[k], sizeof v) == 0;
                }
                CHECK(code_found);
            }
        }
        CHECK(encoding != TNREC_ENC_FLOAT16 || isinf(out[0]));
        CHECK(out[2] == 0.0f || encoding == TNREC_ENC_UINT8);
    }
    /* The raw fields come back bit for bit whatever the shuffle flag. */
    uint8_t m8[60];
    int16_t c16[7];
    double e64[3];
    int32_t site;
    CHECK_OK(tnrec_decoder_field(dec, 1, TNREC_DTYPE_U8, m8, sizeof m8));
    CHECK_OK(tnrec_decoder_field(dec, 2, TNREC_DTYPE_I16, c16, sizeof c16));
    CHECK_OK(tnrec_decoder_field(dec, 3, TNREC_DTYPE_F64, e64, sizeof e64));
    CHECK_OK(tnrec_decoder_field(dec, 4, TNREC_DTYPE_I32, &site, sizeof site));
    CHECK(memcmp(m8, r.mask, sizeof m8) == 0);
    CHECK(memcmp(c16, r.counts, sizeof c16) == 0);
    CHECK(memcmp(e64, r.elevation, sizeof e64) == 0);
    CHECK(site == r.site);
    CHECK_OK(tnrec_decoder_field_mask(dec, 1, out_m, sizeof out_m, mask) == TNREC_EINVAL ? TNREC_OK : TNREC_EINTERNAL);

    /* Refusals: wrong type, short buffer, missing field. */
    CHECK(tnrec_decoder_field(dec, 2, TNREC_DTYPE_I32, out, sizeof out) == TNREC_EINVAL);
    CHECK(tnrec_decoder_field(dec, 0, TNREC_DTYPE_F32, out, sizeof out - 4) == TNREC_ERANGE);
    CHECK(tnrec_decoder_field(dec, 5, TNREC_DTYPE_F32, out, sizeof out) == TNREC_ENOTFOUND);
    if (encoding != TNREC_ENC_RAW)
        CHECK(tnrec_decoder_field(dec, 0, TNREC_DTYPE_F64, out, sizeof out) == TNREC_EINVAL);
done:
    tnrec_decoder_free(dec);
    tnrec_shard_close(shard);
}

/* float16 conversion on every half value, every tie and its neighbours,
 * overflow and subnormal edges, and random floats. */
static void test_float16_exhaustive(uint32_t shuffle)
{
    enum { N = 65536 * 4 + 4096 };
    float *x = malloc(N * sizeof *x), *back = malloc(N * sizeof *back);
    uint16_t *h = malloc(N * sizeof *h);
    size_t n = 0;
    for (uint32_t v = 0; v < 65536; v++) {
        if ((v & 0x7c00) == 0x7c00 && (v & 0x3ff))
            continue; /* NaN */
        x[n++] = (float)ref_f16_value((uint16_t)v) * ((v & 0x7fff) == 0x7c00 ? INFINITY : 1.0f);
        if ((v & 0x7fff) == 0x7c00) {
            x[n - 1] = (v & 0x8000) ? -INFINITY : INFINITY;
            continue;
        }
        if ((v & 0x7fff) < 0x7bff) { /* the tie to the next value, and just around it */
            double mid = (ref_f16_value((uint16_t)v) + ref_f16_value((uint16_t)(v + 1))) / 2;
            float m = (float)mid;
            x[n++] = m;
            x[n++] = nextafterf(m, INFINITY);
            x[n++] = nextafterf(m, -INFINITY);
        }
    }
    const float edges[] = { 65504.0f, 65519.99f, 65520.0f, 65536.0f, 1e-8f, 2.9802322e-8f, 2.98023259e-8f,
                            5.9604645e-8f, 6.1035156e-5f, 6.1035152e-5f, -0.0f, 0.0f, 1e-45f, 3.4e38f };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        x[n++] = edges[i];
    uint64_t s = 42;
    while (n < N) {
        uint32_t bits = (uint32_t)fx_rand(&s);
        float f;
        memcpy(&f, &bits, 4);
        if (!isnan(f))
            x[n++] = f;
    }
    tnrec_schema schema;
    memset(&schema, 0, sizeof schema);
    schema.nfields = 1;
    uint32_t shape[1] = { (uint32_t)n };
    fx_field(&schema.fields[0], "x", TNREC_ENC_FLOAT16, TNREC_DTYPE_F32, 1, shape, shuffle);
    schema.fields[0].offset = 0.0f;
    schema.fields[0].scale = 1.0f;
    const void *values[1] = { x };
    tnrec_shard *shard = NULL;
    tnrec_decoder *dec = NULL;
    if (roundtrip(&schema, values, shuffle ? "f16_exhaustive_shuffled" : "f16_exhaustive", &shard, &dec)) {
        CHECK_OK(tnrec_decoder_field(dec, 0, TNREC_DTYPE_F16, h, N * sizeof *h));
        CHECK_OK(tnrec_decoder_field(dec, 0, TNREC_DTYPE_F32, back, N * sizeof *back));
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) {
            uint16_t want = ref_f16(x[i]);
            double wv = (want & 0x7fff) == 0x7c00 ? ((want & 0x8000) ? -INFINITY : INFINITY) : ref_f16_value(want);
            if (h[i] != want || (double)back[i] != wv || !!signbit(back[i]) != ((want & 0x8000) != 0)) {
                if (bad++ < 5)
                    fprintf(stderr, "float16 of %.9g: got 0x%04x (%.9g), want 0x%04x\n", (double)x[i], h[i],
                            (double)back[i], want);
            }
        }
        CHECK(bad == 0);
    }
    tnrec_decoder_free(dec);
    tnrec_shard_close(shard);
    free(x);
    free(back);
    free(h);
}

static void test_schema_rules(void)
{
    tnrec_schema s;
    fx_schema(&s, TNREC_ENC_FLOAT16, 1);
    CHECK_OK(tnrec_schema_check(&s));
    CHECK(tnrec_schema_find(&s, "counts") == 2 && tnrec_schema_find(&s, "nope") == -1);
    CHECK(tnrec_field_stored_bytes(&s.fields[0]) == 120 && tnrec_field_elems(&s.fields[4]) == 1);
    tnrec_schema t = s;
    t.fields[0].dtype = TNREC_DTYPE_I16;
    CHECK(tnrec_schema_check(&t) == TNREC_EINVAL);
    t = s;
    t.fields[0].scale = 0.0f;
    CHECK(tnrec_schema_check(&t) == TNREC_EINVAL);
    t = s;
    snprintf(t.fields[1].name, sizeof t.fields[1].name, "DBZ");
    CHECK(tnrec_schema_check(&t) == TNREC_EINVAL && strstr(tnrec_error_last(), "DBZ"));
    t = s;
    t.fields[0].encoding = TNREC_ENC_UINT8;
    t.fields[0].qmin = 2.0f;
    CHECK(tnrec_schema_check(&t) == TNREC_EINVAL);
    t = s;
    t.fields[2].shape[0] = 0;
    CHECK(tnrec_schema_check(&t) == TNREC_EINVAL);
    t = s;
    t.nfields = 0;
    CHECK(tnrec_schema_check(&t) == TNREC_EINVAL);
    CHECK(tnrec_category_parse("WRN") == TNREC_CAT_WRN && tnrec_category_parse("x") == TNREC_CAT_UNKNOWN);
    CHECK(strcmp(tnrec_dtype_name(TNREC_DTYPE_I64), "int64") == 0 && tnrec_dtype_size(TNREC_DTYPE_F64) == 8);
    tnrec_encoder *enc = NULL;
    CHECK(tnrec_encoder_create(&enc, &s, 0) == TNREC_EINVAL && enc == NULL);
    CHECK(tnrec_encoder_create(&enc, &s, 20) == TNREC_EINVAL && enc == NULL);
    CHECK(tnrec_encoder_create(&enc, &s, TNREC_ZSTD_LEVEL_MIN - 1) == TNREC_EINVAL && enc == NULL);
    CHECK_OK(tnrec_encoder_create(&enc, &s, TNREC_ZSTD_LEVEL_MIN));
    tnrec_encoder_free(enc);
}

/* uint8 codes of format.md 2.3, computed here in float32 as the format
 * states them, for every kind of input: no data, infinities, signed zeros,
 * out of range, random bits, and each code's rounding boundary and its
 * float neighbours. The decoder's values map back to codes one to one. */
static uint8_t ref_u8(float x, float off, float scale, float qmin, float qmax)
{
    if (isnan(x))
        return 0;
    float n = (x - off) / scale;
    n = n < qmin ? qmin : (n > qmax ? qmax : n);
    float c = floorf((n - qmin) / (qmax - qmin) * 254.0f + 0.5f);
    c = c < 0.0f ? 0.0f : (c > 254.0f ? 254.0f : c);
    return (uint8_t)(1 + (int)c);
}

static void test_uint8_codes(void)
{
    enum { N = (1 << 18) + 4093 }; /* not a multiple of the SIMD width */
    const float off = 20.0f, scale = 40.0f, qmin = -1.0f, qmax = 1.0f, nodata = -3.0f;
    float *x = malloc(N * sizeof *x), *back = malloc(N * sizeof *back);
    size_t n = 0;
    const float edges[] = { NAN, INFINITY, -INFINITY, 0.0f, -0.0f, -20.0f, 60.0f, -20.0001f, 60.0001f,
                            1e30f, -1e30f, 3.4e38f, -3.4e38f, 1e-45f, 20.0f };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        x[n++] = edges[i];
    for (int c = 0; c <= 254; c++) { /* the boundary between code c and c + 1, in input units */
        float b = ((float)c + 0.5f) / 254.0f * (qmax - qmin) + qmin;
        float in = b * scale + off;
        x[n++] = in;
        x[n++] = nextafterf(in, INFINITY);
        x[n++] = nextafterf(in, -INFINITY);
    }
    uint64_t s = 7;
    while (n < N) {
        uint64_t r = fx_rand(&s);
        float f;
        if (r & 1) { /* random bits, NaN included */
            uint32_t bits = (uint32_t)(r >> 16);
            memcpy(&f, &bits, 4);
        } else { /* the range that matters, densely */
            f = -30.0f + 100.0f * (float)((r >> 11) & 0xffffff) / 16777216.0f;
        }
        x[n++] = f;
    }
    tnrec_schema schema;
    memset(&schema, 0, sizeof schema);
    schema.nfields = 1;
    uint32_t shape[1] = { (uint32_t)n };
    fx_field(&schema.fields[0], "x", TNREC_ENC_UINT8, TNREC_DTYPE_F32, 1, shape, 0);
    schema.fields[0].offset = off;
    schema.fields[0].scale = scale;
    schema.fields[0].qmin = qmin;
    schema.fields[0].qmax = qmax;
    schema.fields[0].nodata = nodata;
    float lut[256];
    lut[0] = nodata;
    for (int c = 1; c < 256; c++)
        lut[c] = qmin + (float)(c - 1) * (qmax - qmin) / 254.0f;
    const void *values[1] = { x };
    tnrec_shard *shard = NULL;
    tnrec_decoder *dec = NULL;
    if (roundtrip(&schema, values, "u8_codes", &shard, &dec)) {
        CHECK_OK(tnrec_decoder_field(dec, 0, TNREC_DTYPE_F32, back, N * sizeof *back));
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) {
            uint8_t want = ref_u8(x[i], off, scale, qmin, qmax);
            if (memcmp(&back[i], &lut[want], sizeof(float)) != 0 && bad++ < 5)
                fprintf(stderr, "uint8 of %.9g: decoded %.9g, want code %u (%.9g)\n", (double)x[i],
                        (double)back[i], want, (double)lut[want]);
        }
        CHECK(bad == 0);
    }
    tnrec_decoder_free(dec);
    tnrec_shard_close(shard);
    free(x);
    free(back);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s", tnrec_test_dir());
    const tnrec_encoding encs[] = { TNREC_ENC_RAW, TNREC_ENC_FLOAT32, TNREC_ENC_FLOAT16, TNREC_ENC_UINT8 };
    for (int e = 0; e < 4; e++)
        for (uint32_t sh = 0; sh < 2; sh++)
            test_encoding(encs[e], sh);
    test_float16_exhaustive(0);
    test_float16_exhaustive(1);
    test_uint8_codes();
    test_schema_rules();
    return tnrec_test_result("test_codec");
}
