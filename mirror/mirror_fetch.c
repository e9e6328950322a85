/* mirror/mirror_fetch.c: segmented, resumable download of one file.
 *
 * The file is split into at most `connections` segments, each fetched by
 * one thread with one Range request (few requests: Zenodo counts them), written with pwrite into "<final>.tnrec-part". Progress is
 * checkpointed into "<final>.tnrec-state" (JSON: size, md5, segments with
 * the byte reached) after an fdatasync of the data, so a killed run
 * resumes from the last checkpoint. A failed attempt is retried from the
 * byte reached, with exponential backoff and jitter (Retry-After wins).
 * A server that ignores Range is detected and the file is fetched again
 * on one connection.
 *
 * Invariant: the final name appears only after the whole file has been
 * read back and its MD5 matched the expected one (fsync, rename, fsync
 * of the directory). A file whose MD5 fails is deleted with its state. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "json_util.h"
#include "mirror_internal.h"

#define MIN_SEGMENT (4ull << 20)
#define CHECKPOINT_BYTES (256ull << 20) /* or once a second, whichever first */
#define MAX_SEGMENTS 64

typedef struct seg {
    uint64_t start, end;   /* [start, end); end UINT64_MAX when the size is unknown */
    uint64_t pos;          /* next byte to write (atomic) */
    uint64_t since_ckpt;
    tnrec_err err;
    char msg[512];
    struct fetch *f;
    pthread_t th;
} seg;

typedef struct fetch {
    mir_ctx *c;
    mir_item *item;
    const char *final_path;
    char *part_path, *state_path;
    int fd;
    size_t nseg;
    seg segs[MAX_SEGMENTS];
    pthread_mutex_t lock;
    volatile int cancel;     /* one segment failed for good: the others stop */
    volatile int *outer_cancel;
    int no_range;            /* a server answered a range from the top */
    tnrec_err fail_err;      /* the first real failure (not a cancel) */
    char fail_msg[600];
    uint64_t *done;
    double last_ckpt;
    volatile int segs_over;  /* segment threads joined: the follower may finish */
    volatile int follow_stop;/* give up hashing (failure, or the file starts over) */
} fetch;

/* The MD5 follower hashes the file's complete prefix while the segments
 * are still arriving (the bytes below a segment's position never change
 * again), so the check after the download has only the tail left to read. */
typedef struct follower {
    fetch *f;
    mir_md5 m;
    uint64_t pos;
    int ok;
    pthread_t th;
} follower;

static tnrec_err write_state(fetch *f)
{
    json_t *segs = json_array();
    json_t *root = json_object();
    tnrec_err err = TNREC_OK;
    if (!segs || !root) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory");
        goto done;
    }
    uint64_t pos[MAX_SEGMENTS];
    for (size_t i = 0; i < f->nseg; i++)
        pos[i] = __atomic_load_n(&f->segs[i].pos, __ATOMIC_ACQUIRE);
    /* the bytes below each recorded position must be on disk first */
    if (fdatasync(f->fd) != 0) {
        err = tnrec__fail_errno(TNREC_EIO, errno, "cannot sync '%s'", f->part_path);
        goto done;
    }
    for (size_t i = 0; i < f->nseg; i++) {
        json_t *s = json_pack("[III]", (json_int_t)f->segs[i].start,
                              (json_int_t)(f->segs[i].end == UINT64_MAX ? -1 : (json_int_t)f->segs[i].end),
                              (json_int_t)pos[i]);
        if (!s || json_array_append_new(segs, s)) {
            err = tnrec__fail(TNREC_ENOMEM, "out of memory");
            goto done;
        }
    }
    json_object_set_new(root, "version", json_integer(1));
    json_object_set_new(root, "name", json_string(f->item->name));
    json_object_set_new(root, "size", json_integer(f->item->size == TNREC_MIRROR_SIZE_UNKNOWN
                                                       ? -1 : (json_int_t)f->item->size));
    json_object_set_new(root, "md5", json_string(f->item->md5));
    json_object_set(root, "segments", segs);
    err = tnrec__json_write_file(f->state_path, root, JSON_COMPACT, "out of memory");
