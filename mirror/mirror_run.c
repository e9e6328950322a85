/* mirror/mirror_run.c: a mirror or verify run: resolve the sources, hand
 * the files to `jobs` worker threads, report progress from the calling
 * thread, and gather the outcome of each file into a report.
 *
 * Destinations: a directory (download straight to it), an S3 prefix via a
 * staging directory (download, check, upload, delete the staged copy), or
 * an S3 prefix with stream set (Range reads of the source feed the
 * multipart parts in memory: at most `connections` parts in flight).
 * A file that is already at the destination with the same size and MD5 is
 * skipped. One file failing does not stop the others.
 *
 * Credentials are read from the environment into the run's context and
 * never leave it except through the signer. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mirror_internal.h"

typedef enum { DEST_DIR, DEST_S3, DEST_URL } dest_kind;

typedef struct run {
    mir_ctx ctx;
    tnrec_mirror_options opt;   /* with defaults filled in */
    mir_items items;
    tnrec_mirror_file *files;
    dest_kind kind;
    const char *dest;           /* directory, URL or s3:// */
    mir_s3 s3;
    int have_s3;
    int verify;
    unsigned next;              /* work counter (under lock) */
    size_t finished;            /* files done, failed or skipped (under lock) */
    pthread_mutex_t lock;
    pthread_cond_t changed;     /* signalled when `finished` grows */
    volatile int cancel;
    int inited;                 /* locks set up */
} run;

static void set_failed(run *r, size_t i, tnrec_err err)
{
    const char *m = tnrec_error_last();
    char *msg = strdup(m[0] ? m : tnrec_err_name(err));
    if (msg)
        mir_redact(&r->ctx, msg);
    pthread_mutex_lock(&r->lock);
    r->files[i].err = err;
    r->files[i].message = msg ? msg : NULL;
    r->files[i].state = TNREC_MIRROR_FAILED;
    pthread_mutex_unlock(&r->lock);
}

static void set_state(run *r, size_t i, tnrec_mirror_state st)
{
    pthread_mutex_lock(&r->lock);
    r->files[i].state = st;
    memcpy(r->files[i].md5, r->items.v[i].md5, sizeof r->files[i].md5);
    r->files[i].size = r->items.v[i].size;
    pthread_mutex_unlock(&r->lock);
}

/* ---- reading sources for uploads ---- */

typedef struct file_reader {
    int fd;
    const char *path;
} file_reader;

static tnrec_err read_file_part(void *ud, uint64_t off, void *buf, size_t len, volatile int *cancel)
{
    file_reader *f = ud;
    return tnrec__pread_full(f->fd, buf, len, off, f->path);
}

typedef struct mem_sink {
    unsigned char *buf;
    size_t len, cap;
    uint64_t *done;
} mem_sink;

static int mem_sink_fn(void *ud, const void *p, size_t n)
{
    mem_sink *m = ud;
    if (n > m->cap - m->len)
        return 1; /* more than asked for: refuse */
    memcpy(m->buf + m->len, p, n);
    m->len += n;
    if (m->done)
        __atomic_add_fetch(m->done, (uint64_t)n, __ATOMIC_RELAXED);
    return 0;
}

typedef struct url_reader {
    run *r;
    const char *url;
    uint64_t *done;
} url_reader;

static tnrec_err read_url_part(void *ud, uint64_t off, void *buf, size_t len, volatile int *cancel)
{
    url_reader *u = ud;
    mem_sink m = { .buf = buf, .cap = len, .done = u->done };
    if (len == 0)
        return TNREC_OK;
    tnrec_err err = mir_fetch_range(&u->r->ctx, u->url, off, off + len - 1, mem_sink_fn, &m, cancel);
    if (!err && m.len != len)
        err = tnrec__fail(TNREC_ETRUNC, "'%s' gave %zu bytes at offset %llu, expected %zu", u->url,
                          m.len, (unsigned long long)off, len);
    return err;
}

/* ---- one file of a mirror ---- */

