/* mirror/mirror_s3.c: the S3 calls a mirror needs, path-style, signed with
 * Signature V4: HEAD/GET/PUT object, multipart upload (create, upload part,
 * list parts, complete, abort), list uploads and list objects.
 *
 * Uploads: objects under the multipart threshold go in one PUT; larger
 * ones in parts uploaded `connections` at a time. An unfinished multipart
 * upload of the same key is resumed: its parts are listed and a part is
 * sent again only when its ETag is not the MD5 of our bytes. The source
 * MD5 travels as x-amz-meta-md5 and every part as Content-MD5, so the
 * server checks what it stores. In stream mode the parts are hashed in
 * order and the upload is aborted, never completed, when the whole MD5
 * differs from the expected one: no partial or wrong object appears.
 *
 * Does not: virtual-hosted addressing, SSE-C, versioned buckets. Replies
 * are small XML documents; mir_xml_next reads the few elements we need.
 * Credentials live only in mir_ctx and reach only the signer. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "mirror_internal.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MAX_PARTS 10000u

/* ---- XML ---- */

static void xml_unescape(mir_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '&') {
            mir_buf_add(b, &s[i], 1);
            continue;
        }
        const char *semi = memchr(s + i, ';', n - i);
        if (!semi || semi - (s + i) > 10) {
            mir_buf_add(b, &s[i], 1);
            continue;
        }
        size_t l = (size_t)(semi - (s + i)) + 1;
        char ch = 0;
        if (l == 5 && !memcmp(s + i, "&amp;", 5)) ch = '&';
        else if (l == 4 && !memcmp(s + i, "&lt;", 4)) ch = '<';
        else if (l == 4 && !memcmp(s + i, "&gt;", 4)) ch = '>';
        else if (l == 6 && !memcmp(s + i, "&quot;", 6)) ch = '"';
        else if (l == 6 && !memcmp(s + i, "&apos;", 6)) ch = '\'';
        else if (l > 3 && s[i + 1] == '#') {
            unsigned long cp = s[i + 2] == 'x' ? strtoul(s + i + 3, NULL, 16) : strtoul(s + i + 2, NULL, 10);
            unsigned char u[4];
            size_t k = 0;
            if (cp < 0x80) u[k++] = (unsigned char)cp;
            else if (cp < 0x800) { u[k++] = (unsigned char)(0xC0 | (cp >> 6)); u[k++] = (unsigned char)(0x80 | (cp & 0x3F)); }
            else if (cp < 0x10000) { u[k++] = (unsigned char)(0xE0 | (cp >> 12)); u[k++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); u[k++] = (unsigned char)(0x80 | (cp & 0x3F)); }
            else if (cp < 0x110000) { u[k++] = (unsigned char)(0xF0 | (cp >> 18)); u[k++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F)); u[k++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); u[k++] = (unsigned char)(0x80 | (cp & 0x3F)); }
            mir_buf_add(b, u, k);
            i += l - 1;
            continue;
        }
        if (ch) {
            mir_buf_add(b, &ch, 1);
            i += l - 1;
        } else {
            mir_buf_add(b, &s[i], 1);
        }
    }
}

char *mir_xml_next(const char *xml, size_t len, const char *tag, size_t *pos)
{
    char open[80], close[80];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    size_t ol = strlen(open), cl = strlen(close);
    for (size_t i = pos ? *pos : 0; i + ol <= len; i++) {
        if (memcmp(xml + i, open, ol) != 0)
            continue;
        size_t s = i + ol;
        for (size_t j = s; j + cl <= len; j++) {
            if (memcmp(xml + j, close, cl) == 0) {
                mir_buf b = { 0 };
                xml_unescape(&b, xml + s, j - s);
                if (pos)
                    *pos = j + cl;
                return mir_buf_take(&b);
            }
        }
        return NULL;
    }
    return NULL;
}

/* ---- client ---- */

