/* mirror/mirror_http.c: one HTTP request through libcurl, and the retry
 * policy around it.
 *
 * Every transfer has TLS verification on (a CA bundle may be named, never
 * turned off), http/https only, a connect timeout and a low-speed timeout.
 * Body bytes of a non-2xx answer never reach a sink: they are kept (capped)
 * for the error message, so an error page is never written into a file.
 * No header value is ever logged: requests are logged as method, URL and
 * status only, and signed requests carry credentials in headers, not URLs. */
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include <curl/curl.h>

#include "mirror_internal.h"
#include "tnrec/config.h"

#define ERR_BODY_MAX (64u << 10)
#define MEM_BODY_MAX (16u << 20)

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void do_init(void) { init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1; }

tnrec_err mir_http_global_init(void)
{
    pthread_once(&init_once, do_init);
    return init_rc ? tnrec__fail(TNREC_EINTERNAL, "libcurl failed to initialise") : TNREC_OK;
}

typedef struct xfer {
    CURL *h;
    const mir_req *req;
    mir_resp *resp;
    size_t upload_pos;
    int stopped;          /* sink asked to stop, or the range check failed */
    int range_bad;
    const mir_ctx *c;
} xfer;

void mir_resp_free(mir_resp *r)
{
    if (r)
        mir_buf_free(&r->body);
}

static void resp_reset(mir_resp *r)
{
    mir_buf_free(&r->body);
    memset(r, 0, sizeof *r);
    r->content_length = TNREC_MIRROR_SIZE_UNKNOWN;
    r->range_total = TNREC_MIRROR_SIZE_UNKNOWN;
    r->range_start = TNREC_MIRROR_SIZE_UNKNOWN;
}

static int header_is(const char *line, size_t n, const char *name, const char **val, size_t *vlen)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return 0;
    const char *v = line + k + 1;
    const char *e = line + n;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
        e--;
    *val = v;
    *vlen = (size_t)(e - v);
    return 1;
}

static void copy_val(char *dst, size_t cap, const char *v, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    mir_resp *r = x->resp;
    const char *v;
    size_t vl;
    char tmp[128];
    if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* a new response (after a redirect or 100-continue): start over */
        r->content_length = TNREC_MIRROR_SIZE_UNKNOWN;
        r->range_total = r->range_start = TNREC_MIRROR_SIZE_UNKNOWN;
        r->retry_after_s = 0;
        r->accept_ranges = 0;
        r->etag[0] = r->meta_md5[0] = '\0';
        return n;
    }
    if (header_is(p, n, "content-length", &v, &vl)) {
        copy_val(tmp, sizeof tmp, v, vl);
        char *end;
        unsigned long long cl = strtoull(tmp, &end, 10);
        if (end != tmp && *end == '\0')
            r->content_length = cl;
    } else if (header_is(p, n, "content-range", &v, &vl)) {
        copy_val(tmp, sizeof tmp, v, vl);
        unsigned long long a, b, t;
        if (sscanf(tmp, "bytes %llu-%llu/%llu", &a, &b, &t) == 3) {
            r->range_start = a;
            r->range_total = t;
        } else if (sscanf(tmp, "bytes */%llu", &t) == 1) {
            r->range_total = t;
        }
    } else if (header_is(p, n, "retry-after", &v, &vl)) {
        copy_val(tmp, sizeof tmp, v, vl);
        char *end;
        unsigned long s = strtoul(tmp, &end, 10);
        if (end != tmp && *end == '\0') {
            r->retry_after_s = s > 86400 ? 86400 : (unsigned)s;
        } else {
            time_t when = curl_getdate(tmp, NULL);
            time_t now = time(NULL);
            if (when > now)
                r->retry_after_s = (unsigned)(when - now > 86400 ? 86400 : when - now);
        }
    } else if (header_is(p, n, "accept-ranges", &v, &vl)) {
        r->accept_ranges = vl >= 5 && strncasecmp(v, "bytes", 5) == 0;
    } else if (header_is(p, n, "etag", &v, &vl)) {
        copy_val(r->etag, sizeof r->etag, v, vl);
    } else if (header_is(p, n, "x-amz-meta-md5", &v, &vl)) {
        copy_val(r->meta_md5, sizeof r->meta_md5, v, vl);
    }
    return n;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    mir_resp *r = x->resp;
    long code = 0;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
    if (code < 200 || code > 299) {
        size_t room = r->body.len < ERR_BODY_MAX ? ERR_BODY_MAX - r->body.len : 0;
        mir_buf_add(&r->body, p, n < room ? n : room);
        return n;
    }
    if (x->req->has_range && r->received == 0) {
        /* The server must answer the range we asked for, from its first
         * byte; a 200 to a request not starting at 0 would put the file's
         * head at the wrong place. */
        if (code == 206 ? r->range_start != x->req->range_from
                        : (code == 200 && x->req->range_from != 0)) {
            x->range_bad = 1;
            x->stopped = 1;
            return 0;
        }
    }
    r->received += n;
    if (x->req->sink) {
        if (x->req->sink(x->req->sink_ud, p, n)) {
            x->stopped = 1;
            return 0;
        }
        return n;
    }
    if (r->body.len + n > MEM_BODY_MAX) {
        x->stopped = 1;
        return 0;
    }
    mir_buf_add(&r->body, p, n);
    return r->body.oom ? 0 : n;
}

static size_t on_read(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    size_t left = x->req->body_len - x->upload_pos;
    if (n > left)
        n = left;
    memcpy(p, (const char *)x->req->body + x->upload_pos, n);
    x->upload_pos += n;
    return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    xfer *x = ud;
    return (x->req->cancel && *x->req->cancel) || mir_stopping(x->c) ? 1 : 0;
}