static tnrec_err mirror_to_dir(run *r, size_t i)
{
    mir_item *it = &r->items.v[i];
    tnrec_mirror_file *f = &r->files[i];
    char *final = tnrec__path_append(r->dest, it->name);
    tnrec_err err = TNREC_OK;
    if (!final)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    struct stat st;
    if (stat(final, &st) == 0 && S_ISREG(st.st_mode) && it->md5[0] &&
        (it->size == TNREC_MIRROR_SIZE_UNKNOWN || (uint64_t)st.st_size == it->size)) {
        char md5[33];
        uint64_t scratch = 0;
        if (mir_md5_file(md5, final, &scratch) == TNREC_OK && strcmp(md5, it->md5) == 0) {
            mir_log(&r->ctx, "%s: already in '%s' with the same size and MD5", it->name, r->dest);
            __atomic_store_n(&f->done, (uint64_t)st.st_size, __ATOMIC_RELAXED);
            set_state(r, i, TNREC_MIRROR_SKIPPED);
            free(final);
            return TNREC_OK;
        }
        tnrec_error_clear();
    }
    mir_fetch_stats fs = { .done = &f->done, .cancel = &r->cancel };
    err = mir_fetch_file(&r->ctx, it, final, &fs);
    free(final);
    if (!err)
        set_state(r, i, TNREC_MIRROR_COPIED);
    return err;
}

static int object_matches(run *r, const char *key, const mir_item *it)
{
    mir_s3_head h;
    if (mir_s3_head_object(&r->s3, key, &h) != TNREC_OK) {
        tnrec_error_clear();
        return 0;
    }
    return h.exists && it->md5[0] && it->size != TNREC_MIRROR_SIZE_UNKNOWN && h.size == it->size &&
           strcmp(h.md5, it->md5) == 0;
}

static tnrec_err mirror_to_s3(run *r, size_t i)
{
    mir_item *it = &r->items.v[i];
    tnrec_mirror_file *f = &r->files[i];
    tnrec_err err = TNREC_OK;
    char *key = tnrec__path_append(r->s3.prefix, it->name);
    char *staged = NULL;
    int fd = -1;
    if (!key)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    if (object_matches(r, key, it)) {
        mir_log(&r->ctx, "%s: s3://%s/%s already has the same size and MD5", it->name, r->s3.bucket, key);
        __atomic_store_n(&f->done, it->size, __ATOMIC_RELAXED);
        set_state(r, i, TNREC_MIRROR_SKIPPED);
        goto done;
    }
    if (r->opt.stream) {
        if (!it->md5[0] || it->size == TNREC_MIRROR_SIZE_UNKNOWN) {
            err = tnrec__fail(TNREC_EINVAL, "'%s' publishes no %s, which --stream needs to check the "
                              "upload before it completes\nhint: mirror it without --stream (it is "
                              "staged and checked on disk first)", it->url, it->md5[0] ? "size" : "MD5");
            goto done;
        }
        url_reader ur = { .r = r, .url = it->url, .done = &f->done };
        mir_upload u = { .key = key, .size = it->size, .md5 = it->md5, .read = read_url_part,
                         .read_ud = &ur, .hash_in_order = 1, .done = &f->done, .cancel = &r->cancel };
        err = mir_s3_upload(&r->s3, &u);
        if (!err)
            set_state(r, i, TNREC_MIRROR_COPIED);
        goto done;
    }
    staged = tnrec__path_append(r->opt.staging, it->name);
    if (!staged) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory");
        goto done;
    }
    struct stat st;
    int have_staged = stat(staged, &st) == 0 && it->md5[0] && (uint64_t)st.st_size == it->size;
    if (have_staged) {
        /* a finished download from an earlier run: check it before trusting it */
        char md5[33];
        have_staged = mir_md5_file(md5, staged, NULL) == TNREC_OK && strcmp(md5, it->md5) == 0;
        tnrec_error_clear();
    }
    if (!have_staged) {
        mir_fetch_stats fs = { .done = &f->done, .cancel = &r->cancel };
        if ((err = mir_fetch_file(&r->ctx, it, staged, &fs)))
            goto done;
        if (object_matches(r, key, it)) { /* the MD5 became known only now */
            set_state(r, i, TNREC_MIRROR_SKIPPED);
            unlink(staged);
            goto done;
        }
    }
    /* the upload counts the second half of the progress */
    __atomic_store_n(&f->done, 0, __ATOMIC_RELAXED);
    fd = open(staged, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = tnrec__fail_errno(TNREC_EIO, errno, "cannot open '%s'", staged);
        goto done;
    }
    file_reader fr = { .fd = fd, .path = staged };
    mir_upload u = { .key = key, .size = it->size, .md5 = it->md5, .read = read_file_part,
                     .read_ud = &fr, .done = &f->done, .cancel = &r->cancel };
    if ((err = mir_s3_upload(&r->s3, &u)))
        goto done;
    unlink(staged);
    set_state(r, i, TNREC_MIRROR_COPIED);