tnrec_err mir_s3_open(mir_s3 *out, mir_ctx *c, const char *s3url)
{
    memset(out, 0, sizeof *out);
    out->ctx = c;
    if (strncmp(s3url, "s3://", 5) != 0)
        return tnrec__fail(TNREC_EINVAL, "'%s' is not an s3://bucket/prefix URL", s3url);
    const char *b = s3url + 5;
    size_t bl = strcspn(b, "/");
    if (bl == 0 || bl > 63)
        return tnrec__fail(TNREC_EINVAL, "'%s' has no valid bucket name\nhint: s3://bucket/prefix", s3url);
    for (size_t i = 0; i < bl; i++)
        if (!(islower((unsigned char)b[i]) || isdigit((unsigned char)b[i]) || b[i] == '-' || b[i] == '.'))
            return tnrec__fail(TNREC_EINVAL, "bucket name in '%s' may hold only a-z, 0-9, '-' and '.'", s3url);
    const char *p = b + bl;
    if (*p == '/')
        p++;
    mir_buf pre = { 0 };
    mir_buf_adds(&pre, p);
    if (pre.len && pre.data[pre.len - 1] != '/')
        mir_buf_adds(&pre, "/");
    out->prefix = mir_buf_take(&pre);
    out->bucket = strndup(b, bl);
    if (out->prefix && out->prefix[0]) {
        /* the prefix must itself be a safe relative path */
        char *t = strdup(out->prefix);
        if (t) {
            t[strlen(t) - 1] = '\0';
            int ok = mir_name_is_safe(t);
            free(t);
            if (!ok) {
                mir_s3_close(out);
                return tnrec__fail(TNREC_EINVAL, "prefix of '%s' must be relative, without '..', '.' "
                                   "or empty parts", s3url);
            }
        }
    }
    const tnrec_mirror_options *o = c->opt;
    const char *ep = o->endpoint;
    const char *region = o->region;
    if (!region || !*region)
        region = getenv("AWS_REGION");
    if (!region || !*region)
        region = getenv("AWS_DEFAULT_REGION");
    char b2region[64] = "";
    if (ep && (!o->region || !*o->region)) {
        const char *h = strstr(ep, "://s3.");
        const char *e = h ? strstr(h, ".backblazeb2.com") : NULL;
        if (h && e && e - (h + 6) < (long)sizeof b2region && e > h + 6) {
            memcpy(b2region, h + 6, (size_t)(e - (h + 6)));
            b2region[e - (h + 6)] = '\0';
            region = b2region;
        }
    }
    if (!region || !*region)
        region = "us-east-1";
    out->region = strdup(region);
    mir_buf e = { 0 };
    if (ep && *ep)
        mir_buf_adds(&e, ep);
    else
        mir_buf_addf(&e, "https://s3.%s.amazonaws.com", region);
    while (e.len && e.data[e.len - 1] == '/')
        e.data[--e.len] = '\0';
    out->endpoint = mir_buf_take(&e);
    if (!out->prefix || !out->bucket || !out->region || !out->endpoint) {
        mir_s3_close(out);
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    }
    if (strncasecmp(out->endpoint, "https://", 8) == 0)
        out->https = 1;
    else if (strncasecmp(out->endpoint, "http://", 7) != 0) {
        tnrec_err err = tnrec__fail(TNREC_EINVAL, "endpoint '%s' must start with https:// (or http:// "
                                    "for a local test server)", out->endpoint);
        mir_s3_close(out);
        return err;
    }
    const char *h = out->endpoint + (out->https ? 8 : 7);
    if (strchr(h, '/')) {
        tnrec_err err = tnrec__fail(TNREC_EINVAL, "endpoint '%s' must be scheme://host[:port] without a path",
                                    out->endpoint);
        mir_s3_close(out);
        return err;
    }
    out->host = strdup(h);
    if (!out->host) {
        mir_s3_close(out);
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    }
    if (!c->access_key || !c->secret_key) {
        mir_s3_close(out);
        return tnrec__fail(TNREC_EAUTH, "no credentials for '%s'\nhint: set AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY, or B2_APPLICATION_KEY_ID and B2_APPLICATION_KEY", s3url);
    }
    return TNREC_OK;
}

void mir_s3_close(mir_s3 *s)
{
    if (!s)
        return;
    free(s->endpoint);
    free(s->host);
    free(s->region);
    free(s->bucket);
    free(s->prefix);
    memset(s, 0, sizeof *s);
}

typedef struct s3_call {
    const char *method;
    const char *key;          /* NULL: the bucket itself */
    const char *query;        /* encoded, may be NULL */
    const char *const *extra; /* more "Name: value" headers (signed) */
    size_t n_extra;
    const void *body;
    size_t body_len;
    int head;
    mir_sink_fn sink;
    void *sink_ud;
    int has_range;
    uint64_t range_from;
    volatile int *cancel;
} s3_call;

static void s3_describe(mir_s3 *s, const s3_call *k, char *out, size_t cap)
{
    snprintf(out, cap, "s3://%s/%s", s->bucket, k->key ? k->key : "");
}

/* One signed attempt. */
static tnrec_err s3_once(mir_s3 *s, const s3_call *k, mir_resp *resp)
{
    mir_ctx *c = s->ctx;
    tnrec_err err = TNREC_OK;
    mir_buf path = { 0 }, url = { 0 }, hv = { 0 };
    tnrec_sigv4_result sig = { 0 };
    char **lines = NULL;
    size_t nl = 0;
    mir_buf_addf(&path, "/%s", s->bucket);
    if (k->key)
        mir_buf_addf(&path, "/%s", k->key);
    mir_buf_adds(&url, s->endpoint);
    if (path.data)
        mir_uri_encode(&url, path.data, path.len, 1);
    if (k->query && *k->query)
        mir_buf_addf(&url, "?%s", k->query);
    char date[17];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", &tm);
    char payload[65];
    if (s->https)
        snprintf(payload, sizeof payload, "UNSIGNED-PAYLOAD");
    else if (k->body_len)
        mir_sha256_hex(payload, k->body, k->body_len);
    else
        snprintf(payload, sizeof payload, "%s", EMPTY_SHA256);
    size_t nh = k->n_extra + 2;
    tnrec_sigv4_header *hs = calloc(nh, sizeof *hs);
    char **names = calloc(nh, sizeof *names);
    lines = calloc(nh + 4, sizeof *lines);
    if (!hs || !names || !lines || path.oom || url.oom) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory");
        goto done;
    }
    hs[0].name = "host";
    hs[0].value = s->host;
    hs[1].name = "x-amz-content-sha256";
    hs[1].value = payload;
    for (size_t i = 0; i < k->n_extra; i++) {
        const char *colon = strchr(k->extra[i], ':');
        if (!colon) {
            err = tnrec__fail(TNREC_EINTERNAL, "malformed header '%s'", k->extra[i]);
            goto done;
        }
        names[i + 2] = strndup(k->extra[i], (size_t)(colon - k->extra[i]));
        hs[i + 2].name = names[i + 2];
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        hs[i + 2].value = v;
        if (!names[i + 2]) {
            err = tnrec__fail(TNREC_ENOMEM, "out of memory");
            goto done;
        }
    }
    tnrec_sigv4_input in = {
        .method = k->head ? "HEAD" : k->method, .path = path.data, .query = k->query,
        .headers = hs, .n_headers = nh, .payload_hash = payload,
        .access_key = c->access_key, .secret_key = c->secret_key, .session_token = c->session_token,
        .region = s->region, .service = "s3", .amz_date = date,
    };
    if ((err = tnrec_sigv4_sign(&sig, &in)))
        goto done;
    mir_buf_addf(&hv, "x-amz-content-sha256: %s", payload);
    lines[nl++] = mir_buf_take(&hv);
    mir_buf_addf(&hv, "x-amz-date: %s", date);
    lines[nl++] = mir_buf_take(&hv);
    mir_buf_addf(&hv, "Authorization: %s", sig.authorization);
    lines[nl++] = mir_buf_take(&hv);
    if (c->session_token) {
        mir_buf_addf(&hv, "x-amz-security-token: %s", c->session_token);
        lines[nl++] = mir_buf_take(&hv);
    }
    for (size_t i = 0; i < k->n_extra; i++)
        lines[nl++] = strdup(k->extra[i]);
    for (size_t i = 0; i < nl; i++)
        if (!lines[i]) {
            err = tnrec__fail(TNREC_ENOMEM, "out of memory");
            goto done;
        }
    mir_req req = { .method = k->head ? NULL : k->method, .url = url.data,
                    .headers = (const char *const *)lines, .n_headers = nl, .body = k->body,
                    .body_len = k->body_len, .head = k->head, .sink = k->sink, .sink_ud = k->sink_ud,
                    .has_range = k->has_range, .range_from = k->range_from, .range_to = UINT64_MAX,
                    .cancel = k->cancel };
    err = mir_http_once(c, &req, resp);
