/* benchmarks/bench_records.c: encode and decode throughput of the record
 * encodings on TorNet-shaped synthetic samples: six float32 moments
 * (DBZ, VEL, KDP, RHOHV, ZDR, WIDTH), each 4x120x240x2 with no-echo (NaN)
 * regions, plus the uint8 range_folded_mask, as one record.
 *
 * For each encoding (raw float32 as the baseline, float32, float16, uint8)
 * with byte shuffle on and off: encode N samples (encoder + shard writer),
 * then load and decode every record into float32 caller buffers. Each
 * measurement is repeated and the median reported. MB/s count the 5.76 MB
 * of decoded float32/uint8 data per sample on both sides; "load share" is
 * the part of decode time spent in tnrec_decoder_load (pread, XXH3, zstd).
 * Usage: bench_records [samples (32)] [repeats (5)] [zstd level (3)] [dir (/tmp)] */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "tnrec/tnrec.h"

enum { T = 4, AZ = 120, RG = 240, SW = 2, GATES = T * AZ * RG * SW, NVAR = 6, NDISTINCT = 8 };

static const char *const var_names[NVAR] = { "DBZ", "VEL", "KDP", "RHOHV", "ZDR", "WIDTH" };
static const float var_min[NVAR] = { -20.0f, -60.0f, -2.0f, 0.2f, -1.0f, 0.0f };
static const float var_max[NVAR] = { 60.0f, 60.0f, 5.0f, 1.04f, 8.0f, 9.0f };
static const float var_step[NVAR] = { 0.5f, 0.5f, 0.05f, 0.0033f, 0.0625f, 0.5f }; /* radar-like resolution */

typedef struct sample {
    float *var[NVAR];
    uint8_t *mask;
} sample;