done:
    if (fd >= 0)
        close(fd);
    free(staged);
    free(key);
    return err;
}

/* ---- one file of a verify ---- */

typedef struct md5_sink {
    mir_md5 m;
    uint64_t n;
    uint64_t *done;
} md5_sink;

static int md5_sink_fn(void *ud, const void *p, size_t n)
{
    md5_sink *s = ud;
    mir_md5_update(&s->m, p, n);
    s->n += n;
    __atomic_add_fetch(s->done, (uint64_t)n, __ATOMIC_RELAXED);
    return 0;
}

static tnrec_err verify_one(run *r, size_t i)
{
    mir_item *it = &r->items.v[i];
    tnrec_mirror_file *f = &r->files[i];
    tnrec_err err = TNREC_OK;
    char *where = NULL;
    md5_sink ms = { .done = &f->done };
    char got[33] = "";
    uint64_t got_size = 0;
    if (r->kind == DEST_DIR) {
        where = tnrec__path_append(r->dest, it->name);
        struct stat st;
        if (!where) {
            err = tnrec__fail(TNREC_ENOMEM, "out of memory");
            goto done;
        }
        if (stat(where, &st) != 0) {
            err = tnrec__fail_errno(TNREC_ENOTFOUND, errno, "'%s' is missing", where);
            goto done;
        }
        got_size = (uint64_t)st.st_size;
        if ((err = mir_md5_file(got, where, &f->done)))
            goto done;
    } else {
        if ((err = mir_md5_init(&ms.m)))
            goto done;
        if (r->kind == DEST_URL) {
            size_t dl = strlen(r->dest);
            if (r->dest[dl - 1] == '/') {
                mir_buf u = { 0 };
                mir_buf_adds(&u, r->dest);
                mir_uri_encode(&u, it->name, strlen(it->name), 1);
                where = mir_buf_take(&u);
            } else {
                where = strdup(r->dest);
            }
            if (!where) {
                err = tnrec__fail(TNREC_ENOMEM, "out of memory");
                goto done;
            }
            err = mir_fetch_range(&r->ctx, where, 0, UINT64_MAX, md5_sink_fn, &ms, &r->cancel);
        } else {
            where = tnrec__path_append(r->s3.prefix, it->name);
            if (!where) {
                err = tnrec__fail(TNREC_ENOMEM, "out of memory");
                goto done;
            }
            if (!it->md5[0]) {
                mir_s3_head h;
                if ((err = mir_s3_head_object(&r->s3, where, &h)))
                    goto done;
                if (!h.exists) {
                    err = tnrec__fail(TNREC_ENOTFOUND, "s3://%s/%s is missing", r->s3.bucket, where);
                    goto done;
                }
                if (!mir_is_md5_hex(h.md5)) {
                    err = tnrec__fail(TNREC_ECORRUPT, "s3://%s/%s has no x-amz-meta-md5 to check against\n"
                                      "hint: name the sources to check against, e.g. "
                                      "'tnrec mirror --verify s3://... tornet'", r->s3.bucket, where);
                    goto done;
                }
                memcpy(it->md5, h.md5, 33);
            }
            err = mir_s3_get(&r->s3, where, md5_sink_fn, &ms, &r->cancel);
            if (err == TNREC_ENOTFOUND)
                err = tnrec__fail(TNREC_ENOTFOUND, "s3://%s/%s is missing", r->s3.bucket, where);
        }
        if (err)
            goto done;
        unsigned char d[16];
        mir_md5_final(&ms.m, d);
        mir_hex(got, d, 16);
        got_size = ms.n;
    }
    if (it->size != TNREC_MIRROR_SIZE_UNKNOWN && got_size != it->size) {
        err = tnrec__fail(TNREC_ETRUNC, "'%s' has %llu bytes, expected %llu", where,
                          (unsigned long long)got_size, (unsigned long long)it->size);
        goto done;
    }
    if (it->md5[0] && strcmp(got, it->md5) != 0) {
        err = tnrec__fail(TNREC_ECORRUPT, "'%s' has MD5 %s, expected %s\nhint: mirror it again "
                          "(a rerun replaces it)", where, got, it->md5);
        goto done;
    }
    if (it->size == TNREC_MIRROR_SIZE_UNKNOWN)
        it->size = got_size;
    if (!it->md5[0]) {
        err = tnrec__fail(TNREC_EINVAL, "'%s': no MD5 to check against (read %llu bytes, MD5 %s)",
                          where, (unsigned long long)got_size, got);
        goto done;
    }
    set_state(r, i, TNREC_MIRROR_VERIFIED);
done:
    mir_md5_free(&ms.m);
    free(where);
    return err;
}