done:
    for (size_t i = 0; i < nl; i++) {
        if (lines[i])
            OPENSSL_cleanse(lines[i], strlen(lines[i]));
        free(lines[i]);
    }
    free(lines);
    if (names)
        for (size_t i = 0; i < nh; i++)
            free(names[i]);
    free(names);
    free(hs);
    tnrec_sigv4_result_clear(&sig);
    mir_buf_free(&path);
    mir_buf_free(&url);
    mir_buf_free(&hv);
    return err;
}

/* Error text of an S3 reply: "HTTP 403 SignatureDoesNotMatch: ...". */
static tnrec_err s3_error(mir_s3 *s, const s3_call *k, const mir_resp *r)
{
    char where[1200];
    s3_describe(s, k, where, sizeof where);
    char *code = r->body.data ? mir_xml_next(r->body.data, r->body.len, "Code", NULL) : NULL;
    char *msg = r->body.data ? mir_xml_next(r->body.data, r->body.len, "Message", NULL) : NULL;
    if (code && strlen(code) > 100)
        code[100] = '\0';
    if (msg && strlen(msg) > 1000)
        msg[1000] = '\0';
    char text[2600];
    snprintf(text, sizeof text, "%s %s: HTTP %ld%s%s%s%s", k->head ? "HEAD" : k->method, where,
             r->status, code ? " " : "", code ? code : "", msg ? ": " : "", msg ? msg : "");
    mir_redact(s->ctx, text);
    free(code);
    free(msg);
    if (r->status == 401 || r->status == 403)
        return tnrec__fail(TNREC_EAUTH, "%s\nhint: check the access key pair (AWS_ACCESS_KEY_ID/"
                           "AWS_SECRET_ACCESS_KEY or B2_APPLICATION_KEY_ID/B2_APPLICATION_KEY), its "
                           "rights on the bucket, --region and the clock", text);
    if (r->status == 404)
        return tnrec__fail(TNREC_ENOTFOUND, "%s", text);
    return tnrec__fail(TNREC_ENET, "%s", text);
}

/* A call with retries; OK only with a 2xx answer (404 too when allow_404). */
static tnrec_err s3_call_retry(mir_s3 *s, const s3_call *k, mir_resp *resp, int allow_404)
{
    mir_ctx *c = s->ctx;
    tnrec_err e = TNREC_OK;
    for (unsigned attempt = 0;; attempt++) {
        e = s3_once(s, k, resp);
        if (e != TNREC_OK && e != TNREC_ENET)
            return e;
        if (!mir_http_transient(resp, e) || attempt >= c->opt->retries || (k->cancel && *k->cancel))
            break;
        char where[1200];
        s3_describe(s, k, where, sizeof where);
        mir_http_wait(c, resp, attempt, where);
    }
    if (e) {
        char where[1200], d[300];
        s3_describe(s, k, where, sizeof where);
        mir_http_describe(resp, d, sizeof d);
        return tnrec__fail(TNREC_ENET, "%s %s failed: %s\nhint: check --endpoint and the network",
                           k->head ? "HEAD" : k->method, where, d);
    }
    if (resp->status >= 200 && resp->status <= 299)
        return TNREC_OK;
    if (resp->status == 404 && allow_404)
        return TNREC_OK;
    return s3_error(s, k, resp);
}