static uint64_t rng(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static double unif(uint64_t *s) { return (double)(rng(s) >> 11) / 9007199254740992.0; }

/* A storm-like sample: smooth echo blobs (NaN outside), moments that vary
 * smoothly with noise, quantised to the instrument's resolution. */
static void make_sample(sample *smp, uint64_t seed)
{
    uint64_t s = seed * 7919 + 17;
    double cx[3], cy[3], rad[3];
    for (int b = 0; b < 3; b++) {
        cx[b] = unif(&s) * AZ;
        cy[b] = unif(&s) * RG;
        rad[b] = 12 + 20 * unif(&s);
    }
    for (int v = 0; v < NVAR; v++) {
        smp->var[v] = malloc(sizeof(float) * GATES);
        double fa = 0.02 + 0.05 * unif(&s), fr = 0.01 + 0.04 * unif(&s), ph = 6.28 * unif(&s);
        for (int t = 0; t < T; t++)
            for (int a = 0; a < AZ; a++)
                for (int r = 0; r < RG; r++)
                    for (int w = 0; w < SW; w++) {
                        size_t k = (((size_t)t * AZ + a) * RG + r) * SW + w;
                        double echo = 0;
                        for (int b = 0; b < 3; b++) {
                            double dx = a - cx[b] - 2.0 * t, dy = r - cy[b] - 1.5 * t;
                            echo += exp(-(dx * dx + dy * dy) / (2 * rad[b] * rad[b]));
                        }
                        if (echo < 0.35) {
                            smp->var[v][k] = NAN;
                            continue;
                        }
                        double base = 0.5 + 0.35 * sin(fa * a + fr * r + ph + 0.3 * w) * echo;
                        double noise = (unif(&s) - 0.5) * 0.03;
                        double x = var_min[v] + (var_max[v] - var_min[v]) * (base + noise);
                        smp->var[v][k] = var_step[v] * roundf((float)(x / var_step[v]));
                    }
    }
    smp->mask = malloc(GATES);
    for (size_t k = 0; k < GATES; k++)
        smp->mask[k] = (k / SW) % RG > 200 && unif(&s) < 0.3;
}

static void make_schema(tnrec_schema *sc, tnrec_encoding enc, uint32_t shuffle)
{
    static const char *const dims[4] = { "time", "azimuth", "range", "sweep" };
    memset(sc, 0, sizeof *sc);
    sc->nfields = NVAR + 1;
    for (int v = 0; v <= NVAR; v++) {
        tnrec_field *f = &sc->fields[v];
        snprintf(f->name, sizeof f->name, "%s", v < NVAR ? var_names[v] : "range_folded_mask");
        f->ndim = 4;
        f->shape[0] = T;
        f->shape[1] = AZ;
        f->shape[2] = RG;
        f->shape[3] = SW;
        for (int d = 0; d < 4; d++)
            snprintf(f->dims[d], sizeof f->dims[d], "%s", dims[d]);
        f->shuffle = shuffle;
        if (v == NVAR) {
            f->encoding = TNREC_ENC_RAW;
            f->dtype = TNREC_DTYPE_U8;
            continue;
        }
        f->encoding = enc;
        f->dtype = TNREC_DTYPE_F32;
        f->offset = (var_min[v] + var_max[v]) / 2;
        f->scale = (var_max[v] - var_min[v]) / 2;
        f->nodata = -3.0f;
        f->qmin = -1.0f;
        f->qmax = 1.0f;
    }
}

static void die(const char *what)
{
    fprintf(stderr, "bench_records: %s: %s\n", what, tnrec_error_last());
    exit(1);
}

int main(int argc, char **argv)
{
    int nsamples = argc > 1 ? atoi(argv[1]) : 32, repeats = argc > 2 ? atoi(argv[2]) : 5;
    int level = argc > 3 ? atoi(argv[3]) : 3;
    const char *dir = argc > 4 ? argv[4] : "/tmp";
    if (nsamples < 1 || repeats < 1) {
        fprintf(stderr, "usage: %s [samples] [repeats] [zstd level] [dir]\n", argv[0]);
        return 2;
    }
    sample smp[NDISTINCT];
    for (int i = 0; i < NDISTINCT; i++)
        make_sample(&smp[i], (uint64_t)i);
    double nan_frac = 0;
    for (size_t k = 0; k < GATES; k++)
        nan_frac += isnan(smp[0].var[0][k]);
    const double bytes_per_sample = (double)GATES * (4.0 * NVAR + 1.0);
    printf("samples %d (%d distinct, %.0f%% no echo), repeats %d, zstd level %d, %.2f MB decoded per sample\n\n",
           nsamples, NDISTINCT, 100.0 * nan_frac / GATES, repeats, level, bytes_per_sample / 1e6);
    printf("| encoding | shuffle | MB/sample | encode MB/s | encode samples/s | decode MB/s | decode samples/s | load share |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    char path[4096];
    snprintf(path, sizeof path, "%s/bench_records_%ld.tnr", dir, (long)getpid());
    float *out = malloc(sizeof(float) * GATES);
    uint8_t *mask_out = malloc(GATES);
    /* Repeats are the outer loop, so that load on the machine falls on all
     * configurations alike; each configuration reports its median. */
    enum { NCONF = 8, MAXREP = 64 };
    const tnrec_encoding encs[4] = { TNREC_ENC_RAW, TNREC_ENC_FLOAT32, TNREC_ENC_FLOAT16, TNREC_ENC_UINT8 };
    if (repeats > MAXREP)
        repeats = MAXREP;
    static double enc_t[NCONF][MAXREP], dec_t[NCONF][MAXREP], load_t[NCONF][MAXREP];
    uint64_t file_size[NCONF] = { 0 };
    tnrec_blob blob = { 0 };
    for (int r = 0; r < repeats; r++) {
        for (int c = 0; c < NCONF; c++) {
            tnrec_schema sc;
            make_schema(&sc, encs[c / 2], (uint32_t)(c % 2));
            tnrec_encoder *enc;
            tnrec_shard_writer *w;
            if (tnrec_encoder_create(&enc, &sc, level) || tnrec_shard_writer_open(&w, path, &sc))
                die("encoder");
            double t0 = bench_now();
            for (int i = 0; i < nsamples; i++) {
                const sample *s = &smp[i % NDISTINCT];
                const void *values[NVAR + 1];
                for (int v = 0; v < NVAR; v++)
                    values[v] = s->var[v];
                values[NVAR] = s->mask;
                tnrec_record_meta m = { .label = i % 2, .category = TNREC_CAT_NUL, .ef = -1 };
                snprintf(m.key, sizeof m.key, "bench/%d.nc", i);
                if (tnrec_encoder_encode(enc, values, &blob) || tnrec_shard_writer_append(w, &blob, &m))
                    die("encode");
            }
            if (tnrec_shard_writer_close(w, NULL))
                die("close");
            enc_t[c][r] = bench_now() - t0;
            tnrec_encoder_free(enc);

            tnrec_shard *shard;
            tnrec_decoder *dec;
            if (tnrec_shard_open(&shard, path) || tnrec_decoder_create(&dec))
                die("open");
            file_size[c] = tnrec_shard_file_size(shard);
            t0 = bench_now();
            for (int i = 0; i < nsamples; i++) {
                if (tnrec_decoder_load(dec, shard, (uint64_t)i))
                    die("load");
                for (uint32_t v = 0; v < NVAR; v++)
                    if (tnrec_decoder_field(dec, v, TNREC_DTYPE_F32, out, sizeof(float) * GATES))
                        die("decode");
                if (tnrec_decoder_field(dec, NVAR, TNREC_DTYPE_U8, mask_out, GATES))
                    die("decode mask");
            }
            dec_t[c][r] = bench_now() - t0;
            t0 = bench_now(); /* the same loads without decoding fields: pread, XXH3, zstd */
            for (int i = 0; i < nsamples; i++)
                if (tnrec_decoder_load(dec, shard, (uint64_t)i))
                    die("load");
            load_t[c][r] = bench_now() - t0;
            tnrec_decoder_free(dec);
            tnrec_shard_close(shard);
            unlink(path);
        }
    }
    for (int c = 0; c < NCONF; c++) {
        double te = bench_median(enc_t[c], repeats), td = bench_median(dec_t[c], repeats);
        double tl = bench_median(load_t[c], repeats);
        tnrec_encoding e = encs[c / 2];
        printf("| %s%s | %s | %.3f | %.0f | %.1f | %.0f | %.1f | %.0f %% |\n", tnrec_encoding_name(e),
               e == TNREC_ENC_RAW ? " (float32)" : "", c % 2 ? "on" : "off", (double)file_size[c] / nsamples / 1e6,
               bytes_per_sample * nsamples / te / 1e6, nsamples / te, bytes_per_sample * nsamples / td / 1e6,
               nsamples / td, 100.0 * tl / td);
    }
    tnrec_blob_free(&blob);
    free(out);
    free(mask_out);
    for (int i = 0; i < NDISTINCT; i++) {
        for (int v = 0; v < NVAR; v++)
            free(smp[i].var[v]);
        free(smp[i].mask);
    }
    return 0;
}