static void *worker(void *arg)
{
    run *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        size_t i = r->next < r->items.n ? r->next++ : r->items.n;
        if (i < r->items.n)
            r->files[i].state = TNREC_MIRROR_ACTIVE;
        pthread_mutex_unlock(&r->lock);
        if (i >= r->items.n)
            break;
        tnrec_err err;
        if (r->cancel || mir_stopping(&r->ctx))
            err = tnrec__fail(TNREC_ECANCELED, "'%s' not started: the run was interrupted\n"
                              "hint: rerun the same command", r->items.v[i].name);
        else
            err = r->verify ? verify_one(r, i) : r->kind == DEST_DIR ? mirror_to_dir(r, i) : mirror_to_s3(r, i);
        if (err && (r->cancel || mir_stopping(&r->ctx)))
            err = TNREC_ECANCELED; /* whatever the transfer made of the stop */
        if (err)
            set_failed(r, i, err);
        pthread_mutex_lock(&r->lock);
        r->finished++;
        pthread_cond_signal(&r->changed);
        pthread_mutex_unlock(&r->lock);
    }
    return NULL;
}

static void snapshot(run *r, tnrec_mirror_file *copy, tnrec_mirror_progress *p, double t0, int final)
{
    pthread_mutex_lock(&r->lock);
    memcpy(copy, r->files, r->items.n * sizeof *copy);
    pthread_mutex_unlock(&r->lock);
    memset(p, 0, sizeof *p);
    p->n_files = r->items.n;
    p->files = copy;
    for (size_t i = 0; i < r->items.n; i++) {
        copy[i].done = __atomic_load_n(&r->files[i].done, __ATOMIC_RELAXED);
        if (copy[i].size != TNREC_MIRROR_SIZE_UNKNOWN) {
            p->bytes_total += copy[i].size;
            p->bytes_done += copy[i].done < copy[i].size ? copy[i].done : copy[i].size;
        }
    }
    p->elapsed_s = tnrec__now_seconds() - t0;
    p->final = final;
}

/* The message leaving the library holds no credential, whatever path
 * built it (URLs with user:password included). */
static void redact_last_error(run *r, tnrec_err err)
{
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", tnrec_error_last());
    mir_redact(&r->ctx, buf);
    tnrec__fail(err, "%s", buf);
}