done:
    json_decref(segs);
    json_decref(root);
    return err;
}

/* Load a matching state; returns 1 when segments were restored. */
static int load_state(fetch *f)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    struct stat st;
    if (stat(f->part_path, &st) != 0)
        return 0;
    if (tnrec__read_file(f->state_path, &buf, &len) != TNREC_OK) {
        tnrec_error_clear();
        return 0;
    }
    int ok = 0;
    json_t *root = json_loadb((const char *)buf, len, 0, NULL);
    json_t *segs = json_object_get(root, "segments");
    json_int_t size = tnrec__json_int(root, "size");
    const char *md5 = tnrec__json_str(root, "md5");
    uint64_t want = f->item->size == TNREC_MIRROR_SIZE_UNKNOWN ? (uint64_t)-1 : f->item->size;
    if (!json_is_array(segs) || json_array_size(segs) == 0 || json_array_size(segs) > MAX_SEGMENTS ||
        (uint64_t)size != want || !md5 || strcmp(md5, f->item->md5) != 0 ||
        f->item->size == TNREC_MIRROR_SIZE_UNKNOWN)
        goto done;
    size_t n = json_array_size(segs);
    uint64_t expect_start = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(segs, i);
        json_int_t a = json_integer_value(json_array_get(s, 0));
        json_int_t b = json_integer_value(json_array_get(s, 1));
        json_int_t p = json_integer_value(json_array_get(s, 2));
        if (a < 0 || (uint64_t)a != expect_start || b < a || p < a || p > b || (uint64_t)b > f->item->size)
            goto done;
        f->segs[i].start = (uint64_t)a;
        f->segs[i].end = (uint64_t)b;
        f->segs[i].pos = (uint64_t)p;
        expect_start = (uint64_t)b;
    }
    if (expect_start != f->item->size)
        goto done;
    f->nseg = n;
    ok = 1;
done:
    json_decref(root);
    free(buf);
    return ok;
}

static void plan_segments(fetch *f, unsigned connections)
{
    uint64_t size = f->item->size;
    if (size == TNREC_MIRROR_SIZE_UNKNOWN || f->no_range) {
        f->nseg = 1;
        f->segs[0].start = 0;
        f->segs[0].end = size == TNREC_MIRROR_SIZE_UNKNOWN ? UINT64_MAX : size;
        f->segs[0].pos = 0;
        return;
    }
    uint64_t n = connections ? connections : 1;
    if (n > MAX_SEGMENTS)
        n = MAX_SEGMENTS;
    if (size / MIN_SEGMENT < n)
        n = size / MIN_SEGMENT ? size / MIN_SEGMENT : 1;
    f->nseg = (size_t)n;
    uint64_t step = size / n;
    for (size_t i = 0; i < f->nseg; i++) {
        f->segs[i].start = step * i;
        f->segs[i].end = i + 1 == f->nseg ? size : step * (i + 1);
        f->segs[i].pos = f->segs[i].start;
    }
}

static void maybe_checkpoint(fetch *f, seg *s, int force)
{
    double now = tnrec__now_seconds();
    if (!force && s->since_ckpt < CHECKPOINT_BYTES && now - f->last_ckpt < 1.0)
        return;
    pthread_mutex_lock(&f->lock);
    if (force || now - f->last_ckpt >= 1.0 || s->since_ckpt >= CHECKPOINT_BYTES) {
        if (write_state(f) != TNREC_OK)
            tnrec_error_clear(); /* a lost checkpoint only costs re-fetching */
        f->last_ckpt = now;
        s->since_ckpt = 0;
    }
    pthread_mutex_unlock(&f->lock);
}

/* A segment failed for good, the run was cancelled, or the caller asked
 * the run to stop: the segments end (and checkpoint). */
static int fetch_stopped(const fetch *f)
{
    return f->cancel || (f->outer_cancel && *f->outer_cancel) || mir_stopping(f->c);
}

