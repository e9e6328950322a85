/* mirror/mirror_sigv4.c: AWS Signature Version 4 (header and query
 * signing) with OpenSSL's HMAC and SHA-256.
 *
 * Why our own: Debian 12's libcurl (7.88) signs with CURLOPT_AWS_SIGV4
 * but neither sorts nor re-encodes the query string (curl issue 9717,
 * fixed in later releases), and every multipart call carries a query
 * (?uploads, ?partNumber=N&uploadId=X); it cannot presign either. One
 * signer for every request keeps the behaviour the same whatever curl is
 * installed. Checked against AWS's published vectors and botocore.
 *
 * Invariants: the secret key is only ever fed to HMAC; no output string
 * holds it. Paths are encoded once (S3 rule); normalize_path is for the
 * generic-service vectors. */
#include <ctype.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "mirror_internal.h"

typedef struct kv {
    char *name;
    char *value;
} kv;

static void kv_free(kv *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].value);
    }
    free(v);
}

static int kv_cmp(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* Trim and collapse every run of whitespace (newlines of folded values
 * included) into one space. */
static char *header_value(const char *v)
{
    size_t n = strlen(v);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t j = 0;
    int space = 0;
    for (size_t i = 0; i < n; i++) {
        if (isspace((unsigned char)v[i])) {
            space = 1;
            continue;
        }
        if (space && j > 0)
            out[j++] = ' ';
        space = 0;
        out[j++] = v[i];
    }
    out[j] = '\0';
    return out;
}

static void canonical_uri(mir_buf *b, const char *path, int normalize)
{
    if (!path || !*path) {
        mir_buf_adds(b, "/");
        return;
    }
    if (!normalize) {
        mir_uri_encode(b, path, strlen(path), 1);
        return;
    }
    /* segments, "." dropped, ".." pops, empty ones dropped */
    size_t n = strlen(path);
    const char **seg = calloc(n + 1, sizeof *seg);
    size_t *len = calloc(n + 1, sizeof *len);
    if (!seg || !len) {
        b->oom = 1;
        free(seg);
        free(len);
        return;
    }
    size_t k = 0;
    const char *s = path;
    for (const char *p = path;; p++) {
        if (*p == '/' || *p == '\0') {
            size_t l = (size_t)(p - s);
            if (l == 0 || (l == 1 && s[0] == '.')) {
            } else if (l == 2 && s[0] == '.' && s[1] == '.') {
                if (k)
                    k--;
            } else {
                seg[k] = s;
                len[k++] = l;
            }
            if (!*p)
                break;
            s = p + 1;
        }
    }
    for (size_t i = 0; i < k; i++) {
        mir_buf_adds(b, "/");
        mir_uri_encode(b, seg[i], len[i], 0);
    }
    if (k == 0 || path[n - 1] == '/')
        mir_buf_adds(b, "/");
    free(seg);
    free(len);
}

static tnrec_err parse_query(const char *q, kv **out, size_t *out_n, size_t extra)
{
    size_t cap = extra + 1;
    for (const char *p = q ? q : ""; *p; p++)
        if (*p == '&')
            cap++;
    kv *v = calloc(cap + 1, sizeof *v);
    if (!v)
        return tnrec__fail(TNREC_ENOMEM, "out of memory signing a request");
    size_t n = 0;
    const char *s = q ? q : "";
    while (*s) {
        const char *e = strchr(s, '&');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l) {
            const char *eq = memchr(s, '=', l);
            size_t nl = eq ? (size_t)(eq - s) : l;
            v[n].name = mir_uri_decode(s, nl);
            v[n].value = eq ? mir_uri_decode(eq + 1, l - nl - 1) : strdup("");
            n++;
            if (!v[n - 1].name || !v[n - 1].value) {
                kv_free(v, n);
                return tnrec__fail(TNREC_ENOMEM, "out of memory signing a request");
            }
        }
        s += l;
        if (*s == '&')
            s++;
    }
    *out = v;
    *out_n = n;
    return TNREC_OK;
}

static int add_kv(kv *v, size_t *n, const char *name, const char *value)
{
    v[*n].name = strdup(name);
    v[*n].value = strdup(value);
    (*n)++;
    return v[*n - 1].name && v[*n - 1].value ? 0 : -1;
}

