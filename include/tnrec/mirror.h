/* tnrec/mirror.h: copy the TorNet archive from Zenodo (or any http(s) URL)
 * to a local directory or an S3-compatible bucket, and check a mirror.
 *
 * Sources: "zenodo:RECORD", "zenodo:RECORD/FILE", "tornet" (the ten v1.1
 * records, catalog.csv included) and plain http(s) URLs. Destinations: a
 * local directory or "s3://bucket/prefix". Downloads are segmented Range
 * requests with resume, retries and an MD5 check before a file takes its
 * final name; uploads are single PUTs or multipart uploads signed with
 * AWS Signature V4, skipped when the object is already there with the same
 * size and MD5.
 *
 * A build without libcurl keeps these functions; they fail with
 * TNREC_EUNSUPPORTED. The library never prints: progress and log lines go
 * to the callbacks in the options, secrets never do. The request signer
 * (tnrec_sigv4_sign) is declared in tnrec/testing.h, for its tests. */
#ifndef TNREC_MIRROR_H
#define TNREC_MIRROR_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "tnrec/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TNREC_MIRROR_SIZE_UNKNOWN UINT64_MAX

typedef enum tnrec_mirror_state {
    TNREC_MIRROR_PENDING = 0,
    TNREC_MIRROR_ACTIVE,
    TNREC_MIRROR_COPIED,   /* transferred and checked */
    TNREC_MIRROR_SKIPPED,  /* already at the destination with the same size and MD5 */
    TNREC_MIRROR_VERIFIED, /* re-read and matched (verify mode) */
    TNREC_MIRROR_FAILED
} tnrec_mirror_state;

/* One file of a mirror or verify run. Strings belong to the report or the
 * run that passes them out. */
typedef struct tnrec_mirror_file {
    const char *name;      /* destination-relative name, e.g. "tornet_2013.tar.gz" */
    const char *source;    /* where it is read from (URL; never carries credentials) */
    uint64_t size;         /* bytes, or TNREC_MIRROR_SIZE_UNKNOWN */
    uint64_t done;         /* bytes of this file moved or checked so far */
    char md5[33];          /* expected (or, when none was published, computed) MD5; "" if unknown */
    tnrec_mirror_state state;
    tnrec_err err;         /* TNREC_OK unless state is FAILED */
    const char *message;   /* why it failed ("" otherwise) */
} tnrec_mirror_file;

/* A snapshot for the progress callback; valid during the call only. */
typedef struct tnrec_mirror_progress {
    size_t n_files;
    const tnrec_mirror_file *files;
    uint64_t bytes_total;  /* sum of the known sizes */
    uint64_t bytes_done;   /* sum of done */
    double elapsed_s;
    int final;             /* 1 on the last call of a run */
} tnrec_mirror_progress;

typedef struct tnrec_mirror_options {
    const char *zenodo_url;      /* default "https://zenodo.org" */
    unsigned connections;        /* Range connections per file (default 4) */
    unsigned jobs;               /* files at once (default 2) */
    uint64_t limit_rate;         /* bytes/s over all transfers together, 0 = no limit */
    const char *cacert;          /* CA bundle file; NULL = system store. TLS is always verified */
    unsigned retries;            /* attempts after the first on a transient failure (default 8) */
    unsigned retry_delay_ms;     /* first backoff delay, doubled each time, with jitter (default 1000) */
    unsigned retry_max_ms;       /* backoff cap, also caps Retry-After (default 120000) */
    unsigned low_speed_time;     /* seconds under 1 KiB/s before a transfer is abandoned (default 60) */
    unsigned connect_timeout;    /* seconds (default 30) */
    const char *endpoint;        /* S3 endpoint URL, e.g. https://s3.us-west-004.backblazeb2.com */
    const char *region;          /* S3 region (default: from the B2 endpoint, else "us-east-1") */
    uint64_t part_size;          /* multipart part size (default 100 MiB, kept in 5 MiB..5 GiB) */
    uint64_t multipart_threshold;/* objects at least this big use multipart (default: part_size) */
    int stream;                  /* S3 destination: download -> upload in memory, no local file */
    int abort_incomplete;        /* S3 destination: abort unfinished multipart uploads under the prefix first */
    const char *staging;         /* S3 destination without stream: where downloads wait (default ".tnrec-staging") */
    /* Called from the thread that called tnrec_mirror_run/verify about 5
     * times a second, and once more with final = 1. May be NULL. */
    void (*progress)(void *ud, const tnrec_mirror_progress *p);
    /* One line per request and per decision when set (verbose). Never holds
     * a secret. Called from worker threads, serialised by the library. */
    void (*log)(void *ud, const char *line);
    void *ud;
    /* When set and *stop becomes non-zero (e.g. from a signal handler),
     * transfers stop within a fraction of a second and no new file is
     * started: partial downloads keep their .tnrec-part and .tnrec-state
     * (checkpointed on the way out), unfinished multipart uploads are left
     * for a rerun to resume. Unstarted and stopped files fail with
     * TNREC_ECANCELED. NULL: never. */
    const volatile sig_atomic_t *stop;
} tnrec_mirror_options;

/* The outcome of a run: one entry per file, and the counts. */
typedef struct tnrec_mirror_report {
    size_t n_files;
    tnrec_mirror_file *files;
    size_t copied, skipped, verified, failed;
    uint64_t bytes_transferred;  /* payload bytes moved over the network by this run */
    double elapsed_s;
} tnrec_mirror_report;

/* Fill *out with the defaults above (all counts set, strings NULL). */
void tnrec_mirror_options_init(tnrec_mirror_options *out);

/* Mirror every file of the sources to dest (a directory, created when
 * missing, or "s3://bucket/prefix"). Files are done `jobs` at a time; one
 * failing does not stop the others. *out (may be NULL) receives the report
 * even when the run fails; free it with tnrec_mirror_report_free. Returns
 * TNREC_OK when every file was copied or skipped, otherwise the error of
 * the first failure (message set). */
tnrec_err tnrec_mirror_run(tnrec_mirror_report **out, const char *const *sources,
                           size_t n_sources, const char *dest,
                           const tnrec_mirror_options *opt);

/* Re-read a mirror and check sizes and MD5s. target is a directory, an
 * http(s) URL (a prefix ending in '/', e.g. https://proxy/file/bucket/, or
 * one object) or "s3://bucket/prefix". Expected values come from the
 * sources when given; without sources an S3 target is listed and each
 * object checked against its x-amz-meta-md5. Report and return as in
 * tnrec_mirror_run (VERIFIED instead of COPIED). */
tnrec_err tnrec_mirror_verify(tnrec_mirror_report **out, const char *target,
                              const char *const *sources, size_t n_sources,
                              const tnrec_mirror_options *opt);

void tnrec_mirror_report_free(tnrec_mirror_report *report);

#ifdef __cplusplus
}
#endif
#endif