static int seg_sink(void *ud, const void *p, size_t n)
{
    seg *s = ud;
    fetch *f = s->f;
    uint64_t pos = s->pos;
    int clipped = 0;
    if (s->end != UINT64_MAX && pos + n > s->end) {
        n = (size_t)(s->end - pos); /* the rest belongs to the next segment */
        clipped = 1;
    }
    const char *b = p;
    size_t left = n;
    while (left) {
        ssize_t w = pwrite(f->fd, b, left, (off_t)pos);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            s->err = tnrec__fail_errno(TNREC_EIO, errno, "cannot write '%s'", f->part_path);
            snprintf(s->msg, sizeof s->msg, "%s", tnrec_error_last());
            return 1;
        }
        b += w;
        left -= (size_t)w;
        pos += (uint64_t)w;
    }
    __atomic_store_n(&s->pos, pos, __ATOMIC_RELEASE);
    s->since_ckpt += n;
    if (f->done)
        __atomic_add_fetch(f->done, (uint64_t)n, __ATOMIC_RELAXED);
    __atomic_add_fetch(&f->c->bytes_transferred, (uint64_t)n, __ATOMIC_RELAXED);
    maybe_checkpoint(f, s, 0);
    if (clipped)
        return 1; /* the server sent more than the segment: stop here */
    return fetch_stopped(f) ? 1 : 0;
}

static void seg_fail(fetch *f, tnrec_err err, const char *msg)
{
    pthread_mutex_lock(&f->lock);
    if (!f->fail_err) {
        f->fail_err = err;
        snprintf(f->fail_msg, sizeof f->fail_msg, "%s", msg);
    }
    f->cancel = 1;
    pthread_mutex_unlock(&f->lock);
}

static void *seg_main(void *arg)
{
    seg *s = arg;
    fetch *f = s->f;
    mir_ctx *c = f->c;
    unsigned attempt = 0;
    mir_resp resp = { 0 };
    while (!(s->end != UINT64_MAX && s->pos >= s->end)) {
        if (fetch_stopped(f)) {
            s->err = TNREC_ENET;
            break;
        }
        uint64_t before = s->pos;
        mir_req req = { .url = f->item->url, .has_range = 1, .range_from = s->pos,
                        .range_to = s->end == UINT64_MAX ? UINT64_MAX : s->end - 1,
                        .sink = seg_sink, .sink_ud = s, .cancel = &f->cancel };
        /* the sink also stops at the segment end if a server sends more */
        if (s->pos == 0 && s->end == UINT64_MAX)
            req.has_range = 0;
        tnrec_err e = mir_http_once(c, &req, &resp);
        if (s->err) {
            seg_fail(f, s->err, s->msg); /* local write error */
            break;
        }
        if (s->end != UINT64_MAX && s->pos >= s->end)
            break;
        if (e == TNREC_OK && resp.status >= 200 && resp.status <= 299) {
            if (s->end == UINT64_MAX)
                break; /* unknown size: the server's end is the end */
            /* ended early without a transport error: treat as truncated */
            snprintf(resp.errbuf, sizeof resp.errbuf, "body ended at byte %llu, expected %llu",
                     (unsigned long long)s->pos, (unsigned long long)s->end);
            resp.curl_code = 18; /* CURLE_PARTIAL_FILE */
            e = TNREC_ENET;
        }
        if (resp.curl_code == 33 /* CURLE_RANGE_ERROR */) {
            pthread_mutex_lock(&f->lock);
            f->no_range = 1;
            pthread_mutex_unlock(&f->lock);
            s->err = TNREC_ENET;
            f->cancel = 1;
            break;
        }
        if (s->pos > before)
            attempt = 0; /* progress was made: the budget starts over */
        if (fetch_stopped(f)) {
            s->err = TNREC_ENET;
            break;
        }
        int transient = mir_http_transient(&resp, e);
        if (!transient || attempt >= c->opt->retries) {
            char d[300];
            mir_http_describe(&resp, d, sizeof d);
            s->err = (e == TNREC_OK && (resp.status == 401 || resp.status == 403)) ? TNREC_EAUTH
                     : (e == TNREC_OK && resp.status == 404) ? TNREC_ENOTFOUND : TNREC_ENET;
            snprintf(s->msg, sizeof s->msg, "download of '%s' failed at byte %llu: %s%s",
                     f->item->url, (unsigned long long)s->pos, d,
                     transient ? " (retries exhausted)" : "");
            seg_fail(f, s->err, s->msg);
            break;
        }
        mir_http_wait(c, &resp, attempt, f->item->url);
        attempt++;
    }
    mir_resp_free(&resp);
    maybe_checkpoint(f, s, 1);
    return NULL;
}

