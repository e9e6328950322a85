/* ingest/tarball.c: stream the .nc members of a year tarball into memory.
 *
 * A source tornet_YYYY.tar.gz (or any tar/tar.gz libarchive reads) is
 * given as a local path or an http(s) URL. Members are read one at a time
 * into memory and never written to disk; over http the body is pulled
 * through libcurl's multi interface on demand, so at most a few hundred KB
 * of the download are buffered beyond the member being read. Members come
 * in archive order.
 * Deliberately not here: retries and resumed downloads (a broken stream
 * fails the build with a hint to rerun, which resumes from the last shard),
 * random access. Without libcurl an http source is refused with a message.
 * A read waiting on the server gives up when the build's stop flag is set. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "ingest_internal.h"
#include "tnrec/config.h"

#if TNREC_HAVE_CURL
#include <curl/curl.h>
#endif

#define TN_MEMBER_MAX ((int64_t)1 << 30)

struct ing_tar {
    struct archive *a;
    char *src;
    struct archive_entry *entry;
    char name[4096];
    int is_http;
#if TNREC_HAVE_CURL
    CURLM *multi;
    CURL *easy;
    uint8_t *buf;
    size_t len, cap;
    int finished;
    const volatile sig_atomic_t *stop; /* the build's stop request: a stalled read gives up */
    CURLcode result;
    char curl_err[CURL_ERROR_SIZE];
#endif
};

#if TNREC_HAVE_CURL
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    ing_tar *t = ctx;
    size_t n = size * nmemb;
    if (n > SIZE_MAX - t->len || tnrec__grow(&t->buf, &t->cap, t->len + n, 1, "a downloaded archive"))
        return 0; /* curl reports a write error */
    memcpy(t->buf + t->len, data, n);
    t->len += n;
    return n;
}

/* libarchive asks for more bytes: hand out what curl delivered. */
static la_ssize_t http_read(struct archive *a, void *ctx, const void **out)
{
    ing_tar *t = ctx;
    t->len = 0; /* the previous block has been consumed */
    while (t->len == 0 && !t->finished) {
        if (t->stop && *t->stop) {
            archive_set_error(a, EINTR, "interrupted");
            return -1;
        }
        int running = 0;
        if (curl_multi_perform(t->multi, &running) != CURLM_OK) {
            archive_set_error(a, EIO, "download failed");
            return -1;
        }
        if (!running) {
            int left;
            CURLMsg *m;
            while ((m = curl_multi_info_read(t->multi, &left)))
                if (m->msg == CURLMSG_DONE)
                    t->result = m->data.result;
            t->finished = 1;
            break;
        }
        if (t->len == 0)
            curl_multi_poll(t->multi, NULL, 0, 1000, NULL);
    }
    if (t->len == 0 && t->finished && t->result != CURLE_OK) {
        archive_set_error(a, EIO, "%s", t->curl_err[0] ? t->curl_err : curl_easy_strerror(t->result));
        return -1;
    }
    *out = t->buf;
    return (la_ssize_t)t->len;
}
#endif