tnrec_err mir_s3_head_object(mir_s3 *s, const char *key, mir_s3_head *out)
{
    memset(out, 0, sizeof *out);
    mir_resp r = { 0 };
    s3_call k = { .method = "HEAD", .key = key, .head = 1 };
    tnrec_err err = s3_call_retry(s, &k, &r, 1);
    if (!err && r.status != 404) {
        out->exists = 1;
        out->size = r.content_length;
        snprintf(out->md5, sizeof out->md5, "%s", r.meta_md5);
        for (char *p = out->md5; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    }
    mir_resp_free(&r);
    return err;
}

static void strip_quotes(char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        memmove(s, s + 1, n - 2);
        s[n - 2] = '\0';
    }
    for (char *p = s; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

/* ---- multipart ---- */

typedef struct part_info {
    uint64_t size;        /* as listed; 0 when absent */
    char etag[40];        /* MD5 hex of the part, without quotes */
} part_info;

typedef struct up {
    mir_s3 *s;
    const mir_upload *u;
    char *upload_id;
    uint64_t part_size;
    unsigned n_parts;
    part_info *have;      /* [n_parts], listed before we start */
    char (*etags)[80];    /* [n_parts], as the server gave them, for Complete */
    unsigned next_part;   /* work counter (under lock) */
    unsigned next_hash;   /* stream mode: next part to feed the whole-file MD5 */
    mir_md5 whole;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    volatile int failed;
    tnrec_err err;
    char msg[1500];
} up;

static void up_fail(up *p, tnrec_err err)
{
    pthread_mutex_lock(&p->lock);
    if (!p->failed) {
        p->failed = 1;
        p->err = err;
        snprintf(p->msg, sizeof p->msg, "%s", tnrec_error_last());
    }
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static tnrec_err list_uploads(mir_s3 *s, const char *prefix, int exact, char ***out_keys,
                              char ***out_ids, size_t *out_n)
{
    tnrec_err err = TNREC_OK;
    char **keys = NULL, **ids = NULL;
    size_t n = 0, kcap = 0, icap = 0;
    char *key_marker = NULL, *id_marker = NULL;
    mir_resp r = { 0 };
    for (;;) {
        mir_buf q = { 0 };
        if (key_marker) {
            mir_buf_adds(&q, "key-marker=");
            mir_uri_encode(&q, key_marker, strlen(key_marker), 0);
            mir_buf_adds(&q, "&");
        }
        mir_buf_adds(&q, "prefix=");
        mir_uri_encode(&q, prefix, strlen(prefix), 0);
        if (id_marker) {
            mir_buf_adds(&q, "&upload-id-marker=");
            mir_uri_encode(&q, id_marker, strlen(id_marker), 0);
        }
        mir_buf_adds(&q, "&uploads=");
        s3_call k = { .method = "GET", .key = NULL, .query = q.data };
        err = q.oom ? tnrec__fail(TNREC_ENOMEM, "out of memory") : s3_call_retry(s, &k, &r, 0);
        mir_buf_free(&q);
        if (err)
            goto done;
        size_t pos = 0;
        char *up_xml;
        while ((up_xml = mir_xml_next(r.body.data ? r.body.data : "", r.body.len, "Upload", &pos))) {
            char *key = mir_xml_next(up_xml, strlen(up_xml), "Key", NULL);
            char *id = mir_xml_next(up_xml, strlen(up_xml), "UploadId", NULL);
            free(up_xml);
            if (!key || !id || (exact && strcmp(key, prefix) != 0)) {
                free(key);
                free(id);
                continue;
            }
            if ((err = tnrec__grow(&keys, &kcap, n + 1, sizeof *keys, "the multipart uploads")) != TNREC_OK ||
                (err = tnrec__grow(&ids, &icap, n + 1, sizeof *ids, "the multipart uploads")) != TNREC_OK) {
                free(key);
                free(id);
                goto done;
            }
            keys[n] = key;
            ids[n] = id;
            n++;
        }
        char *trunc = mir_xml_next(r.body.data ? r.body.data : "", r.body.len, "IsTruncated", NULL);
        int more = trunc && strcmp(trunc, "true") == 0;
        free(trunc);
        free(key_marker);
        free(id_marker);
        key_marker = more ? mir_xml_next(r.body.data, r.body.len, "NextKeyMarker", NULL) : NULL;
        id_marker = more ? mir_xml_next(r.body.data, r.body.len, "NextUploadIdMarker", NULL) : NULL;
        if (!more || !key_marker)
            break;
    }
done:
    free(key_marker);
    free(id_marker);
    mir_resp_free(&r);
    if (err) {
        for (size_t i = 0; i < n; i++) {
            free(keys[i]);
            free(ids[i]);
        }
        free(keys);
        free(ids);
        return err;
    }
    *out_keys = keys;
    *out_ids = ids;
    *out_n = n;
    return TNREC_OK;
}

static void free_list(char **keys, char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(keys[i]);
        free(ids[i]);
    }
    free(keys);
    free(ids);
}

static tnrec_err abort_upload(mir_s3 *s, const char *key, const char *id)
{
    mir_buf q = { 0 };
    mir_buf_adds(&q, "uploadId=");
    mir_uri_encode(&q, id, strlen(id), 0);
    mir_resp r = { 0 };
    s3_call k = { .method = "DELETE", .key = key, .query = q.data };
    tnrec_err err = q.oom ? tnrec__fail(TNREC_ENOMEM, "out of memory") : s3_call_retry(s, &k, &r, 1);
    mir_resp_free(&r);
    mir_buf_free(&q);
    if (!err)
        mir_log(s->ctx, "aborted the unfinished upload of s3://%s/%s", s->bucket, key);
    return err;
}

tnrec_err mir_s3_abort_incomplete(mir_s3 *s, size_t *out)
{
    char **keys = NULL, **ids = NULL;
    size_t n = 0, done = 0;
    tnrec_err err = list_uploads(s, s->prefix, 0, &keys, &ids, &n);
    for (size_t i = 0; i < n && !err; i++) {
        err = abort_upload(s, keys[i], ids[i]);
        if (!err)
            done++;
    }
    free_list(keys, ids, n);
    if (out)
        *out = done;
    return err;
}

/* Parts already uploaded under id: fills p->have (by part number). */
static tnrec_err list_parts(up *p, uint64_t *first_size)
{
    mir_s3 *s = p->s;
    tnrec_err err = TNREC_OK;
    mir_resp r = { 0 };
    unsigned marker = 0;
    *first_size = 0;
    for (;;) {
        mir_buf q = { 0 };
        mir_buf_adds(&q, "max-parts=1000");
        if (marker)
            mir_buf_addf(&q, "&part-number-marker=%u", marker);
        mir_buf_adds(&q, "&uploadId=");
        mir_uri_encode(&q, p->upload_id, strlen(p->upload_id), 0);
        s3_call k = { .method = "GET", .key = p->u->key, .query = q.data };
        err = q.oom ? tnrec__fail(TNREC_ENOMEM, "out of memory") : s3_call_retry(s, &k, &r, 0);
        mir_buf_free(&q);
        if (err)
            break;
        size_t pos = 0;
        char *px;
        while ((px = mir_xml_next(r.body.data ? r.body.data : "", r.body.len, "Part", &pos))) {
            char *num = mir_xml_next(px, strlen(px), "PartNumber", NULL);
            char *etag = mir_xml_next(px, strlen(px), "ETag", NULL);
            char *size = mir_xml_next(px, strlen(px), "Size", NULL);
            unsigned long pn = num ? strtoul(num, NULL, 10) : 0;
            uint64_t sz = size ? strtoull(size, NULL, 10) : 0;
            if (pn == 1)
                *first_size = sz;
            if (pn >= 1 && pn <= MAX_PARTS && etag) {
                if (p->have && pn <= p->n_parts) {
                    p->have[pn - 1].size = sz;
                    snprintf(p->have[pn - 1].etag, sizeof p->have[pn - 1].etag, "%s", etag);
                    strip_quotes(p->have[pn - 1].etag);
                }
            }
            free(num);
            free(etag);
            free(size);
            free(px);
        }
        char *trunc = mir_xml_next(r.body.data ? r.body.data : "", r.body.len, "IsTruncated", NULL);
        char *next = mir_xml_next(r.body.data ? r.body.data : "", r.body.len, "NextPartNumberMarker", NULL);
        int more = trunc && strcmp(trunc, "true") == 0 && next;
        unsigned nm = next ? (unsigned)strtoul(next, NULL, 10) : 0;
        free(trunc);
        free(next);
        if (!more || nm <= marker)
            break;
        marker = nm;
    }
    mir_resp_free(&r);
    return err;
}

static uint64_t choose_part_size(uint64_t want, uint64_t size)
{
    const uint64_t min = 5ull << 20, max = 5ull << 30;
    if (want < min)
        want = min;
    if (want > max)
        want = max;
    if ((size + want - 1) / want > MAX_PARTS) {
        want = (size + MAX_PARTS - 1) / MAX_PARTS;
        want = (want + (1 << 20) - 1) & ~(uint64_t)((1 << 20) - 1);
    }
    return want;
}

static tnrec_err create_upload(up *p)
{
    mir_s3 *s = p->s;
    char meta[80];
    snprintf(meta, sizeof meta, "x-amz-meta-md5: %s", p->u->md5);
    const char *extra[] = { meta };
    mir_resp r = { 0 };
    s3_call k = { .method = "POST", .key = p->u->key, .query = "uploads=", .extra = extra, .n_extra = 1 };
    tnrec_err err = s3_call_retry(s, &k, &r, 0);
    if (!err) {
        p->upload_id = mir_xml_next(r.body.data ? r.body.data : "", r.body.len, "UploadId", NULL);
        if (!p->upload_id)
            err = tnrec__fail(TNREC_EFORMAT, "s3://%s/%s: the answer to CreateMultipartUpload has no UploadId",
                              s->bucket, p->u->key);
    }
    mir_resp_free(&r);
    return err;
}

static void *part_worker(void *arg)
{
    up *p = arg;
    mir_s3 *s = p->s;
    const mir_upload *u = p->u;
    unsigned char *buf = malloc(p->part_size ? (size_t)p->part_size : 1);
    mir_resp r = { 0 };
    if (!buf) {
        up_fail(p, tnrec__fail(TNREC_ENOMEM, "out of memory for a %llu-byte part",
                               (unsigned long long)p->part_size));
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&p->lock);
        unsigned idx = p->next_part;
        if (!p->failed && idx < p->n_parts)
            p->next_part++;
        int stop = p->failed || idx >= p->n_parts || (u->cancel && *u->cancel);
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        uint64_t off = (uint64_t)idx * p->part_size;
        size_t len = (size_t)(off + p->part_size <= u->size ? p->part_size : u->size - off);
        tnrec_err err = u->read(u->read_ud, off, buf, len, (volatile int *)&p->failed);
        if (err) {
            up_fail(p, err);
            break;
        }
        unsigned char md5[16];
        mir_md5 m;
        if ((err = mir_md5_init(&m))) {
            up_fail(p, err);
            break;
        }
        mir_md5_update(&m, buf, len);
        mir_md5_final(&m, md5);
        mir_md5_free(&m);
        char hex[33], b64[25];
        mir_hex(hex, md5, 16);
        mir_md5_base64(b64, md5);
        if (u->hash_in_order) {
            pthread_mutex_lock(&p->lock);
            while (!p->failed && p->next_hash != idx)
                pthread_cond_wait(&p->cond, &p->lock);
            if (!p->failed) {
                mir_md5_update(&p->whole, buf, len);
                p->next_hash++;
                pthread_cond_broadcast(&p->cond);
            }
            int f = p->failed;
            pthread_mutex_unlock(&p->lock);
            if (f)
                break;
        }
        if (p->have && p->have[idx].etag[0] && strcmp(p->have[idx].etag, hex) == 0 &&
            p->have[idx].size == len) {
            snprintf(p->etags[idx], sizeof p->etags[idx], "%s", hex);
            mir_log(s->ctx, "s3://%s/%s: part %u already uploaded", s->bucket, u->key, idx + 1);
            if (u->done && !u->hash_in_order)
                __atomic_add_fetch(u->done, (uint64_t)len, __ATOMIC_RELAXED);
            continue;
        }
        char q[400], md5h[64];
        snprintf(q, sizeof q, "partNumber=%u&uploadId=", idx + 1);
        mir_buf qb = { 0 };
        mir_buf_adds(&qb, q);
        mir_uri_encode(&qb, p->upload_id, strlen(p->upload_id), 0);
        snprintf(md5h, sizeof md5h, "Content-MD5: %s", b64);
        const char *extra[] = { md5h };
        s3_call k = { .method = "PUT", .key = u->key, .query = qb.data, .extra = extra, .n_extra = 1,
                      .body = buf, .body_len = len, .cancel = (volatile int *)&p->failed };
        err = qb.oom ? tnrec__fail(TNREC_ENOMEM, "out of memory") : s3_call_retry(s, &k, &r, 0);
        mir_buf_free(&qb);
        if (err) {
            up_fail(p, err);
            break;
        }
        char raw[80], et[80];
        snprintf(raw, sizeof raw, "%s", r.etag);
        size_t rl = strlen(raw);
        if (rl >= 2 && raw[0] == '"' && raw[rl - 1] == '"') {
            memmove(raw, raw + 1, rl - 2);
            raw[rl - 2] = '\0';
        }
        snprintf(et, sizeof et, "%s", raw);
        strip_quotes(et);
        if (!raw[0]) {
            up_fail(p, tnrec__fail(TNREC_EFORMAT, "s3://%s/%s: part %u was answered without an ETag",
                                   s->bucket, u->key, idx + 1));
            break;
        }
        /* The server checked Content-MD5 already; an ETag that is an MD5
         * must also be ours. Other ETag forms (SSE-KMS, some S3-compatible
         * stores) are accepted, such parts are just not reused on resume. */
        if (mir_is_md5_hex(et) && strcmp(et, hex) != 0) {
            up_fail(p, tnrec__fail(TNREC_ECORRUPT, "s3://%s/%s: part %u stored with ETag %s, "
                                   "its MD5 is %s", s->bucket, u->key, idx + 1, et, hex));
            break;
        }
        snprintf(p->etags[idx], sizeof p->etags[idx], "%s", raw);
        mir_log(s->ctx, "s3://%s/%s: part %u uploaded", s->bucket, u->key, idx + 1);
        __atomic_add_fetch(&s->ctx->bytes_transferred, (uint64_t)len, __ATOMIC_RELAXED);
        if (u->done && !u->hash_in_order)
            __atomic_add_fetch(u->done, (uint64_t)len, __ATOMIC_RELAXED);
    }
    mir_resp_free(&r);
    free(buf);
    return NULL;
}

static tnrec_err complete_upload(up *p)
{
    mir_s3 *s = p->s;
    mir_buf x = { 0 }, q = { 0 };
    mir_resp r = { 0 };
    tnrec_err err = TNREC_OK;
    mir_buf_adds(&x, "<CompleteMultipartUpload>");
    for (unsigned i = 0; i < p->n_parts; i++)
        mir_buf_addf(&x, "<Part><PartNumber>%u</PartNumber><ETag>\"%s\"</ETag></Part>", i + 1, p->etags[i]);
    mir_buf_adds(&x, "</CompleteMultipartUpload>");
    mir_buf_adds(&q, "uploadId=");
    mir_uri_encode(&q, p->upload_id, strlen(p->upload_id), 0);
    const char *extra[] = { "Content-Type: application/xml" };
    s3_call k = { .method = "POST", .key = p->u->key, .query = q.data, .extra = extra, .n_extra = 1,
                  .body = x.data, .body_len = x.len };
    if (x.oom || q.oom) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory");
        goto done;
    }
    if ((err = s3_call_retry(s, &k, &r, 0)))
        goto done;
    /* S3 may answer 200 and put the error in the body */
    char *code = r.body.data ? mir_xml_next(r.body.data, r.body.len, "Code", NULL) : NULL;
    if (code || (r.body.data && strstr(r.body.data, "<Error>"))) {
        free(code);
        r.status = 500;
        err = s3_error(s, &k, &r);
    }
done:
    mir_resp_free(&r);
    mir_buf_free(&x);
    mir_buf_free(&q);
    return err;
}

