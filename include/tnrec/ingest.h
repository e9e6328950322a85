/* tnrec/ingest.h: TorNet NetCDF samples -> record datasets (`tnrec build`,
 * `tnrec merge`).
 *
 * A build enumerates its sources (a TORNET_ROOT with catalog.csv, a
 * directory searched recursively for .nc files, a text file listing .nc
 * paths, or year tarballs given as a path or an http(s) URL), selects
 * samples (split, years, part), reads each sample, normalises and encodes
 * it and appends the records in sorted input order to a dataset, so the
 * output is byte-identical for any thread count. Inputs that cannot be read
 * or break the TorNet schema are skipped and listed in the manifest (or
 * stop the build with `strict`). A killed build rerun with the same options
 * resumes from its last finished shard. */
#ifndef TNREC_INGEST_H
#define TNREC_INGEST_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "tnrec/error.h"
#include "tnrec/records.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TNREC_INGEST_NVARS 6       /* DBZ VEL KDP RHOHV ZDR WIDTH */
#define TNREC_INGEST_MAX_FRAMES 4
/* Default zstd levels (docs/benchmarks.md): for float16 and float32, level 2
 * is within 2 % of level 3's size and 25 % faster; for uint8, level 1 is
 * both smaller and faster than 2 or 3 (its longer minimum match skips the
 * short, useless matches in one-byte noise). */
#define TNREC_BUILD_DEFAULT_ZSTD 2
#define TNREC_BUILD_DEFAULT_ZSTD_UINT8 1

/* Normalisation range of one radar variable: offset = (min + max) / 2,
 * scale = (max - min) / 2, so [min, max] maps to [-1, 1]. */
typedef struct tnrec_norm_range {
    char var[TNREC_NAME_MAX];
    float min, max;
} tnrec_norm_range;

/* Default TorNet range of `var` (DBZ, VEL, KDP, RHOHV, ZDR, WIDTH).
 * TNREC_ENOTFOUND for any other name. */
tnrec_err tnrec_ingest_default_norm(tnrec_norm_range *out, const char *var);

/* Progress callback: called on the calling thread after each batch. */
typedef void (*tnrec_build_progress_cb)(void *ctx, uint64_t done, uint64_t total);
/* Skip callback: one call per skipped input, in input order. */
typedef void (*tnrec_build_skip_cb)(void *ctx, const char *input, const char *reason);

typedef struct tnrec_build_options {
    const char *const *sources;    /* paths, directories, list files, tarballs, URLs */
    size_t nsources;
    const char *out_dir;
    const char *split;             /* "train", "test" or "all" (NULL: all) */
    const int *years;              /* NULL/0: every year */
    size_t nyears;
    uint32_t frames;               /* the last N frames, 1..4 (0: 4) */
    const char *const *variables;  /* subset of DBZ VEL KDP RHOHV ZDR WIDTH
                                      range_folded_mask; NULL: all seven */
    size_t nvariables;
    tnrec_encoding encoding;       /* FLOAT32, FLOAT16 or UINT8 */
    const tnrec_norm_range *norms; /* overrides of the default ranges */
    size_t nnorms;
    int has_nodata;                /* 1: gates with no data decode as nodata, */
    float nodata;                  /* in normalised units, instead of TorNet's -3 */
    uint64_t shard_bytes;          /* 0: TNREC_DEFAULT_SHARD_BYTES */
    uint64_t shard_records;        /* 0: no limit */
    int threads;                   /* 0: OpenMP's default */
    int zstd_level;                /* 1..19 or -7..-1 (0: the default for the encoding) */
    int strict;                    /* a bad input fails the build */
    uint32_t part_index, part_count; /* build part K of N (count 0 or 1: all) */
    double holdout;                /* 0: none; in (0,1): keep whole storms (groups of
                                      day and event id) out, about this share */
    uint64_t holdout_seed;         /* which groups are held out */
    int holdout_take;              /* 0: build the rest; 1: build the held-out groups */
    uint32_t batch;                /* samples per parallel batch (0: 32 per thread, at most 512) */
    tnrec_build_progress_cb progress;
    void *progress_ctx;
    tnrec_build_skip_cb on_skip;
    void *skip_ctx;
    /* When set and *stop becomes non-zero (e.g. from a signal handler),
     * the build stops between samples with TNREC_ECANCELED, keeping its
     * finished shards for a rerun. NULL: never. */
    const volatile sig_atomic_t *stop;
} tnrec_build_options;

