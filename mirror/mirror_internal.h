/* mirror/mirror_internal.h: what the files of mirror/ share.
 *
 * Layers, bottom up: mirror_util.c (strings, hashes, names), mirror_sigv4.c
 * (signing), mirror_http.c (one request with retries), mirror_source.c
 * (sources -> file list), mirror_fetch.c (segmented download to a file),
 * mirror_s3.c (S3 requests and uploads), mirror_run.c (the run: jobs,
 * destinations, verify, progress). Nothing here depends on ingest/ or on
 * records/: the shared helpers come from common/. */
#ifndef TNREC_MIRROR_INTERNAL_H
#define TNREC_MIRROR_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define TNREC_TESTING 1 /* the signer, exported for its tests (tnrec/testing.h) */
#include "common.h"
#include "tnrec/mirror.h"
#include "tnrec/testing.h"

/* ---- growing strings ---- */
typedef struct mir_buf {
    char *data;  /* NUL-terminated when len > 0 or after any append */
    size_t len, cap;
    int oom;     /* sticky: an append failed */
} mir_buf;

void mir_buf_add(mir_buf *b, const void *p, size_t n);
void mir_buf_adds(mir_buf *b, const char *s);
void mir_buf_addf(mir_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mir_buf_free(mir_buf *b);
/* Hands the string over (NULL if out of memory; "" if empty). */
char *mir_buf_take(mir_buf *b);

/* RFC 3986 encoding as SigV4 wants it: unreserved kept, everything else
 * %XX (upper case); '/' kept when keep_slash. */
void mir_uri_encode(mir_buf *b, const char *s, size_t n, int keep_slash);
/* Decode %XX in place-safe copy; returns malloc'd string or NULL. */
char *mir_uri_decode(const char *s, size_t n);

void mir_hex(char *out, const unsigned char *bin, size_t n);
/* Hex SHA-256 of a buffer into out[65]. */
void mir_sha256_hex(char out[65], const void *p, size_t n);
/* Base64 of a 16-byte MD5 digest into out[25]. */
void mir_md5_base64(char out[25], const unsigned char md5[16]);
int mir_is_md5_hex(const char *s);

/* Incremental MD5 (OpenSSL EVP). */
typedef struct mir_md5 { void *ctx; } mir_md5;
tnrec_err mir_md5_init(mir_md5 *m);
void mir_md5_update(mir_md5 *m, const void *p, size_t n);
void mir_md5_final(mir_md5 *m, unsigned char out[16]);
void mir_md5_free(mir_md5 *m);
/* MD5 of a whole file into hex[33]; progress adds to *done when not NULL. */
tnrec_err mir_md5_file(char hex[33], const char *path, uint64_t *done);

/* A destination-relative name is safe when it is not empty, not absolute,
 * has no "." / ".." / empty component, no backslash and no control byte. */
int mir_name_is_safe(const char *name);
/* mkdir -p of the parent directories of path (path itself excluded),
 * mode 0777 before the umask: tnrec__mkdir_parents (common/path_util.h). */
tnrec_err mir_make_parents(const char *path);

/* Sleep ms milliseconds, in small steps. */
void mir_sleep_ms(unsigned ms);
/* Backoff for attempt n (0-based): min(cap, base*2^n) scaled by a random
 * factor in [0.5, 1.0]. */
unsigned mir_backoff_ms(unsigned base, unsigned cap, unsigned attempt);

/* ---- the shared context of one run ---- */
typedef struct mir_ctx {
    const tnrec_mirror_options *opt;
    pthread_mutex_t log_lock;
    uint64_t per_transfer_rate;   /* CURLOPT_MAX_RECV/SEND_SPEED, 0 = none */
    uint64_t bytes_transferred;   /* atomic add */
    /* S3 credentials: never printed. */
    char *access_key, *secret_key, *session_token;
} mir_ctx;

void mir_log(mir_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True once the caller asked the run to stop (tnrec_mirror_options.stop). */
int mir_stopping(const mir_ctx *c);
/* Replace any copy of a credential in s (in place) with "***". */
void mir_redact(const mir_ctx *c, char *s);

/* ---- HTTP ---- */

/* Receives body bytes; returns 0 to go on, non-zero to stop the transfer
 * (the request then ends with MIR_HTTP_STOPPED). */
typedef int (*mir_sink_fn)(void *ud, const void *p, size_t n);
/* Supplies upload bytes; returns the count copied (0 at the end). */
typedef size_t (*mir_source_fn)(void *ud, void *p, size_t n);

typedef struct mir_req {
    const char *method;           /* default GET */
    const char *url;
    const char *const *headers;   /* "Name: value" */
    size_t n_headers;
    int has_range;
    uint64_t range_from, range_to; /* inclusive; range_to UINT64_MAX = open */
    const void *body;             /* upload from memory */
    size_t body_len;
    int head;                     /* HEAD: no body */
    mir_sink_fn sink;             /* NULL: body collected into resp.body (<= 8 MiB) */
    void *sink_ud;
    volatile int *cancel;         /* stop when *cancel becomes non-zero */
} mir_req;

typedef struct mir_resp {
    long status;                  /* 0 when no HTTP answer */
    int curl_code;
    mir_buf body;
    uint64_t content_length;      /* TNREC_MIRROR_SIZE_UNKNOWN when absent */
    uint64_t range_total;         /* total from Content-Range, or unknown */
    uint64_t range_start;         /* start from Content-Range, or unknown */
    unsigned retry_after_s;       /* 0 when absent */
    int accept_ranges;
    char etag[80];
    char meta_md5[40];            /* x-amz-meta-md5 */
    char errbuf[256];
    uint64_t received;            /* body bytes received */
} mir_resp;

void mir_resp_free(mir_resp *r);
/* One attempt. Returns TNREC_OK when an HTTP answer came (any status),
 * TNREC_ENET for transport failures (resp.curl_code set). */
tnrec_err mir_http_once(mir_ctx *c, const mir_req *req, mir_resp *resp);
/* Is this outcome worth another try? (transport errors, 408, 429, 5xx) */
int mir_http_transient(const mir_resp *r, tnrec_err e);
/* Short text for a failed attempt: "HTTP 503" or the curl error. */
void mir_http_describe(const mir_resp *r, char *out, size_t cap);
/* One request with retries (bodies collected in memory); returns OK when
 * a non-transient answer arrived (status may still be 4xx). */
tnrec_err mir_http_retry(mir_ctx *c, const mir_req *req, mir_resp *resp);
/* Sleep before retry `attempt` (honouring Retry-After). */
void mir_http_wait(mir_ctx *c, const mir_resp *r, unsigned attempt, const char *what);
tnrec_err mir_http_global_init(void);

/* ---- sources ---- */
typedef struct mir_item {
    char *name;          /* safe relative name */
    char *url;           /* download URL (Range capable when known) */
    uint64_t size;       /* or TNREC_MIRROR_SIZE_UNKNOWN */
    char md5[33];        /* expected, "" when the source publishes none */
} mir_item;

typedef struct mir_items {
    mir_item *v;
    size_t n, cap;
} mir_items;

void mir_items_free(mir_items *it);
/* Resolve sources into files (order kept, duplicates by name refused). */
tnrec_err mir_resolve(mir_ctx *c, const char *const *sources, size_t n, mir_items *out);
/* Parse a Zenodo record JSON (either field spelling) into items. */
tnrec_err mir_parse_zenodo_record(const char *json, size_t len, const char *zenodo_url,
                                  const char *record, const char *only_file, mir_items *out);

/* ---- download ---- */
typedef struct mir_fetch_stats {
    uint64_t *done;      /* progress counter (atomic adds) */
    volatile int *cancel;
} mir_fetch_stats;

/* Download item to dir/name: segmented, resumable (state next to it), MD5
 * checked, renamed only when it matches. If item->md5 is empty the
 * computed MD5 is stored into it. */
tnrec_err mir_fetch_file(mir_ctx *c, mir_item *item, const char *final_path, mir_fetch_stats *st);
/* Stream url through sink from offset (retries resume at the byte
 * reached); checks the total against size when known. */
tnrec_err mir_fetch_range(mir_ctx *c, const char *url, uint64_t from, uint64_t to_incl,
                          mir_sink_fn sink, void *ud, volatile int *cancel);

/* ---- S3 ---- */
typedef struct mir_s3 {
    mir_ctx *ctx;
    char *endpoint;      /* scheme://host[:port] without trailing '/' */
    char *host;          /* host[:port] for signing */
    int https;
    char *region;
    char *bucket;
    char *prefix;        /* "" or ending in '/' */
} mir_s3;

tnrec_err mir_s3_open(mir_s3 *out, mir_ctx *c, const char *s3url);
void mir_s3_close(mir_s3 *s);

typedef struct mir_s3_head {
    int exists;
    uint64_t size;
    char md5[40];        /* x-amz-meta-md5 */
} mir_s3_head;
tnrec_err mir_s3_head_object(mir_s3 *s, const char *key, mir_s3_head *out);

/* Where a part's bytes come from. */
typedef tnrec_err (*mir_part_read_fn)(void *ud, uint64_t off, void *buf, size_t len, volatile int *cancel);

typedef struct mir_upload {
    const char *key;           /* full object key */
    uint64_t size;
    const char *md5;           /* hex, stored as x-amz-meta-md5; known in advance */
    mir_part_read_fn read;
    void *read_ud;
    int hash_in_order;         /* stream mode: hash parts in order and compare to md5 at the end */
    uint64_t *done;
    volatile int *cancel;
} mir_upload;

/* Upload one object (single PUT or multipart, resuming an unfinished
 * multipart upload of the same key and size). */
tnrec_err mir_s3_upload(mir_s3 *s, const mir_upload *u);
/* Abort every unfinished multipart upload under the prefix; count in *out. */
tnrec_err mir_s3_abort_incomplete(mir_s3 *s, size_t *out);

typedef struct mir_s3_object { char *key; uint64_t size; } mir_s3_object;
/* List objects under the prefix (keys relative to the prefix). */
tnrec_err mir_s3_list(mir_s3 *s, mir_s3_object **out, size_t *out_n);
/* GET an object through sink. */
tnrec_err mir_s3_get(mir_s3 *s, const char *key, mir_sink_fn sink, void *ud, volatile int *cancel);

/* Tiny XML helpers for S3 replies: find the text of the first <tag>
 * at or after *pos within [0,len); returns malloc'd, entity-decoded text
 * and moves *pos past the closing tag; NULL when absent. */
char *mir_xml_next(const char *xml, size_t len, const char *tag, size_t *pos);

#endif