static tnrec_err setup(run *r, const tnrec_mirror_options *opt)
{
    if (opt)
        r->opt = *opt;
    else
        tnrec_mirror_options_init(&r->opt);
    tnrec_mirror_options def;
    tnrec_mirror_options_init(&def);
    if (!r->opt.zenodo_url || !*r->opt.zenodo_url)
        r->opt.zenodo_url = def.zenodo_url;
    if (!r->opt.connections)
        r->opt.connections = def.connections;
    if (!r->opt.jobs)
        r->opt.jobs = def.jobs;
    if (!r->opt.retry_max_ms)
        r->opt.retry_max_ms = def.retry_max_ms;
    if (!r->opt.part_size)
        r->opt.part_size = def.part_size;
    if (!r->opt.staging || !*r->opt.staging)
        r->opt.staging = def.staging;
    if (r->opt.connections > 64 || r->opt.jobs > 64)
        return tnrec__fail(TNREC_EINVAL, "connections and jobs are limited to 64 each\n"
                           "hint: Zenodo blocks clients that open many connections; 4 and 2 are polite");
    if (strncasecmp(r->opt.zenodo_url, "https://", 8) != 0 && strncasecmp(r->opt.zenodo_url, "http://", 7) != 0)
        return tnrec__fail(TNREC_EINVAL, "zenodo URL '%s' must start with https://", r->opt.zenodo_url);
    size_t zl = strlen(r->opt.zenodo_url);
    static _Thread_local char zbuf[1024];
    if (zl < sizeof zbuf && r->opt.zenodo_url[zl - 1] == '/') {
        memcpy(zbuf, r->opt.zenodo_url, zl - 1);
        zbuf[zl - 1] = '\0';
        r->opt.zenodo_url = zbuf;
    }
    if (r->opt.cacert && access(r->opt.cacert, R_OK) != 0)
        return tnrec__fail_errno(TNREC_EINVAL, errno, "CA bundle '%s' cannot be read", r->opt.cacert);
    r->ctx.opt = &r->opt;
    pthread_mutex_init(&r->ctx.log_lock, NULL);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->changed, NULL);
    r->inited = 1;
    if (r->opt.limit_rate) {
        uint64_t n = (uint64_t)r->opt.connections * r->opt.jobs;
        r->ctx.per_transfer_rate = r->opt.limit_rate / n ? r->opt.limit_rate / n : 1;
    }
    const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
    if (!(ak && *ak && sk && *sk)) {
        ak = getenv("B2_APPLICATION_KEY_ID");
        sk = getenv("B2_APPLICATION_KEY");
    }
    if (ak && *ak && sk && *sk) {
        r->ctx.access_key = strdup(ak);
        r->ctx.secret_key = strdup(sk);
        const char *tok = getenv("AWS_SESSION_TOKEN");
        if (tok && *tok && getenv("AWS_ACCESS_KEY_ID"))
            r->ctx.session_token = strdup(tok);
    }
    return mir_http_global_init();
}

static void teardown(run *r)
{
    if (r->have_s3)
        mir_s3_close(&r->s3);
    mir_items_free(&r->items);
    if (r->ctx.secret_key)
        memset(r->ctx.secret_key, 0, strlen(r->ctx.secret_key));
    free(r->ctx.access_key);
    free(r->ctx.secret_key);
    free(r->ctx.session_token);
    if (r->inited) {
        pthread_mutex_destroy(&r->ctx.log_lock);
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->changed);
    }
}

