/* ingest/ingest_internal.h: what the files of the build pipeline share.
 *
 * Private to ingest/ (not installed). The NetCDF/HDF5 lock, the reader of
 * one sample, CF time decoding, the input enumeration and the tarball
 * stream. Invariant: every call into netcdf-c or HDF5 made by libtnrec
 * happens between ing_nc_lock() and ing_nc_unlock(). */
#ifndef TNREC_INGEST_INTERNAL_H
#define TNREC_INGEST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tnrec/ingest.h"
#include "tnrec/records.h"

/* TorNet sample geometry (fixed by the dataset). */
#define TN_NAZ 120u
#define TN_NR 240u
#define TN_NS 2u
#define TN_GATES (TN_NAZ * TN_NR * TN_NS) /* per frame */

/* Canonical radar variable order. */
extern const char *const ing_moment_names[TNREC_INGEST_NVARS];
#define TN_RFM_NAME "range_folded_mask"

/* One global lock around netcdf-c (not thread-safe) and HDF5 (one global
 * lock of its own anyway). Initialises HDF5's error printing off. */
void ing_nc_lock(void);
void ing_nc_unlock(void);

/* Which parts of a sample to read. */
typedef struct ing_spec {
    uint32_t frames;                          /* last N frames, 1..4 */
    uint32_t nmoments;
    int moment[TNREC_INGEST_NVARS];           /* canonical index of each selected moment */
    int want_rfm;
} ing_spec;

/* One decoded sample. Buffers are reused from call to call (one per thread). */
typedef struct ing_sample {
    float *moment[TNREC_INGEST_NVARS];        /* by canonical index; frames * TN_GATES, NaN = no data */
    uint8_t *rfm;                             /* frames * TN_GATES */
    int64_t time[TNREC_INGEST_MAX_FRAMES];    /* Unix seconds of the kept frames */
    uint8_t frame_labels[TNREC_INGEST_MAX_FRAMES];
    float nyquist[TNREC_INGEST_MAX_FRAMES * TN_NS];
    float azimuth_limits[2], range_limits[2];
    double elevation[TN_NS];
    uint8_t site[4];
    int64_t first_time;                       /* first frame of the file */
    tnrec_record_meta meta;                   /* key left to the caller */
    int direct_chunks;                        /* variables read by direct chunk read */
    double lock_seconds;                      /* time spent holding the NetCDF/HDF5 lock (sum) */
    /* scratch */
    const uint8_t *chunk[TNREC_INGEST_NVARS + 1];   /* into the caller's file bytes */
    size_t chunk_size[TNREC_INGEST_NVARS + 1];
    uint32_t chunk_filters[TNREC_INGEST_NVARS + 1]; /* bit 0 shuffle, bit 1 deflate */
    uint8_t *inflated;
    size_t inflated_cap;
    void *inflater;                           /* libdeflate decompressor */
} ing_sample;

void ing_sample_init(ing_sample *s);
void ing_sample_release(ing_sample *s);
/* Reads a whole NetCDF-4 sample held in memory. Errors: TNREC_EFORMAT (not
 * NetCDF/HDF5), TNREC_ESCHEMA (missing variable, wrong type or shape, bad
 * attribute), TNREC_ECORRUPT (chunk does not inflate). name is for messages. */
tnrec_err ing_sample_read(ing_sample *s, const ing_spec *spec, const void *data, size_t size, const char *name);

/* CF time: values of a `time` variable (as double, or as int64 when
 * is_int) with its `units` and optional `calendar` -> Unix seconds
 * (nearest second). TNREC_ESCHEMA for units or calendars it cannot decode. */
tnrec_err ing_cf_time_decode(int64_t *out, size_t n, const double *dvals, const int64_t *ivals,
                            const char *units, const char *calendar, const char *name);
/* "YYYY-MM-DD[ HH:MM:SS]" -> Unix seconds; -1 on a parse failure. */
int ing_parse_datetime(const char *s, int64_t *out);
/* Year of a Unix time. */
int ing_year_of(int64_t t);

/* ---- inputs ---- */
enum { TN_SPLIT_UNKNOWN = 0, TN_SPLIT_TRAIN = 1, TN_SPLIT_TEST = 2 };

typedef struct ing_input {
    char *key;            /* identity in the dataset: path relative to its root */
    char *path;           /* file to read; NULL for a missing catalog entry */
    int split;            /* from catalog `type`, else from a train/ or test/ path component */
    int year;             /* from catalog start_time; 0: decide from the file */
    int source;           /* index of the source it came from */
} ing_input;

typedef struct ing_input_list {
    ing_input *v;
    size_t n, cap;
} ing_input_list;

/* Appends the .nc inputs of a directory, TORNET_ROOT or list file. */
tnrec_err ing_inputs_add_source(ing_input_list *list, const char *src, int source);
void ing_inputs_sort(ing_input_list *list);
void ing_inputs_free(ing_input_list *list);
/* Split of a key from its path components ("train"/"test"). */
int ing_split_from_key(const char *key);
/* --holdout: keeps the inputs of the held-out groups (take_held) or the
 * others, grouped by the day and event id of their file names
 * (holdout.c); frees the inputs it drops. */
tnrec_err ing_holdout_select(ing_input_list *list, double fraction, uint64_t seed, int take_held);
/* True when src names a tarball (.tar, .tar.gz, .tgz) or an http(s) URL. */
int ing_source_is_stream(const char *src);

/* ---- tarball stream ---- */
typedef struct ing_tar ing_tar;
/* Opens a tarball path or http(s) URL for streaming. */
tnrec_err ing_tar_open(ing_tar **out, const char *src, const volatile sig_atomic_t *stop);
/* Next regular member whose name ends in .nc: *out_name is borrowed until
 * the next call. Returns TNREC_ENOTFOUND at the end of the archive. */
tnrec_err ing_tar_next(ing_tar *t, const char **out_name);
/* The bytes of the current member (malloc'd, the caller frees); not
 * calling it skips them. TNREC_ESCHEMA for a member too large for a sample. */
tnrec_err ing_tar_data(ing_tar *t, uint8_t **out_data, size_t *out_size);
/* Compressed bytes consumed so far. */
uint64_t ing_tar_bytes_in(const ing_tar *t);
void ing_tar_close(ing_tar *t);

#endif
