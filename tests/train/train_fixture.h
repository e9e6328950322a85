/* tests/train/train_fixture.h: small TorNet-like datasets for trainer
 * tests, written with the public records API.
 *
 * Schema as 'tnrec build' makes it: DBZ, VEL, KDP, RHOHV, ZDR, WIDTH as
 * float16 (time, azimuth, range, sweep), no data decoded as -3, and
 * range_folded_mask raw uint8. Tornadic samples (label 1, category TOR)
 * carry a velocity couplet (+/- neighbours in azimuth) in every frame;
 * the others have noise and, for WRN, a one-signed velocity blob. No
 * echo (NaN) covers a far-range patch of sweep 1. About a third of the
 * samples are tornadic. Each record's range_limits (float32[2], metres)
 * puts its chip at its own range, 250 m gates from 0 to 30 km out. */
#ifndef TNREC_TRAIN_FIXTURE_H
#define TNREC_TRAIN_FIXTURE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tnrec/tnrec.h"

static const char *const fixture_vars[6] = { "DBZ", "VEL", "KDP", "RHOHV", "ZDR", "WIDTH" };

static uint64_t fixture_rng(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}
static float fixture_unif(uint64_t *s) { return (float)((double)fixture_rng(s) * 0x1.0p-53); }

/* range_limits of every record: 1 a window per record (above), 0 no such
 * field, -1 a damaged one ([5 km, 5 km]). */
static int fixture_limits = 1;

/* Writes n samples of T x A x R x 2 to dir. max_records > 0 splits shards. */
static tnrec_err fixture_write(const char *dir, int n, int T, int A, int R, uint64_t seed, uint64_t max_records)
{
    const int S = 2;
    tnrec_schema sc;
    memset(&sc, 0, sizeof sc);
    sc.nfields = fixture_limits ? 8 : 7;
    for (int f = 0; f < 7; f++) {
        tnrec_field *fd = &sc.fields[f];
        snprintf(fd->name, sizeof fd->name, "%s", f < 6 ? fixture_vars[f] : "range_folded_mask");
        fd->encoding = f < 6 ? TNREC_ENC_FLOAT16 : TNREC_ENC_RAW;
        fd->dtype = f < 6 ? TNREC_DTYPE_F32 : TNREC_DTYPE_U8;
        fd->ndim = 4;
        fd->shape[0] = (uint32_t)T; fd->shape[1] = (uint32_t)A; fd->shape[2] = (uint32_t)R; fd->shape[3] = (uint32_t)S;
        snprintf(fd->dims[0], TNREC_NAME_MAX, "time");
        snprintf(fd->dims[1], TNREC_NAME_MAX, "azimuth");
        snprintf(fd->dims[2], TNREC_NAME_MAX, "range");
        snprintf(fd->dims[3], TNREC_NAME_MAX, "sweep");
        fd->shuffle = 1;
        fd->offset = 0.0f;
        fd->scale = 1.0f;
        fd->nodata = -3.0f;
    }
    tnrec_field *lims = &sc.fields[7];
    snprintf(lims->name, sizeof lims->name, "range_limits");
    lims->encoding = TNREC_ENC_RAW;
    lims->dtype = TNREC_DTYPE_F32;
    lims->ndim = 1;
    lims->shape[0] = 2;
    snprintf(lims->dims[0], TNREC_NAME_MAX, "lims");
    lims->scale = 1.0f;
    size_t elems = (size_t)T * A * R * S;
    float *vals[6];
    uint8_t *mask = malloc(elems);
    for (int v = 0; v < 6; v++)
        vals[v] = malloc(elems * sizeof(float));
    tnrec_encoder *enc = NULL;
    tnrec_dataset_writer *w = NULL;
    tnrec_blob blob = { 0 };
    tnrec_dataset_options opt = { 0 };
    opt.max_shard_records = max_records;
    tnrec_err err = tnrec_encoder_create(&enc, &sc, 3);
    if (!err)
        err = tnrec_dataset_writer_open(&w, dir, &sc, &opt);
    uint64_t rs = seed * 7919 + 17;
    for (int i = 0; i < n && !err; i++) {
        int tor = fixture_unif(&rs) < 0.33f;
        int cat = tor ? TNREC_CAT_TOR : (fixture_unif(&rs) < 0.5f ? TNREC_CAT_NUL : TNREC_CAT_WRN);
        /* Noise, and no echo (NaN) over one far-range patch, as radar has it. */
        int na = (int)(fixture_unif(&rs) * (float)(A - 3)), nr = R - 1 - (int)(fixture_unif(&rs) * 3.0f);
        for (int v = 0; v < 6; v++)
            for (size_t k = 0; k < elems; k++) {
                int a = (int)((k / ((size_t)R * S)) % (size_t)A), r = (int)((k / (size_t)S) % (size_t)R);
                vals[v][k] = (k % (size_t)S == 1 && a >= na && a < na + 3 && r >= nr) ? NAN : 0.2f * (fixture_unif(&rs) - 0.5f);
            }
        for (size_t k = 0; k < elems; k++)
            mask[k] = fixture_unif(&rs) < 0.05f;
        int a0 = 1 + (int)(fixture_unif(&rs) * (float)(A - 4)), r0 = 1 + (int)(fixture_unif(&rs) * (float)(R - 6));
        for (int t = 0; t < T; t++)
            for (int dr = 0; dr < 4; dr++)
                for (int s = 0; s < S; s++) {
                    size_t k0 = (((size_t)t * A + a0) * R + r0 + dr) * S + s;
                    size_t k1 = (((size_t)t * A + a0 + 1) * R + r0 + dr) * S + s;
                    vals[0][k0] = vals[0][k1] = 0.8f; /* reflectivity core either way */
                    if (tor) {
                        vals[1][k0] = 0.9f;
                        vals[1][k1] = -0.9f;
                    } else if (cat == TNREC_CAT_WRN) {
                        vals[1][k0] = vals[1][k1] = 0.9f;
                    }
                }
        float range_limits[2] = { 5000.0f * (float)(i % 7), 5000.0f * (float)(i % 7) + 250.0f * (float)R };
        if (fixture_limits < 0)
            range_limits[0] = range_limits[1] = 5000.0f;
        const void *ptrs[8] = { vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], mask, range_limits };
        tnrec_record_meta meta;
        memset(&meta, 0, sizeof meta);
        meta.label = tor;
        meta.category = cat;
        meta.ef = tor ? (int32_t)(fixture_rng(&rs) % 3) : -1;
        meta.event_id = 1000 + i;
        meta.episode_id = 50 + i / 4;
        meta.time = 1368000000 + 600 * (int64_t)i;
        snprintf(meta.key, sizeof meta.key, "train/2013/%s_fixture_%04d.nc", tnrec_category_name(cat), i);
        err = tnrec_encoder_encode(enc, ptrs, &blob);
        if (!err)
            err = tnrec_dataset_writer_append(w, &blob, &meta);
    }
    if (!err) {
        err = tnrec_dataset_writer_close(w, "{\"fixture\": true}");
        w = NULL;
    }
    tnrec_dataset_writer_abort(w);
    tnrec_encoder_free(enc);
    tnrec_blob_free(&blob);
    for (int v = 0; v < 6; v++)
        free(vals[v]);
    free(mask);
    return err;
}

#endif