/* Run the workers, report, build the report. */
static tnrec_err execute(run *r, tnrec_mirror_report **out)
{
    tnrec_err err = TNREC_OK;
    double t0 = tnrec__now_seconds();
    size_t n = r->items.n;
    tnrec_mirror_file *copy = calloc(n ? n : 1, sizeof *copy);
    pthread_t th[64];
    size_t nth = 0;
    if (!copy) {
        free(r->files);
        r->files = NULL;
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    }
    unsigned jobs = r->opt.jobs < n ? r->opt.jobs : (unsigned)n;
    for (unsigned j = 0; j < jobs; j++) {
        if (pthread_create(&th[nth], NULL, worker, r) != 0)
            break;
        nth++;
    }
    if (nth == 0 && n)
        worker(r); /* no thread could start: do the work here */
    for (;;) {
        pthread_mutex_lock(&r->lock);
        int busy = r->finished < n;
        if (busy) {
            /* wake every 200 ms for the progress report, or when a file ends */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&r->changed, &r->lock, &ts);
            busy = r->finished < n;
        }
        pthread_mutex_unlock(&r->lock);
        if (!busy)
            break;
        if (mir_stopping(&r->ctx))
            r->cancel = 1; /* the transfers' own flag: they stop and checkpoint */
        if (r->opt.progress) {
            tnrec_mirror_progress p;
            snapshot(r, copy, &p, t0, 0);
            r->opt.progress(r->opt.ud, &p);
        }
    }
    for (size_t j = 0; j < nth; j++)
        pthread_join(th[j], NULL);
    if (r->opt.progress) {
        tnrec_mirror_progress p;
        snapshot(r, copy, &p, t0, 1);
        r->opt.progress(r->opt.ud, &p);
    }
    free(copy);
    tnrec_mirror_report *rep = calloc(1, sizeof *rep);
    if (!rep) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
            free((char *)r->files[i].message);
        free(r->files);
        r->files = NULL;
        return err;
    }
    rep->n_files = n;
    rep->files = r->files;
    r->files = NULL;
    rep->elapsed_s = tnrec__now_seconds() - t0;
    rep->bytes_transferred = r->ctx.bytes_transferred;
    size_t first_fail = n;
    for (size_t i = 0; i < n; i++) {
        tnrec_mirror_file *f = &rep->files[i];
        f->name = strdup(r->items.v[i].name);
        f->source = strdup(r->items.v[i].url ? r->items.v[i].url : "");
        if (!f->message)
            f->message = strdup("");
        switch (f->state) {
        case TNREC_MIRROR_COPIED: rep->copied++; break;
        case TNREC_MIRROR_SKIPPED: rep->skipped++; break;
        case TNREC_MIRROR_VERIFIED: rep->verified++; break;
        default:
            rep->failed++;
            if (first_fail == n)
                first_fail = i;
        }
    }
    if (first_fail < n) {
        const tnrec_mirror_file *f = &rep->files[first_fail];
        err = tnrec__fail(f->err ? f->err : TNREC_EINTERNAL, "%zu of %zu file(s) failed; first: %s",
                          rep->failed, n, f->message ? f->message : "");
    }
    if (out)
        *out = rep;
    else
        tnrec_mirror_report_free(rep);
    return err;
}

static tnrec_err prepare_files(run *r)
{
    r->files = calloc(r->items.n ? r->items.n : 1, sizeof *r->files);
    if (!r->files)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->items.n; i++) {
        r->files[i].name = r->items.v[i].name;    /* borrowed until the report copies it */
        r->files[i].source = r->items.v[i].url;
        r->files[i].size = r->items.v[i].size;
        memcpy(r->files[i].md5, r->items.v[i].md5, sizeof r->files[i].md5);
    }
    return TNREC_OK;
}

static tnrec_err open_dest(run *r, const char *dest, int create_dir)
{
    r->dest = dest;
    if (strncmp(dest, "s3://", 5) == 0) {
        r->kind = DEST_S3;
        tnrec_err err = mir_s3_open(&r->s3, &r->ctx, dest);
        if (!err)
            r->have_s3 = 1;
        return err;
    }
    if (strncasecmp(dest, "http://", 7) == 0 || strncasecmp(dest, "https://", 8) == 0) {
        r->kind = DEST_URL;
        return TNREC_OK;
    }
    if (strstr(dest, "://"))
        return tnrec__fail(TNREC_EINVAL, "destination '%s': only a directory or s3://bucket/prefix", dest);
    r->kind = DEST_DIR;
    if (create_dir) {
        char *probe = tnrec__path_append(dest, "x");
        tnrec_err err = probe ? mir_make_parents(probe) : tnrec__fail(TNREC_ENOMEM, "out of memory");
        free(probe);
        return err;
    }
    return TNREC_OK;
}