static uint64_t complete_prefix(fetch *f)
{
    uint64_t p = 0;
    for (size_t i = 0; i < f->nseg; i++) {
        uint64_t sp = __atomic_load_n(&f->segs[i].pos, __ATOMIC_ACQUIRE);
        if (sp < f->segs[i].end)
            return sp;
        p = f->segs[i].end;
    }
    return p;
}

static void *follow_main(void *arg)
{
    follower *fo = arg;
    fetch *f = fo->f;
    size_t cap = 4u << 20;
    unsigned char *buf = malloc(cap);
    int failed = !buf;
    while (!failed && !f->follow_stop) {
        int over = __atomic_load_n(&f->segs_over, __ATOMIC_ACQUIRE);
        uint64_t avail = complete_prefix(f);
        if (fo->pos < avail) {
            size_t n = avail - fo->pos < cap ? (size_t)(avail - fo->pos) : cap;
            if (tnrec__pread_full(f->fd, buf, n, fo->pos, f->part_path) != TNREC_OK) {
                tnrec_error_clear();
                failed = 1;
                break;
            }
            mir_md5_update(&fo->m, buf, n);
            fo->pos += n;
            continue;
        }
        if (over)
            break;
        mir_sleep_ms(20);
    }
    fo->ok = !failed && !f->follow_stop && fo->pos == f->item->size;
    free(buf);
    return NULL;
}

static tnrec_err run_segments(fetch *f)
{
    tnrec_err err = TNREC_OK;
    int running[MAX_SEGMENTS] = { 0 };
    f->fail_err = TNREC_OK;
    f->fail_msg[0] = '\0';
    for (size_t i = 0; i < f->nseg; i++) {
        seg *s = &f->segs[i];
        s->f = f;
        s->err = TNREC_OK;
        s->msg[0] = '\0';
        s->since_ckpt = 0;
        if (s->end != UINT64_MAX && s->pos >= s->end)
            continue;
        if (pthread_create(&s->th, NULL, seg_main, s) != 0) {
            err = tnrec__fail(TNREC_EINTERNAL, "cannot start a download thread");
            f->cancel = 1;
            break;
        }
        running[i] = 1;
    }
    for (size_t i = 0; i < f->nseg; i++)
        if (running[i])
            pthread_join(f->segs[i].th, NULL);
    if (err)
        return err;
    if (f->no_range)
        return TNREC_OK;
    if (f->fail_err)
        return tnrec__fail(f->fail_err, "%s\nhint: rerun the same command to resume", f->fail_msg);
    for (size_t i = 0; i < f->nseg; i++)
        if (f->segs[i].err)
            return tnrec__fail(TNREC_ENET, "download of '%s' was cancelled\n"
                               "hint: rerun the same command to resume", f->item->url);
    return TNREC_OK;
}