static tnrec_err multipart(mir_s3 *s, const mir_upload *u)
{
    tnrec_err err = TNREC_OK;
    up p = { .s = s, .u = u };
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.cond, NULL);
    pthread_t th[64];
    size_t nth = 0;
    char **keys = NULL, **ids = NULL;
    size_t nup = 0;
    uint64_t part_size = choose_part_size(s->ctx->opt->part_size, u->size);

    /* an unfinished upload of this key: resume it when its part size fits */
    if ((err = list_uploads(s, u->key, 1, &keys, &ids, &nup)))
        goto done;
    for (size_t i = 0; i < nup && !p.upload_id; i++) {
        p.upload_id = ids[i];
        uint64_t first = 0;
        p.have = NULL;
        if ((err = list_parts(&p, &first))) {
            p.upload_id = NULL;
            goto done;
        }
        if (first == 0)
            first = part_size; /* nothing uploaded yet: keep ours */
        uint64_t np = (u->size + first - 1) / first;
        if (first < (5ull << 20) || np > MAX_PARTS) {
            p.upload_id = NULL;
            continue;
        }
        part_size = first;
        ids[i] = NULL; /* p owns it now */
        mir_log(s->ctx, "s3://%s/%s: resuming an unfinished multipart upload", s->bucket, u->key);
    }
    p.part_size = part_size;
    p.n_parts = (unsigned)((u->size + part_size - 1) / part_size);
    p.have = calloc(p.n_parts, sizeof *p.have);
    p.etags = calloc(p.n_parts, sizeof *p.etags);
    if (!p.have || !p.etags) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory");
        goto done;
    }
    if (p.upload_id) {
        uint64_t first;
        if ((err = list_parts(&p, &first)))
            goto done;
    } else if ((err = create_upload(&p))) {
        goto done;
    }
    if (u->hash_in_order && (err = mir_md5_init(&p.whole)))
        goto done;
    unsigned conns = s->ctx->opt->connections ? s->ctx->opt->connections : 1;
    if (conns > 64)
        conns = 64;
    if (conns > p.n_parts)
        conns = p.n_parts;
    for (unsigned i = 0; i < conns; i++) {
        if (pthread_create(&th[nth], NULL, part_worker, &p) != 0) {
            up_fail(&p, tnrec__fail(TNREC_EINTERNAL, "cannot start an upload thread"));
            break;
        }
        nth++;
    }
    for (size_t i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    if (!p.failed && u->cancel && *u->cancel)
        up_fail(&p, tnrec__fail(TNREC_ENET, "upload of s3://%s/%s cancelled", s->bucket, u->key));
    if (p.failed) {
        err = tnrec__fail(p.err, "%s\nhint: rerun the same command; uploaded parts are kept and reused",
                          p.msg);
        goto done;
    }
    for (unsigned i = 0; i < p.n_parts; i++)
        if (!p.etags[i][0]) {
            err = tnrec__fail(TNREC_EINTERNAL, "s3://%s/%s: part %u was never uploaded", s->bucket, u->key, i + 1);
            goto done;
        }
    if (u->hash_in_order) {
        unsigned char d[16];
        char hex[33];
        mir_md5_final(&p.whole, d);
        mir_hex(hex, d, 16);
        if (strcmp(hex, u->md5) != 0) {
            abort_upload(s, u->key, p.upload_id);
            tnrec_error_clear();
            err = tnrec__fail(TNREC_ECORRUPT, "the bytes read for s3://%s/%s have MD5 %s, the source "
                              "says %s; the upload was aborted and no object was written\n"
                              "hint: rerun to try again; if it fails again the source is damaged",
                              s->bucket, u->key, hex, u->md5);
            goto done;
        }
    }
    err = complete_upload(&p);
done:
    mir_md5_free(&p.whole);
    free_list(keys, ids, nup);
    free(p.upload_id);
    free(p.have);
    free(p.etags);
    pthread_mutex_destroy(&p.lock);
    pthread_cond_destroy(&p.cond);
    return err;
}

