/* benchmarks/bench_loader_limits.c: how far each step of the loader's
 * decode is from its limit on this machine, one thread.
 *
 * usage: bench_loader_limits DATASET [--repeats 3] [--block 1024]
 * Prints one JSON object per step, in samples/s (median of the repeats,
 * all records each, page cache warm):
 *   write_bw    memset of one sample's float32 output (frames 4, all
 *               variables, 12 channels): the memory write bandwidth, the
 *               floor of any decoder that produces the batch
 *   write_bw_batch the same into a batch of 32 samples (177 MB), sample
 *               after sample: the memory's write bandwidth past the caches
 *   read_blob   pread + XXH3 check of each record's frame, no zstd
 *   zstd        ZSTD_decompressDCtx of each frame into one buffer (the
 *               frame's content checksum included), without the pread
 *   zstd_nocheck the same without verifying the frame's content checksum
 *               (XXH64 of the decompressed bytes): its cost
 *   load        tnrec_decoder_load: pread, XXH3, zstd
 *   load_nocheck the same without zstd's content checksum, as the loader
 *               loads (tnrec_decoder_set_content_check off)
 *   convert     field conversion alone of a loaded record, contiguous
 *               (tnrec_decoder_field_rows with stride = width)
 *   interleave  the same into NDHWC channels, field by field
 *   interleave_fused  the same, all fields in one pass
 *               (tnrec_decoder_fields_rows), as the loader does it
 *   interleave_fused_batch  the same into a batch of 32 samples with
 *               streaming stores: the loader's conversion as it runs
 * and the frame sizes (compressed, decompressed) per record. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_d_forceIgnoreChecksum, through the stable setParameter */
#include <zstd.h>

#include "bench_util.h"
#include "tnrec/tnrec.h"

static int repeats = 3;
#define BATCH 32 /* samples of the batch the *_batch steps fill */
static size_t block = 1024; /* rows per block, as the loader's LOADER_BLOCK_ROWS */

#define MAXR 101