tnrec_err mir_fetch_file(mir_ctx *c, mir_item *item, const char *final_path, mir_fetch_stats *st)
{
    tnrec_err err = TNREC_OK;
    follower fo = { 0 };
    fetch *f = calloc(1, sizeof *f);
    if (!f)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    f->c = c;
    f->item = item;
    f->final_path = final_path;
    f->fd = -1;
    f->done = st ? st->done : NULL;
    f->outer_cancel = st ? st->cancel : NULL;
    pthread_mutex_init(&f->lock, NULL);
    mir_buf a = { 0 }, b = { 0 };
    mir_buf_addf(&a, "%s.tnrec-part", final_path);
    mir_buf_addf(&b, "%s.tnrec-state", final_path);
    f->part_path = mir_buf_take(&a);
    f->state_path = mir_buf_take(&b);
    if (!f->part_path || !f->state_path) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory");
        goto done;
    }
    if ((err = mir_make_parents(final_path)))
        goto done;
    int resumed = load_state(f);
    if (!resumed)
        plan_segments(f, c->opt->connections);
    f->fd = open(f->part_path, O_RDWR | O_CREAT | O_CLOEXEC | (resumed ? 0 : O_TRUNC), 0644);
    if (f->fd < 0) {
        err = tnrec__fail_errno(TNREC_EIO, errno, "cannot create '%s'", f->part_path);
        goto done;
    }
    uint64_t already = 0;
    for (size_t i = 0; i < f->nseg; i++)
        already += f->segs[i].pos - f->segs[i].start;
    if (f->done)
        __atomic_add_fetch(f->done, already, __ATOMIC_RELAXED);
    mir_log(c, "%s: %s, %zu segment(s)%s", item->name,
            resumed ? "resuming" : "starting", f->nseg, resumed ? "" : "");
    if (f->item->size != TNREC_MIRROR_SIZE_UNKNOWN && (err = write_state(f)))
        goto done;
    fo.f = f;
    int following = item->size != TNREC_MIRROR_SIZE_UNKNOWN && mir_md5_init(&fo.m) == TNREC_OK &&
                    pthread_create(&fo.th, NULL, follow_main, &fo) == 0;
    tnrec_error_clear();
    err = run_segments(f);
    if (err || f->no_range)
        f->follow_stop = 1;
    __atomic_store_n(&f->segs_over, 1, __ATOMIC_RELEASE);
    if (following)
        pthread_join(fo.th, NULL);
    if (!err && f->no_range) {
        mir_log(c, "%s: the server ignores Range; fetching again on one connection", item->name);
        f->cancel = 0;
        if (f->done)
            __atomic_store_n(f->done, 0, __ATOMIC_RELAXED);
        if (ftruncate(f->fd, 0) != 0) {
            err = tnrec__fail_errno(TNREC_EIO, errno, "cannot truncate '%s'", f->part_path);
            goto done;
        }
        plan_segments(f, 1);
        err = run_segments(f);
    }
    if (err)
        goto done;
    uint64_t got = f->segs[f->nseg - 1].pos;
    if (item->size == TNREC_MIRROR_SIZE_UNKNOWN)
        item->size = got;
    struct stat stt;
    if (fstat(f->fd, &stt) != 0 || (uint64_t)stt.st_size != item->size) {
        if (ftruncate(f->fd, (off_t)item->size) != 0 || fstat(f->fd, &stt) != 0 ||
            (uint64_t)stt.st_size != item->size) {
            err = tnrec__fail(TNREC_ETRUNC, "'%s' has %llu bytes, the source says %llu",
                              f->part_path, (unsigned long long)stt.st_size,
                              (unsigned long long)item->size);
            goto done;
        }
    }
    char md5[33];
    if (following && fo.ok) {
        unsigned char d[16];
        mir_md5_final(&fo.m, d);
        mir_hex(md5, d, 16);
    } else if ((err = mir_md5_file(md5, f->part_path, NULL))) {
        goto done;
    }
    mir_log(c, "%s: MD5 %s (%s)", item->name, md5,
            following && fo.ok ? "hashed while downloading" : "read back after the download");
    if (item->md5[0] && strcmp(md5, item->md5) != 0) {
        err = tnrec__fail(TNREC_ECORRUPT, "'%s' from '%s' has MD5 %s, the source says %s; the "
                          "download was deleted and nothing was written under '%s'\n"
                          "hint: rerun to download it again; if it fails again the source is damaged",
                          item->name, item->url, md5, item->md5, final_path);
        unlink(f->part_path);
        unlink(f->state_path);
        goto done;
    }
    if (!item->md5[0])
        memcpy(item->md5, md5, sizeof md5);
    if (fsync(f->fd) != 0) {
        err = tnrec__fail_errno(TNREC_EIO, errno, "cannot sync '%s'", f->part_path);
        goto done;
    }
    if (rename(f->part_path, final_path) != 0) {
        err = tnrec__fail_errno(TNREC_EIO, errno, "cannot rename '%s' to '%s'", f->part_path, final_path);
        goto done;
    }
    unlink(f->state_path);
    {
        char *dir = strdup(final_path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash)
            *slash = '\0';
        if (dir)
            err = tnrec__fsync_dir(slash ? (dir[0] ? dir : "/") : ".");
        free(dir);
    }
