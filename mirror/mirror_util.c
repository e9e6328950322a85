/* mirror/mirror_util.c: small helpers of the mirror: growing strings, URI
 * encoding, MD5/SHA-256 through OpenSSL's EVP, name safety, backoff.
 *
 * Does no I/O on the network. Hashes are OpenSSL's; nothing here
 * re-implements a digest. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "mirror_internal.h"

static int buf_grow(mir_buf *b, size_t extra)
{
    if (b->oom)
        return -1;
    if (extra >= SIZE_MAX - b->len || tnrec__grow(&b->data, &b->cap, b->len + extra + 1, 1, "a text buffer")) {
        b->oom = 1;
        return -1;
    }
    return 0;
}

void mir_buf_add(mir_buf *b, const void *p, size_t n)
{
    if (buf_grow(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void mir_buf_adds(mir_buf *b, const char *s) { mir_buf_add(b, s, strlen(s)); }

void mir_buf_addf(mir_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_grow(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void mir_buf_free(mir_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

char *mir_buf_take(mir_buf *b)
{
    if (b->oom) {
        mir_buf_free(b);
        return NULL;
    }
    char *s = b->data ? b->data : strdup("");
    memset(b, 0, sizeof *b);
    return s;
}

static int unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.' || ch == '~';
}

void mir_uri_encode(mir_buf *b, const char *s, size_t n, int keep_slash)
{
    static const char hexd[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (unreserved(ch) || (keep_slash && ch == '/')) {
            mir_buf_add(b, &s[i], 1);
        } else {
            char e[3] = { '%', hexd[ch >> 4], hexd[ch & 15] };
            mir_buf_add(b, e, 3);
        }
    }
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

char *mir_uri_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

void mir_hex(char *out, const unsigned char *bin, size_t n)
{
    static const char hexd[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexd[bin[i] >> 4];
        out[2 * i + 1] = hexd[bin[i] & 15];
    }
    out[2 * n] = '\0';
}

void mir_sha256_hex(char out[65], const void *p, size_t n)
{
    unsigned char d[32];
    unsigned int dl = 0;
    if (!EVP_Digest(p, n, d, &dl, EVP_sha256(), NULL) || dl != 32) {
        out[0] = '\0';
        return;
    }
    mir_hex(out, d, 32);
}

void mir_md5_base64(char out[25], const unsigned char md5[16])
{
    EVP_EncodeBlock((unsigned char *)out, md5, 16);
    out[24] = '\0';
}

int mir_is_md5_hex(const char *s)
{
    if (!s || strlen(s) != 32)
        return 0;
    for (int i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

tnrec_err mir_md5_init(mir_md5 *m)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL)) {
        EVP_MD_CTX_free(ctx);
        m->ctx = NULL;
        return tnrec__fail(TNREC_EINTERNAL, "cannot set up MD5 (OpenSSL EVP)\n"
                           "hint: is MD5 disabled by the OpenSSL configuration (FIPS)?");
    }
    m->ctx = ctx;
    return TNREC_OK;
}

void mir_md5_update(mir_md5 *m, const void *p, size_t n)
{
    if (m->ctx && n)
        EVP_DigestUpdate((EVP_MD_CTX *)m->ctx, p, n);
}

void mir_md5_final(mir_md5 *m, unsigned char out[16])
{
    unsigned int dl = 0;
    memset(out, 0, 16);
    if (m->ctx)
        EVP_DigestFinal_ex((EVP_MD_CTX *)m->ctx, out, &dl);
}

void mir_md5_free(mir_md5 *m)
{
    if (m && m->ctx) {
        EVP_MD_CTX_free((EVP_MD_CTX *)m->ctx);
        m->ctx = NULL;
    }
}

tnrec_err mir_md5_file(char hex[33], const char *path, uint64_t *done)
{
    tnrec_err err = TNREC_OK;
    mir_md5 m = { 0 };
    size_t cap = 4u << 20;
    unsigned char *buf = malloc(cap);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (!buf) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory hashing '%s'", path);
        goto done;
    }
    if (fd < 0) {
        err = tnrec__fail_errno(TNREC_EIO, errno, "cannot open '%s'", path);
        goto done;
    }
    if ((err = mir_md5_init(&m)))
        goto done;
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = tnrec__fail_errno(TNREC_EIO, errno, "cannot read '%s'", path);
            goto done;
        }
        if (n == 0)
            break;
        mir_md5_update(&m, buf, (size_t)n);
        if (done)
            __atomic_add_fetch(done, (uint64_t)n, __ATOMIC_RELAXED);
    }
    unsigned char d[16];
    mir_md5_final(&m, d);
    mir_hex(hex, d, 16);
done:
    mir_md5_free(&m);
    if (fd >= 0)
        close(fd);
    free(buf);
    return err;
}

int mir_name_is_safe(const char *name)
{
    if (!name || !*name || name[0] == '/')
        return 0;
    const char *seg = name;
    for (const char *p = name;; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '/' || ch == '\0') {
            size_t n = (size_t)(p - seg);
            if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
                return 0;
            if (ch == '\0')
                break;
            seg = p + 1;
            continue;
        }
        if (ch < 0x20 || ch == 0x7f || ch == '\\')
            return 0;
    }
    return 1;
}

tnrec_err mir_make_parents(const char *path) { return tnrec__mkdir_parents(path, 0777); }

int mir_stopping(const mir_ctx *c)
{
    return c && c->opt && c->opt->stop && *c->opt->stop;
}

void mir_sleep_ms(unsigned ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

unsigned mir_backoff_ms(unsigned base, unsigned cap, unsigned attempt)
{
    uint64_t d = base;
    for (unsigned i = 0; i < attempt && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    unsigned r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        r = (unsigned)rand();
    /* jitter: a factor in [0.5, 1.0] so parallel clients spread out */
    double f = 0.5 + 0.5 * ((double)(r % 10001) / 10000.0);
    return (unsigned)((double)d * f);
}

void mir_log(mir_ctx *c, const char *fmt, ...)
{
    if (!c || !c->opt || !c->opt->log)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    mir_redact(c, line);
    pthread_mutex_lock(&c->log_lock);
    c->opt->log(c->opt->ud, line);
    pthread_mutex_unlock(&c->log_lock);
}

static void redact_one(char *s, const char *secret)
{
    if (!secret || strlen(secret) < 4)
        return;
    size_t n = strlen(secret);
    char *p;
    while ((p = strstr(s, secret)) != NULL) {
        memmove(p + 3, p + n, strlen(p + n) + 1);
        memcpy(p, "***", 3);
    }
}

/* The user:password part of any URL in s becomes three asterisks. */
static void redact_userinfo(char *s)
{
    for (char *p = strstr(s, "://"); p; p = strstr(p, "://")) {
        char *h = p + 3;
        size_t n = strcspn(h, "/?# \n'\"");
        char *at = memchr(h, '@', n);
        if (at) {
            memmove(h + 3, at, strlen(at) + 1);
            memcpy(h, "***", 3);
        }
        p = h;
    }
}

void mir_redact(const mir_ctx *c, char *s)
{
    if (!s)
        return;
    redact_userinfo(s);
    if (!c)
        return;
    redact_one(s, c->secret_key);
    redact_one(s, c->session_token);
}