static tnrec_err single_put(mir_s3 *s, const mir_upload *u)
{
    tnrec_err err = TNREC_OK;
    unsigned char *buf = malloc(u->size ? (size_t)u->size : 1);
    mir_resp r = { 0 };
    if (!buf)
        return tnrec__fail(TNREC_ENOMEM, "out of memory for %llu bytes", (unsigned long long)u->size);
    if (u->size && (err = u->read(u->read_ud, 0, buf, (size_t)u->size, u->cancel)))
        goto done;
    unsigned char d[16];
    mir_md5 m;
    if ((err = mir_md5_init(&m)))
        goto done;
    mir_md5_update(&m, buf, (size_t)u->size);
    mir_md5_final(&m, d);
    mir_md5_free(&m);
    char hex[33], b64[25];
    mir_hex(hex, d, 16);
    mir_md5_base64(b64, d);
    if (strcmp(hex, u->md5) != 0) {
        err = tnrec__fail(TNREC_ECORRUPT, "the bytes read for s3://%s/%s have MD5 %s, the source says %s; "
                          "nothing was uploaded\nhint: rerun to try again", s->bucket, u->key, hex, u->md5);
        goto done;
    }
    char h1[80], h2[80];
    snprintf(h1, sizeof h1, "Content-MD5: %s", b64);
    snprintf(h2, sizeof h2, "x-amz-meta-md5: %s", u->md5);
    const char *extra[] = { h1, h2 };
    s3_call k = { .method = "PUT", .key = u->key, .extra = extra, .n_extra = 2, .body = buf,
                  .body_len = (size_t)u->size, .cancel = u->cancel };
    if ((err = s3_call_retry(s, &k, &r, 0)))
        goto done;
    __atomic_add_fetch(&s->ctx->bytes_transferred, u->size, __ATOMIC_RELAXED);
    if (u->done)
        __atomic_add_fetch(u->done, u->size, __ATOMIC_RELAXED);
done:
    mir_resp_free(&r);
    free(buf);
    return err;
}