static void report(const char *step, double *rates, double bytes_per_sample)
{
    double r = bench_median(rates, repeats);
    printf("{\"step\": \"%s\", \"samples_per_s\": %.1f, \"mb_per_s\": %.0f}\n", step, r, r * bytes_per_sample / 1e6);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DATASET [--repeats 3]\n", argv[0]);
        return 2;
    }
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--repeats"))
            repeats = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--block"))
            block = (size_t)atol(argv[i + 1]);
    }
    if (block < 1)
        return 2;
    if (repeats < 1 || repeats > MAXR - 1)
        return 2;
    tnrec_dataset *ds = NULL;
    if (tnrec_dataset_open(&ds, argv[1])) {
        fprintf(stderr, "bench_loader_limits: %s\n", tnrec_error_last());
        return 1;
    }
    const tnrec_schema *sc = tnrec_dataset_schema(ds);
    int vars[TNREC_MAX_FIELDS], nvars = 0;
    const char *names[6] = { "DBZ", "VEL", "KDP", "RHOHV", "ZDR", "WIDTH" };
    for (int v = 0; v < 6; v++)
        if (tnrec_schema_find(sc, names[v]) >= 0)
            vars[nvars++] = tnrec_schema_find(sc, names[v]);
    if (!nvars)
        return 1;
    const tnrec_field *fd = &sc->fields[vars[0]];
    size_t S = fd->shape[3], AR = (size_t)fd->shape[1] * fd->shape[2], T = fd->shape[0];
    size_t rows = T * AR, C = (size_t)nvars * S, out_elems = rows * C;
    float *out = malloc(out_elems * sizeof(float));
    uint64_t n = tnrec_dataset_count(ds);
    tnrec_blob blob = { 0 };
    tnrec_decoder *dec = NULL;
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    uint8_t *raw = NULL;
    size_t raw_cap = 0;
    double comp = 0, rawsz = 0;
    if (!out || tnrec_decoder_create(&dec) || !dctx)
        return 1;
    double rates[MAXR];
    /* warm: page cache, buffers, frame sizes */
    for (uint64_t i = 0; i < n; i++) {
        size_t si;
        uint64_t li;
        tnrec_dataset_locate(ds, i, &si, &li);
        if (tnrec_shard_read_blob(&blob, tnrec_dataset_shard(ds, si), li))
            return 1;
        comp += (double)blob.size;
        rawsz += (double)blob.raw_size;
    }
    printf("{\"records\": %llu, \"frame_bytes\": %.0f, \"raw_bytes\": %.0f, \"frames_per_record\": 1, "
           "\"output_bytes\": %zu}\n", (unsigned long long)n, comp / (double)n, rawsz / (double)n, out_elems * 4);
    for (int r = 0; r < repeats; r++) {
        double t0 = bench_now();
        for (uint64_t i = 0; i < n; i++) {
            memset(out, (int)(i & 1), out_elems * sizeof(float));
            __asm__ volatile("" : : "r"(out) : "memory");
        }
        rates[r] = (double)n / (bench_now() - t0);
    }
    report("write_bw", rates, (double)out_elems * 4);
    /* the same into a batch of 32 samples (177 MB, past every cache), one
     * sample after the other, as the loader fills its batches */
    /* page-aligned, as the loader's batch slots */
    float *batch = NULL;
    if (posix_memalign((void **)&batch, 4096, BATCH * out_elems * sizeof(float)) != 0)
        batch = NULL;
    if (!batch)
        return 1;
    memset(batch, 0, BATCH * out_elems * sizeof(float));
    for (int r = 0; r < repeats; r++) {
        double t0 = bench_now();
        for (uint64_t i = 0; i < n; i++) {
            memset(batch + (i % BATCH) * out_elems, (int)(i & 1), out_elems * sizeof(float));
            __asm__ volatile("" : : "r"(batch) : "memory");
        }
        rates[r] = (double)n / (bench_now() - t0);
    }
    report("write_bw_batch", rates, (double)out_elems * 4);
    for (int r = 0; r < repeats; r++) {
        double t0 = bench_now();
        for (uint64_t i = 0; i < n; i++) {
            size_t si;
            uint64_t li;
            tnrec_dataset_locate(ds, i, &si, &li);
            tnrec_shard_read_blob(&blob, tnrec_dataset_shard(ds, si), li);
        }
        rates[r] = (double)n / (bench_now() - t0);
    }
    report("read_blob", rates, comp / (double)n);
    /* zstd alone: every frame kept in memory first */
    uint8_t **frames = calloc(n, sizeof *frames);
    size_t *fsz = calloc(n, sizeof *fsz);
    for (uint64_t i = 0; i < n; i++) {
        size_t si;
        uint64_t li;
        tnrec_dataset_locate(ds, i, &si, &li);
        tnrec_shard_read_blob(&blob, tnrec_dataset_shard(ds, si), li);
        frames[i] = malloc(blob.size);
        memcpy(frames[i], blob.data, blob.size);
        fsz[i] = blob.size;
        if (blob.raw_size > raw_cap) {
            raw_cap = (size_t)blob.raw_size;
            raw = realloc(raw, raw_cap);
        }
    }
    for (int r = 0; r < repeats; r++) {
        double t0 = bench_now();
        for (uint64_t i = 0; i < n; i++)
            if (ZSTD_isError(ZSTD_decompressDCtx(dctx, raw, raw_cap, frames[i], fsz[i])))
                return 1;
        rates[r] = (double)n / (bench_now() - t0);
    }
    report("zstd", rates, rawsz / (double)n);
    ZSTD_DCtx_setParameter(dctx, ZSTD_d_forceIgnoreChecksum, ZSTD_d_ignoreChecksum);
    for (int r = 0; r < repeats; r++) {
        double t0 = bench_now();
        for (uint64_t i = 0; i < n; i++)
            if (ZSTD_isError(ZSTD_decompressDCtx(dctx, raw, raw_cap, frames[i], fsz[i])))
                return 1;
        rates[r] = (double)n / (bench_now() - t0);
    }
    report("zstd_nocheck", rates, rawsz / (double)n);
    for (int r = 0; r < repeats; r++) {
        double t0 = bench_now();
        for (uint64_t i = 0; i < n; i++) {
            size_t si;
            uint64_t li;
            tnrec_dataset_locate(ds, i, &si, &li);
            if (tnrec_decoder_load(dec, tnrec_dataset_shard(ds, si), li))
                return 1;
        }
        rates[r] = (double)n / (bench_now() - t0);
    }
    report("load", rates, rawsz / (double)n);
    tnrec_decoder_set_content_check(dec, 0);
    for (int r = 0; r < repeats; r++) {
        double t0 = bench_now();
        for (uint64_t i = 0; i < n; i++) {
            size_t si;
            uint64_t li;
            tnrec_dataset_locate(ds, i, &si, &li);
            if (tnrec_decoder_load(dec, tnrec_dataset_shard(ds, si), li))
                return 1;
        }
        rates[r] = (double)n / (bench_now() - t0);
    }
    report("load_nocheck", rates, rawsz / (double)n);
    /* conversions of the last loaded record, n times */
    uint32_t fields[TNREC_MAX_FIELDS];
    for (int v = 0; v < nvars; v++)
        fields[v] = (uint32_t)vars[v];
    static const char *mode_name[3] = { "convert", "interleave", "interleave_fused" };
    for (int mode = 0; mode < 3; mode++) {
        for (int r = 0; r < repeats; r++) {
            double t0 = bench_now();
            for (uint64_t i = 0; i < n; i++)
                for (size_t r0 = 0; r0 < rows; r0 += block) { /* the loader's blocks */
                    size_t nr = rows - r0 < block ? rows - r0 : block;
                    if (mode == 2) {
                        if (tnrec_decoder_fields_rows(dec, fields, (size_t)nvars, r0 * S, nr, S, out + r0 * C, C))
                            return 1;
                        continue;
                    }
                    for (int v = 0; v < nvars; v++) {
                        tnrec_err e =
                            mode == 0 ? tnrec_decoder_field_rows(dec, (uint32_t)vars[v], r0 * S, nr, S,
                                                                 out + (size_t)v * rows * S + r0 * S, S)
                                      : tnrec_decoder_field_rows(dec, (uint32_t)vars[v], r0 * S, nr, S,
                                                                 out + r0 * C + (size_t)v * S, C);
                        if (e)
                            return 1;
                    }
                }
            rates[r] = (double)n / (bench_now() - t0);
        }
        report(mode_name[mode], rates, (double)out_elems * 4);
    }
    /* the loader's conversion as it runs: into a batch of 32 samples, with
     * streaming stores */
    tnrec_decoder_set_stream(dec, 1);
    for (int r = 0; r < repeats; r++) {
        double t0 = bench_now();
        for (uint64_t i = 0; i < n; i++)
            if (tnrec_decoder_fields_rows(dec, fields, (size_t)nvars, 0, rows, S, batch + (i % BATCH) * out_elems, C))
                return 1;
        rates[r] = (double)n / (bench_now() - t0);
    }
    report("interleave_fused_batch", rates, (double)out_elems * 4);
    free(batch);
    for (uint64_t i = 0; i < n; i++)
        free(frames[i]);
    free(frames);
    free(fsz);
    free(raw);
    free(out);
    ZSTD_freeDCtx(dctx);
    tnrec_decoder_free(dec);
    tnrec_blob_free(&blob);
    tnrec_dataset_close(ds);
    return 0;
}
