/* tests/mirror/test_mirror_sigv4.c: tnrec_sigv4_sign against AWS's
 * published Signature V4 vectors (header and query signing): canonical
 * request, string to sign, signature and Authorization header, each case.
 * The vectors live in tests/mirror/sigv4/ (with their licence); their
 * folder is argv[1] or $TNREC_SIGV4_VECTORS, set by ctest. A missing
 * folder is a failure: the vectors ship with the tree. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define TNREC_TESTING 1 /* tnrec_sigv4_sign (tnrec/testing.h) */
#include "tnrec/testing.h"
#include "tnrec_test.h"

static char *slurp(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

/* The string value of "key" in a flat JSON text, or NULL. */
static char *json_str(const char *js, const char *key)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(js, pat);
    if (!p)
        return NULL;
    p = strchr(p + strlen(pat), ':');
    if (!p)
        return NULL;
    p++;
    while (*p == ' ')
        p++;
    if (*p != '"') {
        const char *e = p + strcspn(p, ",}\n");
        return strndup(p, (size_t)(e - p));
    }
    p++;
    const char *e = strchr(p, '"');
    return e ? strndup(p, (size_t)(e - p)) : NULL;
}

static void trim_end(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

static int run_case(const char *dir, const char *name)
{
    char cdir[4096];
    snprintf(cdir, sizeof cdir, "%s/%s", dir, name);
    char *req = slurp(cdir, "request.txt"), *ctx = slurp(cdir, "context.json");
    if (!req || !ctx) {
        free(req);
        free(ctx);
        return 0;
    }
    int failures_before = tnrec_test_failures;
    /* request line: METHOD SP path[?query] SP HTTP/1.1 (the path may hold spaces) */
    char *eol = strchr(req, '\n');
    *eol = '\0';
    char *line = req;
    char *sp1 = strchr(line, ' ');
    char *sp2 = strrchr(line, ' ');
    *sp1 = '\0';
    *sp2 = '\0';
    char *target = sp1 + 1;
    char *qm = strchr(target, '?');
    char *query = NULL;
    if (qm) {
        *qm = '\0';
        query = qm + 1;
    }
    /* headers, folded lines joined, then the body */
    tnrec_sigv4_header hdr[32];
    char *names[32] = { 0 }, *vals[32] = { 0 };
    size_t nh = 0;
    char *p = eol + 1;
    const char *body = "";
    while (*p) {
        char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0) {
            body = e ? e + 1 : "";
            break;
        }
        if ((p[0] == ' ' || p[0] == '\t') && nh) {
            size_t ol = strlen(vals[nh - 1]);
            vals[nh - 1] = realloc(vals[nh - 1], ol + len + 2);
            vals[nh - 1][ol] = '\n';
            memcpy(vals[nh - 1] + ol + 1, p, len);
            vals[nh - 1][ol + 1 + len] = '\0';
        } else {
            char *colon = memchr(p, ':', len);
            names[nh] = strndup(p, (size_t)(colon - p));
            vals[nh] = strndup(colon + 1, len - (size_t)(colon - p) - 1);
            nh++;
        }
        p = e ? e + 1 : p + len;
    }
    char *ak = json_str(ctx, "access_key_id"), *sk = json_str(ctx, "secret_access_key");
    char *tok = json_str(ctx, "token"), *region = json_str(ctx, "region");
    char *service = json_str(ctx, "service"), *ts = json_str(ctx, "timestamp");
    char *norm = json_str(ctx, "normalize"), *signbody = json_str(ctx, "sign_body");
    char *omit = json_str(ctx, "omit_session_token"), *expires = json_str(ctx, "expiration_in_seconds");
    char date[17];
    /* 2015-08-30T12:36:00Z -> 20150830T123600Z */
    snprintf(date, sizeof date, "%.4s%.2s%.2sT%.2s%.2s%.2sZ", ts, ts + 5, ts + 8, ts + 11, ts + 14, ts + 17);
    unsigned char d[32];
    unsigned int dl;
    EVP_Digest(body, strlen(body), d, &dl, EVP_sha256(), NULL);
    char payload[65];
    for (int i = 0; i < 32; i++)
        sprintf(payload + 2 * i, "%02x", d[i]);

    for (int mode = 0; mode < 2; mode++) {
        size_t n = nh;
        for (size_t i = 0; i < nh; i++) {
            hdr[i].name = names[i];
            hdr[i].value = vals[i];
        }
        if (mode == 0 && signbody && strcmp(signbody, "true") == 0) {
            hdr[n].name = "x-amz-content-sha256";
            hdr[n].value = payload;
            n++;
        }
        tnrec_sigv4_input in = {
            .method = line, .path = target, .query = query, .headers = hdr, .n_headers = n,
            .payload_hash = payload, .access_key = ak, .secret_key = sk, .session_token = tok,
            .region = region, .service = service, .amz_date = date,
            .normalize_path = norm && strcmp(norm, "true") == 0, .presign = mode == 1,
            .expires = expires ? (unsigned)atoi(expires) : 3600,
            .omit_session_token = omit && strcmp(omit, "true") == 0,
        };
        tnrec_sigv4_result r;
        CHECK_OK(tnrec_sigv4_sign(&r, &in));
        const char *pre = mode ? "query" : "header";
        char fn[64];
        snprintf(fn, sizeof fn, "%s-canonical-request.txt", pre);
        char *want_cr = slurp(cdir, fn);
        snprintf(fn, sizeof fn, "%s-string-to-sign.txt", pre);
        char *want_sts = slurp(cdir, fn);
        snprintf(fn, sizeof fn, "%s-signature.txt", pre);
        char *want_sig = slurp(cdir, fn);
        snprintf(fn, sizeof fn, "%s-signed-request.txt", pre);
        char *want_req = slurp(cdir, fn);
        if (want_cr && want_sts && want_sig && r.canonical_request) {
            trim_end(want_cr);
            trim_end(want_sts);
            trim_end(want_sig);
            CHECK(strcmp(r.canonical_request, want_cr) == 0);
            CHECK(strcmp(r.string_to_sign, want_sts) == 0);
            CHECK(strcmp(r.signature, want_sig) == 0);
            if (mode == 0 && want_req) {
                char *a = strstr(want_req, "Authorization:");
                CHECK(a && r.authorization && strncmp(a + 14, r.authorization, strlen(r.authorization)) == 0);
            }
            if (mode == 1 && want_req && r.query) {
                /* every X-Amz-* parameter we send appears in the expected
                 * request line (the vectors keep the other ones as written) */
                char *q = strdup(r.query);
                for (char *t = strtok(q, "&"); t; t = strtok(NULL, "&"))
                    if (strncmp(t, "X-Amz-", 6) == 0)
                        CHECK(strstr(want_req, t) != NULL);
                free(q);
            }
            CHECK(strstr(r.canonical_request, sk) == NULL);
            CHECK(!r.authorization || strstr(r.authorization, sk) == NULL);
        } else {
            CHECK(!"expected files or result missing");
        }
        if (tnrec_test_failures != failures_before)
            fprintf(stderr, "case %s (%s) failed\n  got canonical request:\n%s\n", name, pre,
                    r.canonical_request ? r.canonical_request : "(none)");
        free(want_cr);
        free(want_sts);
        free(want_sig);
        free(want_req);
        tnrec_sigv4_result_clear(&r);
    }
    for (size_t i = 0; i < nh; i++) {
        free(names[i]);
        free(vals[i]);
    }
    free(ak); free(sk); free(tok); free(region); free(service); free(ts);
    free(norm); free(signbody); free(omit); free(expires);
    free(req);
    free(ctx);
    return 1;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : getenv("TNREC_SIGV4_VECTORS");
    if (!dir) {
        fprintf(stderr, "usage: test_mirror_sigv4 VECTOR_DIR (or set TNREC_SIGV4_VECTORS)\n");
        return 2;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "FAILED: no SigV4 vectors at '%s' (they belong in tests/mirror/sigv4/)\n", dir);
        return 1;
    }
    int cases = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            cases += run_case(dir, e->d_name);
    closedir(d);
    printf("%d vector cases\n", cases);
    CHECK(cases >= 30);

    /* bad input is refused with a message, not a crash */
    tnrec_sigv4_input bad = { .method = "GET" };
    tnrec_sigv4_result r;
    CHECK(tnrec_sigv4_sign(&r, &bad) == TNREC_EINVAL);
    tnrec_sigv4_result_clear(&r);
    tnrec_sigv4_result_clear(NULL);
    return tnrec_test_result("test_mirror_sigv4");
}