tnrec_err mir_s3_upload(mir_s3 *s, const mir_upload *u)
{
    if (!mir_is_md5_hex(u->md5))
        return tnrec__fail(TNREC_EINVAL, "s3://%s/%s: no MD5 known for the source", s->bucket, u->key);
    uint64_t threshold = s->ctx->opt->multipart_threshold ? s->ctx->opt->multipart_threshold
                                                          : choose_part_size(s->ctx->opt->part_size, u->size);
    if (u->size > (5ull << 30) && threshold > (5ull << 30))
        threshold = 5ull << 30;
    tnrec_err err = u->size < threshold || u->size == 0 ? single_put(s, u) : multipart(s, u);
    if (err)
        return err;
    /* the object must now be there, whole */
    mir_s3_head h;
    if ((err = mir_s3_head_object(s, u->key, &h)))
        return err;
    if (!h.exists || h.size != u->size || strcmp(h.md5, u->md5) != 0)
        return tnrec__fail(TNREC_ECORRUPT, "s3://%s/%s reads back as %s%llu bytes, md5 '%s' "
                           "(expected %llu bytes, md5 %s)", s->bucket, u->key, h.exists ? "" : "missing, ",
                           (unsigned long long)h.size, h.md5, (unsigned long long)u->size, u->md5);
    return TNREC_OK;
}