tnrec_err mir_http_once(mir_ctx *c, const mir_req *req, mir_resp *resp)
{
    tnrec_err err = TNREC_OK;
    struct curl_slist *hl = NULL;
    resp_reset(resp);
    if ((err = mir_http_global_init()))
        return err;
    CURL *h = curl_easy_init();
    if (!h)
        return tnrec__fail(TNREC_ENOMEM, "cannot create a libcurl handle");
    xfer x = { .h = h, .req = req, .resp = resp, .c = c };
    const tnrec_mirror_options *o = c->opt;
    int signed_req = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        if (strncasecmp(req->headers[i], "authorization:", 14) == 0)
            signed_req = 1;
        struct curl_slist *t = curl_slist_append(hl, req->headers[i]);
        if (!t) {
            err = tnrec__fail(TNREC_ENOMEM, "out of memory building a request");
            goto done;
        }
        hl = t;
    }
    struct curl_slist *t = curl_slist_append(hl, "Expect:");
    if (t)
        hl = t;
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tnrec/" TNREC_VERSION);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (o->cacert)
        curl_easy_setopt(h, CURLOPT_CAINFO, o->cacert);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)(o->connect_timeout ? o->connect_timeout : 30));
    if (o->low_speed_time) {
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)o->low_speed_time);
    }
    if (c->per_transfer_rate) {
        curl_easy_setopt(h, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)c->per_transfer_rate);
        curl_easy_setopt(h, CURLOPT_MAX_SEND_SPEED_LARGE, (curl_off_t)c->per_transfer_rate);
    }
    if (!signed_req) {
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, resp->errbuf);
    const char *method = req->method ? req->method : (req->head ? "HEAD" : "GET");
    if (req->head) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &x);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    char range[64];
    if (req->has_range) {
        if (req->range_to == UINT64_MAX)
            snprintf(range, sizeof range, "%llu-", (unsigned long long)req->range_from);
        else
            snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)req->range_from,
                     (unsigned long long)req->range_to);
        curl_easy_setopt(h, CURLOPT_RANGE, range);
    }
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    resp->status = code;
    resp->curl_code = (int)rc;
    if (x.range_bad) {
        resp->curl_code = CURLE_RANGE_ERROR;
        snprintf(resp->errbuf, sizeof resp->errbuf, "server ignored or misanswered the Range request");
        err = TNREC_ENET;
    } else if (rc == CURLE_WRITE_ERROR && x.stopped) {
        snprintf(resp->errbuf, sizeof resp->errbuf, "transfer stopped by the receiver");
        err = TNREC_ENET;
    } else if (rc != CURLE_OK) {
        if (!resp->errbuf[0])
            snprintf(resp->errbuf, sizeof resp->errbuf, "%s", curl_easy_strerror(rc));
        mir_redact(c, resp->errbuf);
        err = TNREC_ENET;
    }
    mir_log(c, "%s %s -> %ld%s%s", method, req->url, code, rc != CURLE_OK ? " " : "",
            rc != CURLE_OK ? resp->errbuf : "");
done:
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return err;
}

int mir_http_transient(const mir_resp *r, tnrec_err e)
{
    if (e == TNREC_ENET) {
        switch (r->curl_code) {
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_ABORTED_BY_CALLBACK:
        case CURLE_TOO_MANY_REDIRECTS:
        case CURLE_RANGE_ERROR:
            return 0;
        case CURLE_WRITE_ERROR:
            return 0;
        default:
            return 1;
        }
    }
    if (e != TNREC_OK)
        return 0;
    return r->status == 408 || r->status == 429 || (r->status >= 500 && r->status <= 599);
}

void mir_http_describe(const mir_resp *r, char *out, size_t cap)
{
    if (r->curl_code != CURLE_OK)
        snprintf(out, cap, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror((CURLcode)r->curl_code));
    else
        snprintf(out, cap, "HTTP %ld", r->status);
}

void mir_http_wait(mir_ctx *c, const mir_resp *r, unsigned attempt, const char *what)
{
    const tnrec_mirror_options *o = c->opt;
    unsigned ms = mir_backoff_ms(o->retry_delay_ms, o->retry_max_ms, attempt);
    if (r && r->retry_after_s) {
        uint64_t ra = (uint64_t)r->retry_after_s * 1000u;
        if (ra > o->retry_max_ms)
            ra = o->retry_max_ms;
        if (ra > ms)
            ms = (unsigned)ra;
    }
    char d[300] = "";
    if (r)
        mir_http_describe(r, d, sizeof d);
    mir_log(c, "retry %u for %s in %u ms (%s)", attempt + 1, what, ms, d);
    /* in steps, so that a stop request does not wait out a long backoff */
    for (unsigned slept = 0; slept < ms && !mir_stopping(c); slept += 50)
        mir_sleep_ms(ms - slept < 50 ? ms - slept : 50);
}

tnrec_err mir_http_retry(mir_ctx *c, const mir_req *req, mir_resp *resp)
{
    tnrec_err e = TNREC_OK;
    for (unsigned attempt = 0;; attempt++) {
        e = mir_http_once(c, req, resp);
        if (!mir_http_transient(resp, e) || attempt >= c->opt->retries)
            break;
        if (req->cancel && *req->cancel)
            break;
        mir_http_wait(c, resp, attempt, req->url);
    }
    if (e) {
        char d[300];
        mir_http_describe(resp, d, sizeof d);
        return tnrec__fail(TNREC_ENET, "%s %s failed: %s\nhint: check the URL and the network; "
                           "transient failures were retried %u times",
                           req->method ? req->method : (req->head ? "HEAD" : "GET"), req->url, d,
                           c->opt->retries);
    }
    return TNREC_OK;
}