/* What a build or merge did. */
typedef struct tnrec_build_summary {
    uint64_t inputs;               /* candidate inputs after split/part selection */
    uint64_t samples;              /* records in the dataset */
    uint64_t skipped;              /* inputs listed as skipped */
    uint64_t filtered;             /* inputs read but outside --years */
    uint64_t resumed_records;      /* records kept from an interrupted run */
    uint64_t bytes_in;             /* input bytes read (.nc, compressed) */
    uint64_t bytes_out;            /* bytes of all shards */
    tnrec_class_counts counts;
    double seconds;
    double work_seconds;           /* summed over threads: reading, checking, encoding */
    double lock_seconds;           /* of which inside NetCDF/HDF5 (serialised by one lock) */
    int up_to_date;                /* 1: the dataset was already complete */
    /* After a failed or interrupted build: the finished shards left in the
     * output directory for a rerun with the same options to adopt. */
    uint64_t kept_shards, kept_records;
} tnrec_build_summary;

/* Fills opt with the defaults (float16, 4 frames, all variables, split all). */
void tnrec_build_options_init(tnrec_build_options *opt);

/* Builds (or resumes) the dataset opt->out_dir. out may be NULL. Errors
 * name the input or output file; with opt->strict the first bad input is
 * an error (TNREC_ESCHEMA/EIO...) and no manifest is written. Inputs that
 * give no record at all are an error too (TNREC_ENOTFOUND, naming the
 * sources, the selection and why the inputs were skipped), with no
 * manifest. A build that fails or is stopped keeps its finished shards
 * and progress file (out->kept_shards, kept_records) and removes the shard
 * it was writing; a rerun with the same options resumes. */
tnrec_err tnrec_build_run(tnrec_build_summary *out, const tnrec_build_options *opt);

/* Joins the datasets of parts 0..N-1 of one build (in any order on the
 * command line) into out_dir. The result holds the same records in the same
 * shards as a one-machine build with the same options. out may be NULL. */
tnrec_err tnrec_merge_run(tnrec_build_summary *out, const char *out_dir,
                          const char *const *parts, size_t nparts);

/* What tnrec_merge_run_opts adds (zero-initialise). */
typedef struct tnrec_merge_options {
    /* Called after each record is copied: records copied so far, of total. */
    void (*progress)(void *ctx, uint64_t records_done, uint64_t records_total);
    void *progress_ctx;
    /* When set and *stop becomes non-zero (e.g. from a signal handler), the
     * merge stops after the record it is copying with TNREC_ECANCELED and
     * removes what it wrote (and out_dir, if it made it): a merge only
     * copies, so it is redone, not resumed. */
    const volatile sig_atomic_t *stop;
} tnrec_merge_options;
/* tnrec_merge_run with progress and a stop flag; opt may be NULL. */
tnrec_err tnrec_merge_run_opts(tnrec_build_summary *out, const char *out_dir, const char *const *parts,
                               size_t nparts, const tnrec_merge_options *opt);

/* Parses "K/N" into part index and count (0 <= K < N). */
tnrec_err tnrec_build_parse_part(uint32_t *out_index, uint32_t *out_count, const char *text);
/* The part from the environment of a launcher: OMPI_COMM_WORLD_RANK/SIZE,
 * PMI_RANK/SIZE, SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT. Returns 1 and
 * fills the outputs when one is set, 0 otherwise. */
int tnrec_build_part_from_env(uint32_t *out_index, uint32_t *out_count);

/* Reads, checks and encodes one sample held in memory (`name` is used in
 * messages) with the default options; the record is discarded. For tests
 * and fuzzing. TNREC_ESCHEMA/EFORMAT/ETRUNC describe what is wrong. */
tnrec_err tnrec_ingest_check_mem(const void *data, size_t size, const char *name);

#ifdef __cplusplus
}
#endif
#endif