tnrec_err mir_s3_list(mir_s3 *s, mir_s3_object **out, size_t *out_n)
{
    tnrec_err err = TNREC_OK;
    mir_s3_object *v = NULL;
    size_t n = 0, cap = 0;
    char *token = NULL;
    mir_resp r = { 0 };
    size_t pl = strlen(s->prefix);
    for (;;) {
        mir_buf q = { 0 };
        if (token) {
            mir_buf_adds(&q, "continuation-token=");
            mir_uri_encode(&q, token, strlen(token), 0);
            mir_buf_adds(&q, "&");
        }
        mir_buf_adds(&q, "list-type=2&prefix=");
        mir_uri_encode(&q, s->prefix, pl, 0);
        s3_call k = { .method = "GET", .query = q.data };
        err = q.oom ? tnrec__fail(TNREC_ENOMEM, "out of memory") : s3_call_retry(s, &k, &r, 0);
        mir_buf_free(&q);
        if (err)
            goto done;
        size_t pos = 0;
        char *cx;
        while ((cx = mir_xml_next(r.body.data ? r.body.data : "", r.body.len, "Contents", &pos))) {
            char *key = mir_xml_next(cx, strlen(cx), "Key", NULL);
            char *size = mir_xml_next(cx, strlen(cx), "Size", NULL);
            free(cx);
            if (!key || strncmp(key, s->prefix, pl) != 0 || !key[pl]) {
                free(key);
                free(size);
                continue;
            }
            if ((err = tnrec__grow(&v, &cap, n + 1, sizeof *v, "the listed objects")) != TNREC_OK) {
                free(key);
                free(size);
                goto done;
            }
            v[n].key = strdup(key + pl);
            v[n].size = size ? strtoull(size, NULL, 10) : 0;
            free(key);
            free(size);
            if (!v[n].key) {
                err = tnrec__fail(TNREC_ENOMEM, "out of memory");
                goto done;
            }
            n++;
        }
        char *trunc = mir_xml_next(r.body.data ? r.body.data : "", r.body.len, "IsTruncated", NULL);
        int more = trunc && strcmp(trunc, "true") == 0;
        free(trunc);
        free(token);
        token = more ? mir_xml_next(r.body.data, r.body.len, "NextContinuationToken", NULL) : NULL;
        if (!token)
            break;
    }
done:
    free(token);
    mir_resp_free(&r);
    if (err) {
        for (size_t i = 0; i < n; i++)
            free(v[i].key);
        free(v);
        return err;
    }
    *out = v;
    *out_n = n;
    return TNREC_OK;
}

typedef struct get_ctx {
    mir_sink_fn sink;
    void *ud;
    uint64_t pos;
    int stopped;
} get_ctx;

static int get_sink(void *ud, const void *p, size_t n)
{
    get_ctx *g = ud;
    if (g->sink(g->ud, p, n)) {
        g->stopped = 1;
        return 1;
    }
    g->pos += n;
    return 0;
}

tnrec_err mir_s3_get(mir_s3 *s, const char *key, mir_sink_fn sink, void *ud, volatile int *cancel)
{
    get_ctx g = { .sink = sink, .ud = ud };
    mir_resp r = { 0 };
    tnrec_err err = TNREC_OK;
    unsigned attempt = 0;
    for (;;) {
        uint64_t before = g.pos;
        s3_call k = { .method = "GET", .key = key, .sink = get_sink, .sink_ud = &g,
                      .has_range = g.pos > 0, .range_from = g.pos, .cancel = cancel };
        tnrec_err e = s3_once(s, &k, &r);
        if (e && e != TNREC_ENET) {
            err = e;
            break;
        }
        if (g.stopped) {
            err = tnrec__fail(TNREC_EINTERNAL, "reading s3://%s/%s was stopped", s->bucket, key);
            break;
        }
        if (!e && r.status >= 200 && r.status <= 299) {
            if (r.content_length == TNREC_MIRROR_SIZE_UNKNOWN || r.received >= r.content_length)
                break;
            e = TNREC_ENET;
            r.curl_code = 18;
            snprintf(r.errbuf, sizeof r.errbuf, "body ended early");
        }
        if (!e && !mir_http_transient(&r, e)) {
            err = s3_error(s, &k, &r);
            break;
        }
        if (g.pos > before)
            attempt = 0;
        if (!mir_http_transient(&r, e) || attempt >= s->ctx->opt->retries) {
            char d[300];
            mir_http_describe(&r, d, sizeof d);
            err = tnrec__fail(TNREC_ENET, "reading s3://%s/%s failed: %s", s->bucket, key, d);
            break;
        }
        mir_http_wait(s->ctx, &r, attempt++, key);
    }
    __atomic_add_fetch(&s->ctx->bytes_transferred, g.pos, __ATOMIC_RELAXED);
    mir_resp_free(&r);
    return err;
}