tnrec_err ing_tar_open(ing_tar **out, const char *src, const volatile sig_atomic_t *stop)
{
    *out = NULL;
    ing_tar *t = calloc(1, sizeof *t);
    if (!t || !(t->src = strdup(src))) {
        free(t);
        return tnrec__fail(TNREC_ENOMEM, "out of memory opening '%s'", src);
    }
    t->is_http = strncmp(src, "http://", 7) == 0 || strncmp(src, "https://", 8) == 0;
    tnrec_err err = TNREC_OK;
    t->a = archive_read_new();
    if (!t->a) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory opening '%s'", src);
        goto done;
    }
    archive_read_support_filter_all(t->a);
    archive_read_support_format_tar(t->a);
    archive_read_support_format_gnutar(t->a);
    if (t->is_http) {
#if TNREC_HAVE_CURL
        pthread_once(&curl_once, curl_init_once);
        t->stop = stop;
        t->multi = curl_multi_init();
        t->easy = curl_easy_init();
        if (!t->multi || !t->easy) {
            err = tnrec__fail(TNREC_ENOMEM, "cannot start a download of '%s'", src);
            goto done;
        }
        curl_easy_setopt(t->easy, CURLOPT_URL, src);
        curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
        curl_easy_setopt(t->easy, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(t->easy, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->curl_err);
        curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "tnrec/" TNREC_VERSION);
        curl_easy_setopt(t->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(t->easy, CURLOPT_LOW_SPEED_TIME, 120L);
        curl_multi_add_handle(t->multi, t->easy);
        if (archive_read_open(t->a, t, NULL, http_read, NULL) != ARCHIVE_OK) {
            err = tnrec__fail(TNREC_ENET, "cannot read tarball '%s': %s\n"
                              "hint: check the URL; rerun to resume the build", src, archive_error_string(t->a));
            goto done;
        }
#else
        err = tnrec__fail(TNREC_EUNSUPPORTED, "'%s': this tnrec was built without libcurl\n"
                          "hint: install libcurl4-openssl-dev and rebuild, or download the tarball first", src);
        goto done;
#endif
    } else if (archive_read_open_filename(t->a, src, 1 << 20) != ARCHIVE_OK) {
        err = tnrec__fail(TNREC_EIO, "cannot read tarball '%s': %s", src, archive_error_string(t->a));
        goto done;
    }
done:
    if (err) {
        ing_tar_close(t);
        return err;
    }
    *out = t;
    return TNREC_OK;
}

tnrec_err ing_tar_next(ing_tar *t, const char **out_name)
{
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(t->a, &e);
        if (r == ARCHIVE_EOF)
            return TNREC_ENOTFOUND;
        if (r < ARCHIVE_WARN)
            return tnrec__fail(t->is_http ? TNREC_ENET : TNREC_ECORRUPT,
                               "tarball '%s' is truncated or damaged: %s\n"
                               "hint: download it again (or rerun: the build resumes from its last shard)", t->src,
                               archive_error_string(t->a));
        const char *name = archive_entry_pathname(e);
        size_t n = name ? strlen(name) : 0;
        if (archive_entry_filetype(e) != AE_IFREG || n < 4 || strcmp(name + n - 3, ".nc") != 0 ||
            n >= sizeof t->name)
            continue;
        memcpy(t->name, name, n + 1);
        t->entry = e;
        *out_name = t->name;
        return TNREC_OK;
    }
}

tnrec_err ing_tar_data(ing_tar *t, uint8_t **out_data, size_t *out_size)
{
    *out_data = NULL;
    *out_size = 0;
    int64_t size = archive_entry_size_is_set(t->entry) ? archive_entry_size(t->entry) : -1;
    if (size < 0 || size > TN_MEMBER_MAX)
        return tnrec__fail(TNREC_ESCHEMA, "member '%s' of '%s' has size %lld, not a TorNet sample", t->name, t->src,
                           (long long)size);
    uint8_t *buf = malloc(size ? (size_t)size : 1);
    if (!buf)
        return tnrec__fail(TNREC_ENOMEM, "out of memory reading '%s' from '%s'", t->name, t->src);
    size_t got = 0;
    while (got < (size_t)size) {
        la_ssize_t r = archive_read_data(t->a, buf + got, (size_t)size - got);
        if (r < 0 || (r == 0 && got < (size_t)size)) {
            free(buf);
            return tnrec__fail(t->is_http ? TNREC_ENET : TNREC_ECORRUPT,
                               "tarball '%s' ends inside member '%s': %s\n"
                               "hint: download it again (or rerun: the build resumes from its last shard)", t->src,
                               t->name, r < 0 ? archive_error_string(t->a) : "short read");
        }
        got += (size_t)r;
    }
    *out_data = buf;
    *out_size = got;
    return TNREC_OK;
}

uint64_t ing_tar_bytes_in(const ing_tar *t)
{
    la_int64_t n = archive_filter_bytes(t->a, -1);
    return n > 0 ? (uint64_t)n : 0;
}

void ing_tar_close(ing_tar *t)
{
    if (!t)
        return;
    if (t->a)
        archive_read_free(t->a);
#if TNREC_HAVE_CURL
    if (t->multi && t->easy)
        curl_multi_remove_handle(t->multi, t->easy);
    if (t->easy)
        curl_easy_cleanup(t->easy);
    if (t->multi)
        curl_multi_cleanup(t->multi);
    free(t->buf);
#endif
    free(t->src);
    free(t);
}