tnrec_err tnrec_mirror_run(tnrec_mirror_report **out, const char *const *sources, size_t n_sources,
                           const char *dest, const tnrec_mirror_options *opt)
{
    run *r = calloc(1, sizeof *r);
    tnrec_err err = TNREC_OK;
    if (out)
        *out = NULL;
    if (!r)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    if ((err = setup(r, opt)))
        goto done;
    if (!dest || !*dest) {
        err = tnrec__fail(TNREC_EINVAL, "no destination\nhint: a directory or s3://bucket/prefix");
        goto done;
    }
    if ((err = open_dest(r, dest, 1)))
        goto done;
    if (r->kind == DEST_URL) {
        err = tnrec__fail(TNREC_EINVAL, "cannot mirror to '%s': an http(s) URL is read-only here\n"
                          "hint: upload with s3://bucket/prefix and --endpoint, then read back with "
                          "'tnrec mirror --verify %s ...'", dest, dest);
        goto done;
    }
    if (r->kind == DEST_S3 && r->opt.abort_incomplete) {
        size_t n = 0;
        if ((err = mir_s3_abort_incomplete(&r->s3, &n)))
            goto done;
        mir_log(&r->ctx, "aborted %zu unfinished multipart upload(s) under s3://%s/%s", n,
                r->s3.bucket, r->s3.prefix);
    }
    if (n_sources == 0) {
        if (r->kind == DEST_S3 && r->opt.abort_incomplete)
            goto done; /* only the clean-up was asked for */
        err = tnrec__fail(TNREC_EINVAL, "no sources\nhint: zenodo:RECORD, zenodo:RECORD/FILE, tornet or a URL");
        goto done;
    }
    if ((err = mir_resolve(&r->ctx, sources, n_sources, &r->items)))
        goto done;
    if ((err = prepare_files(r)))
        goto done;
    err = execute(r, out);
done:
    if (err)
        redact_last_error(r, err);
    teardown(r);
    free(r->files);
    free(r);
    return err;
}

tnrec_err tnrec_mirror_verify(tnrec_mirror_report **out, const char *target,
                              const char *const *sources, size_t n_sources,
                              const tnrec_mirror_options *opt)
{
    run *r = calloc(1, sizeof *r);
    tnrec_err err = TNREC_OK;
    mir_s3_object *objs = NULL;
    size_t nobj = 0;
    if (out)
        *out = NULL;
    if (!r)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    r->verify = 1;
    if ((err = setup(r, opt)))
        goto done;
    if (!target || !*target) {
        err = tnrec__fail(TNREC_EINVAL, "nothing to verify\nhint: a directory, a URL or s3://bucket/prefix");
        goto done;
    }
    if ((err = open_dest(r, target, 0)))
        goto done;
    if (n_sources) {
        if ((err = mir_resolve(&r->ctx, sources, n_sources, &r->items)))
            goto done;
        if (r->kind == DEST_URL && target[strlen(target) - 1] != '/' && r->items.n != 1) {
            err = tnrec__fail(TNREC_EINVAL, "'%s' is one object but the sources name %zu files\n"
                              "hint: end the URL with '/' to check each file under it", target, r->items.n);
            goto done;
        }
    } else if (r->kind == DEST_S3) {
        if ((err = mir_s3_list(&r->s3, &objs, &nobj)))
            goto done;
        for (size_t i = 0; i < nobj; i++) {
            err = tnrec__grow(&r->items.v, &r->items.cap, r->items.n + 1, sizeof *r->items.v, "the listed objects");
            if (err)
                goto done;
            mir_item *it = &r->items.v[r->items.n];
            memset(it, 0, sizeof *it);
            it->name = strdup(objs[i].key);
            mir_buf u = { 0 };
            mir_buf_addf(&u, "s3://%s/%s%s", r->s3.bucket, r->s3.prefix, objs[i].key);
            it->url = mir_buf_take(&u);
            it->size = objs[i].size;
            r->items.n++;
            if (!it->name || !it->url) {
                err = tnrec__fail(TNREC_ENOMEM, "out of memory");
                goto done;
            }
        }
        if (nobj == 0) {
            err = tnrec__fail(TNREC_ENOTFOUND, "no objects under '%s'", target);
            goto done;
        }
    } else {
        err = tnrec__fail(TNREC_EINVAL, "verifying '%s' needs the sources to check against\n"
                          "hint: e.g. 'tnrec mirror --verify %s tornet'", target, target);
        goto done;
    }
    if ((err = prepare_files(r)))
        goto done;
    err = execute(r, out);
done:
    if (err)
        redact_last_error(r, err);
    for (size_t i = 0; i < nobj; i++)
        free(objs[i].key);
    free(objs);
    teardown(r);
    free(r->files);
    free(r);
    return err;
}