done:
    mir_md5_free(&fo.m);
    if (f->fd >= 0)
        close(f->fd);
    pthread_mutex_destroy(&f->lock);
    free(f->part_path);
    free(f->state_path);
    free(f);
    return err;
}

typedef struct range_ctx {
    mir_sink_fn sink;
    void *ud;
    uint64_t pos;
    int stopped;
    mir_ctx *c;
} range_ctx;

static int range_sink(void *ud, const void *p, size_t n)
{
    range_ctx *r = ud;
    if (r->sink(r->ud, p, n)) {
        r->stopped = 1;
        return 1;
    }
    r->pos += n;
    __atomic_add_fetch(&r->c->bytes_transferred, (uint64_t)n, __ATOMIC_RELAXED);
    return 0;
}

tnrec_err mir_fetch_range(mir_ctx *c, const char *url, uint64_t from, uint64_t to_incl,
                          mir_sink_fn sink, void *ud, volatile int *cancel)
{
    range_ctx r = { .sink = sink, .ud = ud, .pos = from, .c = c };
    mir_resp resp = { 0 };
    unsigned attempt = 0;
    tnrec_err err = TNREC_OK;
    uint64_t end = to_incl == UINT64_MAX ? UINT64_MAX : to_incl + 1;
    while (end == UINT64_MAX || r.pos < end) {
        uint64_t before = r.pos;
        mir_req req = { .url = url, .has_range = r.pos > 0 || end != UINT64_MAX, .range_from = r.pos,
                        .range_to = end == UINT64_MAX ? UINT64_MAX : end - 1,
                        .sink = range_sink, .sink_ud = &r, .cancel = cancel };
        tnrec_err e = mir_http_once(c, &req, &resp);
        if (r.stopped) {
            err = tnrec__fail(TNREC_EINTERNAL, "reading '%s' was stopped by the receiver", url);
            break;
        }
        if (e == TNREC_OK && resp.status >= 200 && resp.status <= 299) {
            if (end == UINT64_MAX || r.pos >= end)
                break;
            snprintf(resp.errbuf, sizeof resp.errbuf, "body ended at byte %llu, expected %llu",
                     (unsigned long long)r.pos, (unsigned long long)end);
            resp.curl_code = 18;
            e = TNREC_ENET;
        }
        if (r.pos > before)
            attempt = 0;
        if (!mir_http_transient(&resp, e) || attempt >= c->opt->retries || (cancel && *cancel)) {
            char d[300];
            mir_http_describe(&resp, d, sizeof d);
            err = tnrec__fail(e == TNREC_OK && resp.status == 404 ? TNREC_ENOTFOUND
                              : e == TNREC_OK && (resp.status == 401 || resp.status == 403) ? TNREC_EAUTH
                                                                                               : TNREC_ENET,
                              "reading '%s' failed at byte %llu: %s", url, (unsigned long long)r.pos, d);
            break;
        }
        mir_http_wait(c, &resp, attempt, url);
        attempt++;
    }
    mir_resp_free(&resp);
    return err;
}