static int hmac(unsigned char out[32], const void *key, size_t klen, const char *msg)
{
    unsigned int ol = 0;
    return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &ol) &&
                   ol == 32
               ? 0
               : -1;
}

tnrec_err tnrec_sigv4_sign(tnrec_sigv4_result *out, const tnrec_sigv4_input *in)
{
    tnrec_err err = TNREC_OK;
    kv *q = NULL, *h = NULL;
    size_t nq = 0, nh = 0;
    mir_buf creq = { 0 }, sts = { 0 }, signed_hdrs = { 0 }, cq = { 0 }, scope = { 0 }, tmp = { 0 };
    char *kdate_key = NULL;
    memset(out, 0, sizeof *out);
    if (!in || !in->method || !in->access_key || !in->secret_key || !in->region || !in->service ||
        !in->amz_date || strlen(in->amz_date) != 16 || !in->payload_hash)
        return tnrec__fail(TNREC_EINVAL, "signing a request needs method, keys, region, service, "
                                         "payload hash and an X-Amz-Date of the form YYYYMMDDTHHMMSSZ");
    char date[9];
    memcpy(date, in->amz_date, 8);
    date[8] = '\0';
    mir_buf_addf(&scope, "%s/%s/%s/aws4_request", date, in->region, in->service);

    /* headers: lower-case names, duplicates joined with ',' in order */
    h = calloc(in->n_headers + 3, sizeof *h);
    if (!h) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory signing a request");
        goto done;
    }
    for (size_t i = 0; i < in->n_headers; i++) {
        char *name = strdup(in->headers[i].name);
        char *val = header_value(in->headers[i].value ? in->headers[i].value : "");
        if (!name || !val) {
            free(name);
            free(val);
            err = tnrec__fail(TNREC_ENOMEM, "out of memory signing a request");
            goto done;
        }
        for (char *p = name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        size_t j = 0;
        while (j < nh && strcmp(h[j].name, name) != 0)
            j++;
        if (j < nh) {
            mir_buf_adds(&tmp, h[j].value);
            mir_buf_adds(&tmp, ",");
            mir_buf_adds(&tmp, val);
            free(h[j].value);
            h[j].value = mir_buf_take(&tmp);
            free(name);
            free(val);
        } else {
            h[nh].name = name;
            h[nh].value = val;
            nh++;
        }
    }
    if (!in->presign) {
        if (add_kv(h, &nh, "x-amz-date", in->amz_date) ||
            (in->session_token && !in->omit_session_token &&
             add_kv(h, &nh, "x-amz-security-token", in->session_token))) {
            err = tnrec__fail(TNREC_ENOMEM, "out of memory signing a request");
            goto done;
        }
    }
    qsort(h, nh, sizeof *h, kv_cmp);
    for (size_t i = 0; i < nh; i++) {
        if (i)
            mir_buf_adds(&signed_hdrs, ";");
        mir_buf_adds(&signed_hdrs, h[i].name);
    }

    /* query: decoded, re-encoded, sorted by name then value */
    if ((err = parse_query(in->query, &q, &nq, 6)))
        goto done;
    if (in->presign) {
        char cred[512], exp[32];
        snprintf(cred, sizeof cred, "%s/%s", in->access_key, scope.data ? scope.data : "");
        snprintf(exp, sizeof exp, "%u", in->expires ? in->expires : 3600);
        if (add_kv(q, &nq, "X-Amz-Algorithm", "AWS4-HMAC-SHA256") ||
            add_kv(q, &nq, "X-Amz-Credential", cred) || add_kv(q, &nq, "X-Amz-Date", in->amz_date) ||
            add_kv(q, &nq, "X-Amz-Expires", exp) ||
            (in->session_token && !in->omit_session_token &&
             add_kv(q, &nq, "X-Amz-Security-Token", in->session_token)) ||
            add_kv(q, &nq, "X-Amz-SignedHeaders", signed_hdrs.data ? signed_hdrs.data : "")) {
            err = tnrec__fail(TNREC_ENOMEM, "out of memory signing a request");
            goto done;
        }
    }
    /* encoded first, then sorted: the order is that of the encoded bytes */
    for (size_t i = 0; i < nq; i++) {
        mir_uri_encode(&tmp, q[i].name, strlen(q[i].name), 0);
        char *en = mir_buf_take(&tmp);
        mir_uri_encode(&tmp, q[i].value, strlen(q[i].value), 0);
        char *ev = mir_buf_take(&tmp);
        if (!en || !ev) {
            free(en);
            free(ev);
            err = tnrec__fail(TNREC_ENOMEM, "out of memory signing a request");
            goto done;
        }
        free(q[i].name);
        free(q[i].value);
        q[i].name = en;
        q[i].value = ev;
    }
    qsort(q, nq, sizeof *q, kv_cmp);
    for (size_t i = 0; i < nq; i++)
        mir_buf_addf(&cq, "%s%s=%s", i ? "&" : "", q[i].name, q[i].value);

    mir_buf_addf(&creq, "%s\n", in->method);
    canonical_uri(&creq, in->path, in->normalize_path);
    mir_buf_addf(&creq, "\n%s\n", cq.data ? cq.data : "");
    for (size_t i = 0; i < nh; i++)
        mir_buf_addf(&creq, "%s:%s\n", h[i].name, h[i].value);
    mir_buf_addf(&creq, "\n%s\n%s", signed_hdrs.data ? signed_hdrs.data : "", in->payload_hash);
    if (creq.oom || scope.oom || cq.oom || signed_hdrs.oom) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory signing a request");
        goto done;
    }
    char creq_hash[65];
    mir_sha256_hex(creq_hash, creq.data, creq.len);
    mir_buf_addf(&sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", in->amz_date, scope.data, creq_hash);

    unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
    size_t sl = strlen(in->secret_key);
    kdate_key = malloc(sl + 5);
    if (!kdate_key || sts.oom) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory signing a request");
        goto done;
    }
    memcpy(kdate_key, "AWS4", 4);
    memcpy(kdate_key + 4, in->secret_key, sl + 1);
    if (hmac(k1, kdate_key, sl + 4, date) || hmac(k2, k1, 32, in->region) ||
        hmac(k3, k2, 32, in->service) || hmac(k4, k3, 32, "aws4_request") ||
        hmac(sig, k4, 32, sts.data)) {
        err = tnrec__fail(TNREC_EINTERNAL, "HMAC-SHA256 failed in OpenSSL");
        goto done;
    }
    OPENSSL_cleanse(k1, sizeof k1);
    OPENSSL_cleanse(k2, sizeof k2);
    OPENSSL_cleanse(k3, sizeof k3);
    OPENSSL_cleanse(k4, sizeof k4);
    mir_hex(out->signature, sig, 32);

    if (in->presign) {
        mir_buf_addf(&tmp, "%s&X-Amz-Signature=%s", cq.data ? cq.data : "", out->signature);
        if (in->session_token && in->omit_session_token) {
            mir_buf_adds(&tmp, "&X-Amz-Security-Token=");
            mir_uri_encode(&tmp, in->session_token, strlen(in->session_token), 0);
        }
        out->query = mir_buf_take(&tmp);
    } else {
        mir_buf_addf(&tmp, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                     in->access_key, scope.data, signed_hdrs.data, out->signature);
        out->authorization = mir_buf_take(&tmp);
    }
    out->canonical_request = mir_buf_take(&creq);
    out->string_to_sign = mir_buf_take(&sts);
    if (!out->canonical_request || !out->string_to_sign ||
        (in->presign ? !out->query : !out->authorization)) {
        tnrec_sigv4_result_clear(out);
        err = tnrec__fail(TNREC_ENOMEM, "out of memory signing a request");
    }
done:
    if (kdate_key) {
        OPENSSL_cleanse(kdate_key, strlen(kdate_key));
        free(kdate_key);
    }
    kv_free(q, nq);
    kv_free(h, nh);
    mir_buf_free(&creq);
    mir_buf_free(&sts);
    mir_buf_free(&signed_hdrs);
    mir_buf_free(&cq);
    mir_buf_free(&scope);
    mir_buf_free(&tmp);
    return err;
}

void tnrec_sigv4_result_clear(tnrec_sigv4_result *r)
{
    if (!r)
        return;
    free(r->canonical_request);
    free(r->string_to_sign);
    free(r->authorization);
    free(r->query);
    memset(r, 0, sizeof *r);
}
