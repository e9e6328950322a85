/* cli/cmd_verify.c: `tnrec verify`: is every byte of a dataset as written?
 *
 * For each PATH (a dataset directory or one .tnr shard): open it, which
 * checks each shard's header, index and trailer and the manifest against
 * the shards (record counts, index checksums); then check every record's
 * checksum and decompressed size. Bad records are printed as
 * "<shard path>: record <i>: <reason>" (i counts within the shard), then
 * one final line per PATH: "ok: N records in S shards (PATH)" or
 * "FAILED: K bad records (PATH)". Exit 1 if anything is wrong.
 *
 * With -j N, shards are verified by N threads (shards are read-only and
 * shareable); the output is the same as with one thread, in shard order.
 * Never modifies or repairs anything. */
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include "cli.h"
#include "cli_opt.h"

#define CMD "verify"
#define MAX_JOBS 256

typedef struct bad_record {
    uint64_t index;
    tnrec_err err;
    char *msg;
} bad_record;

/* What one shard's check found; filled by exactly one thread. */
typedef struct shard_result {
    const tnrec_shard *shard;
    tnrec_shard *owned; /* opened here (the dataset could not be), closed by free_results */
    const char *path;   /* the shard's file */
    uint64_t bad;       /* records reported bad */
    tnrec_err err;      /* tnrec_shard_verify's result */
    char *fail_msg;     /* shard-level failure (no record named, or verify stopped) */
    char *hint;         /* first "hint: ..." line of the library's messages */
    bad_record *list;
    size_t nlist, cap;
    int oom;            /* some detail could not be kept */
} shard_result;

typedef struct verify_job {
    shard_result *results;
    size_t nshards;
    size_t next, done;
    uint64_t records_done, records;
    cli_progress *progress;
    pthread_mutex_t lock;
} verify_job;

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* The library's message names the shard and the record, which our line
 * already does: keep the reason (first line, prefixes dropped) and set the
 * "hint:" line aside, to be printed once. */
static char *reason_of(const char *msg, const char *shard_path, uint64_t index, char **hint)
{
    const char *p = msg;
    size_t plen = strlen(shard_path);
    if (strncmp(p, "shard '", 7) == 0 && strncmp(p + 7, shard_path, plen) == 0 && strncmp(p + 7 + plen, "': ", 3) == 0)
        p += 7 + plen + 3;
    char rec[48];
    int n = snprintf(rec, sizeof rec, "record %" PRIu64, index);
    if (n > 0 && strncmp(p, rec, (size_t)n) == 0 && (p[n] == ' ' || p[n] == ':')) {
        p += n;
        while (*p == ' ' || *p == ':')
            p++;
    }
    size_t len = strcspn(p, "\n");
    if (len == 0) {
        p = msg;
        len = strcspn(p, "\n");
    }
    const char *h = strstr(msg, "\nhint: ");
    if (h && hint && !*hint)
        *hint = dup_str(h + 1);
    char *r = malloc(len + 1);
    if (r) {
        memcpy(r, p, len);
        r[len] = '\0';
    }
    return r;
}

static int on_bad_record(void *ctx, const char *shard_path, uint64_t index, tnrec_err err, const char *msg)
{
    shard_result *r = ctx;
    r->bad++;
    if (r->nlist == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        bad_record *grown = realloc(r->list, cap * sizeof *grown);
        if (!grown) {
            r->oom = 1;
            return 0;
        }
        r->list = grown;
        r->cap = cap;
    }
    bad_record *b = &r->list[r->nlist++];
    b->index = index;
    b->err = err;
    b->msg = reason_of(msg && *msg ? msg : tnrec_err_name(err), shard_path ? shard_path : "", index, &r->hint);
    if (!b->msg)
        r->oom = 1;
    return 0;
}

static void verify_shard(shard_result *r)
{
    uint64_t bad = 0;
    if (!r->shard)
        return; /* could not be opened: fail_msg says why */
    r->err = tnrec_shard_verify(r->shard, on_bad_record, r, &bad);
    if (bad > r->bad)
        r->bad = bad;
    if (r->err != TNREC_OK && (r->bad == 0 || r->err != TNREC_ECORRUPT)) {
        /* A failure beyond bad records (e.g. out of memory, unreadable file). */
        const char *m = tnrec_error_last();
        r->fail_msg = dup_str(m && *m ? m : tnrec_err_name(r->err));
        if (!r->fail_msg)
            r->oom = 1;
    }
}

static void *verify_worker(void *arg)
{
    verify_job *job = arg;
    for (;;) {
        pthread_mutex_lock(&job->lock);
        size_t s = job->next < job->nshards ? job->next++ : job->nshards;
        pthread_mutex_unlock(&job->lock);
        if (s >= job->nshards)
            return NULL;
        verify_shard(&job->results[s]);
        pthread_mutex_lock(&job->lock);
        job->done++;
        job->records_done += job->results[s].shard ? tnrec_shard_count(job->results[s].shard) : 0;
        char extra[64];
        snprintf(extra, sizeof extra, "  shard %zu/%zu", job->done, job->nshards);
        cli_progress_count(job->progress, job->records_done, job->records, "records", extra);
        pthread_mutex_unlock(&job->lock);
    }
}

/* Runs verify_shard on every result, with up to `jobs` threads. If a
 * thread cannot be started, the remaining work runs on this thread. */
static void run_all(shard_result *results, size_t nshards, unsigned jobs, cli_progress *progress)
{
    verify_job job = { .results = results, .nshards = nshards, .progress = progress, .lock = PTHREAD_MUTEX_INITIALIZER };
    for (size_t s = 0; s < nshards; s++)
        job.records += results[s].shard ? tnrec_shard_count(results[s].shard) : 0;
    cli_progress_start(progress);
    if (jobs > nshards)
        jobs = (unsigned)nshards;
    pthread_t threads[MAX_JOBS];
    unsigned started = 0;
    for (unsigned t = 1; t < jobs; t++) {
        if (pthread_create(&threads[started], NULL, verify_worker, &job) != 0)
            break;
        started++;
    }
    verify_worker(&job);
    for (unsigned t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    cli_progress_clear(progress);
}

static void free_results(shard_result *results, size_t n)
{
    if (!results)
        return;
    for (size_t s = 0; s < n; s++) {
        for (size_t i = 0; i < results[s].nlist; i++)
            free(results[s].list[i].msg);
        free(results[s].list);
        free(results[s].fail_msg);
        free(results[s].hint);
        tnrec_shard_close(results[s].owned);
        free((char *)results[s].path);
    }
    free(results);
}

/* The shard files of a dataset directory: its manifest's list, or every
 * *.tnr file in it when the manifest cannot be read. NULL when there is
 * none or out of memory; *n their count. Free with free_names. */
static char **shard_names(const char *dir, size_t *n)
{
    *n = 0;
    char mpath[4200];
    snprintf(mpath, sizeof mpath, "%s/" TNREC_MANIFEST_NAME, dir);
    json_t *m = json_load_file(mpath, 0, NULL);
    json_t *list = json_object_get(m, "shards");
    char **names = NULL;
    if (json_is_array(list) && json_array_size(list) > 0) {
        names = calloc(json_array_size(list), sizeof *names);
        for (size_t i = 0; names && i < json_array_size(list); i++) {
            const char *f = json_string_value(json_object_get(json_array_get(list, i), "file"));
            if (f && (names[*n] = dup_str(f)))
                (*n)++;
        }
        json_decref(m);
        return names;
    }
    json_decref(m);
    struct dirent **ents = NULL;
    int k = scandir(dir, &ents, NULL, alphasort);
    if (k < 0)
        return NULL;
    names = calloc((size_t)k + 1, sizeof *names);
    for (int i = 0; i < k; i++) {
        size_t len = strlen(ents[i]->d_name);
        if (names && len > 4 && strcmp(ents[i]->d_name + len - 4, ".tnr") == 0 && (names[*n] = dup_str(ents[i]->d_name)))
            (*n)++;
        free(ents[i]);
    }
    free(ents);
    return names;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

/* When the dataset as a whole cannot be opened (a damaged shard header,
 * say): every shard of the directory opened on its own, so that each is
 * checked and each bad one reported. Returns the results or NULL. */
static shard_result *open_each_shard(const char *dir, size_t *nshards)
{
    size_t n = 0;
    char **names = shard_names(dir, &n);
    shard_result *results = n ? calloc(n, sizeof *results) : NULL;
    *nshards = results ? n : 0;
    for (size_t i = 0; results && i < n; i++) {
        shard_result *r = &results[i];
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(len);
        if (!path) {
            r->oom = 1;
            continue;
        }
        snprintf(path, len, "%s/%s", dir, names[i]);
        r->path = path;
        r->err = tnrec_shard_open(&r->owned, path);
        r->shard = r->owned;
        if (r->err != TNREC_OK) {
            const char *m = tnrec_error_last();
            r->fail_msg = dup_str(m && *m ? m : tnrec_err_name(r->err));
        }
    }
    free_names(names, n);
    return results;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Verifies one PATH; prints text or fills *out with JSON. Returns an exit code. */
static int verify_one(const char *path, unsigned jobs, int json, cli_progress *progress, json_t **out)
{
    *out = NULL;
    tnrec_dataset *ds = NULL;
    shard_result *results = NULL;
    size_t nshards = 0;
    char *open_msg = NULL; /* why the dataset as a whole did not open */
    tnrec_err open_err = tnrec_dataset_open(&ds, path);
    if (open_err) {
        const char *m = tnrec_error_last();
        open_msg = dup_str(m && *m ? m : tnrec_err_name(open_err));
        fprintf(stderr, "tnrec " CMD ": error: %s\n", open_msg ? open_msg : tnrec_err_name(open_err));
        if (is_dir(path))
            results = open_each_shard(path, &nshards);
        if (!results) {
            if (json) {
                json_t *o = json_object();
                json_object_set_new(o, "path", cli_json_text(path));
                json_object_set_new(o, "ok", json_false());
                json_object_set_new(o, "error", cli_json_text(tnrec_err_name(open_err)));
                json_object_set_new(o, "message", cli_json_text(open_msg ? open_msg : tnrec_err_name(open_err)));
                *out = o;
            } else {
                printf("FAILED: cannot open (%s)\n", path);
            }
            free(open_msg);
            return TNREC_EXIT_FAIL;
        }
    } else {
        nshards = tnrec_dataset_shard_count(ds);
        results = calloc(nshards ? nshards : 1, sizeof *results);
        if (!results) {
            fprintf(stderr, "tnrec " CMD ": error: out of memory verifying '%s'\n", path);
            tnrec_dataset_close(ds);
            return TNREC_EXIT_FAIL;
        }
        for (size_t s = 0; s < nshards; s++)
            results[s].shard = tnrec_dataset_shard(ds, s);
    }
    run_all(results, nshards, jobs, progress);

    uint64_t bad = 0;
    size_t unchecked = 0; /* shards whose check failed beyond bad records */
    int oom = 0;
    const char *hint = NULL;
    json_t *errors = json ? json_array() : NULL;
    for (size_t s = 0; s < nshards; s++) {
        const shard_result *r = &results[s];
        const char *spath = r->path ? r->path : tnrec_shard_path(r->shard);
        bad += r->bad;
        oom |= r->oom;
        if (!hint && r->hint)
            hint = r->hint;
        for (size_t i = 0; i < r->nlist; i++) {
            const bad_record *b = &r->list[i];
            const char *msg = b->msg ? b->msg : tnrec_err_name(b->err);
            if (!json) {
                printf("%s: record %" PRIu64 ": %s\n", spath, b->index, msg);
                continue;
            }
            json_t *o = json_object();
            json_object_set_new(o, "shard", cli_json_text(spath));
            json_object_set_new(o, "index", json_integer((json_int_t)b->index));
            json_object_set_new(o, "error", cli_json_text(tnrec_err_name(b->err)));
            json_object_set_new(o, "message", cli_json_text(msg));
            json_array_append_new(errors, o);
        }
        if (r->fail_msg || (r->err != TNREC_OK && r->bad == 0)) {
            const char *msg = r->fail_msg ? r->fail_msg : tnrec_err_name(r->err);
            unchecked++;
            if (!json) {
                printf("%s: %s\n", spath, msg);
            } else {
                json_t *o = json_object();
                json_object_set_new(o, "shard", cli_json_text(spath));
                json_object_set_new(o, "index", json_null());
                json_object_set_new(o, "error", cli_json_text(tnrec_err_name(r->err)));
                json_object_set_new(o, "message", cli_json_text(msg));
                json_array_append_new(errors, o);
            }
        }
    }
    if (oom)
        fprintf(stderr, "tnrec " CMD ": warning: out of memory: some bad records of '%s' are counted but not listed\n",
                path);
    uint64_t n = 0;
    for (size_t s = 0; s < nshards; s++)
        n += results[s].shard ? tnrec_shard_count(results[s].shard) : 0;
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "path", cli_json_text(path));
        json_object_set_new(o, "ok", json_boolean(bad == 0 && unchecked == 0 && !open_err));
        if (open_err) {
            json_object_set_new(o, "error", cli_json_text(tnrec_err_name(open_err)));
            json_object_set_new(o, "message", cli_json_text(open_msg ? open_msg : tnrec_err_name(open_err)));
        }
        json_object_set_new(o, "records", json_integer((json_int_t)n));
        json_object_set_new(o, "shards", json_integer((json_int_t)nshards));
        json_object_set_new(o, "bad_records", json_integer((json_int_t)bad));
        json_object_set_new(o, "unchecked_shards", json_integer((json_int_t)unchecked));
        json_object_set_new(o, "errors", errors);
        *out = o;
    } else if (open_err) {
        printf("FAILED: %s; %" PRIu64 " bad records, %zu of %zu shards not fully checked (%s)\n",
               tnrec_err_name(open_err), bad, unchecked, nshards, path);
    } else if (bad == 0 && unchecked == 0) {
        printf("ok: %" PRIu64 " records in %zu shards (%s)\n", n, nshards, path);
    } else if (unchecked == 0) {
        printf("FAILED: %" PRIu64 " bad records (%s)\n", bad, path);
    } else {
        printf("FAILED: %" PRIu64 " bad records, %zu shards not fully checked (%s)\n", bad, unchecked, path);
    }
    if (hint && (bad || unchecked))
        fprintf(stderr, "%s\n", hint);
    int ok = bad == 0 && unchecked == 0 && !open_err;
    free_results(results, nshards);
    free(open_msg);
    tnrec_dataset_close(ds);
    return ok ? TNREC_EXIT_OK : TNREC_EXIT_FAIL;
}

static int emit_json(json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII) : NULL;
    if (!text) {
        fprintf(stderr, "tnrec " CMD ": error: cannot format JSON output (out of memory)\n");
        return -1;
    }
    fputs(text, stdout);
    fputc('\n', stdout);
    free(text);
    return 0;
}

int cmd_verify(int argc, char **argv)
{
    int json = 0, jobs = 1;
    cli_progress progress;
    cli_progress_init(&progress, CMD);
    const cli_opt opts[] = {
        { CLI_INT, "jobs", 'j', NULL, "N", CLI_INT_DST(jobs), .min = 1, .max = MAX_JOBS, .def = "1",
          .help = "verify N shards at a time (threads)" },
        { CLI_FLAG, "json", 0, .dst = &json,
          .help = "JSON instead of text (one object per PATH, an array of\nthem when several PATHs are given)" },
        CLI_PROGRESS_OPTS(progress),
        CLI_OPT_END
    };
    const cli_spec spec = {
        .cmd = CMD,
        .usage = "tnrec verify [options] PATH...",
        .about = "Check each PATH (a dataset directory with manifest.json, or one .tnr shard):\n"
                 "the manifest against the shards (counts, index checksums), each shard's\n"
                 "header and index, and every record's checksum and size. Prints each bad\n"
                 "record as '<shard path>: record <i>: <reason>' and a final line per PATH,\n"
                 "'ok: N records in S shards (PATH)' or 'FAILED: K bad records (PATH)'.\n"
                 "A dataset that cannot be opened as a whole (a damaged shard header, a\n"
                 "missing shard) still has each of its shards checked. Exits 1 if anything\n"
                 "is wrong.",
        .opts = opts,
        .epilog = "example: tnrec verify -j 2 out/train\n",
    };
    const char **paths = NULL;
    size_t npaths = 0;
    int prc = cli_parse_paths(&spec, argc, argv, "a dataset directory or a .tnr shard", &paths, &npaths);
    if (prc >= 0)
        return prc;

    int rc = TNREC_EXIT_OK;
    json_t *all = (json && npaths > 1) ? json_array() : NULL;
    for (size_t p = 0; p < npaths; p++) {
        json_t *doc = NULL;
        if (verify_one(paths[p], (unsigned)jobs, json, &progress, &doc) != TNREC_EXIT_OK)
            rc = TNREC_EXIT_FAIL;
        if (!json)
            continue;
        if (all) {
            json_array_append_new(all, doc);
        } else {
            if (emit_json(doc) != 0)
                rc = TNREC_EXIT_FAIL;
            json_decref(doc);
        }
    }
    if (all) {
        if (emit_json(all) != 0)
            rc = TNREC_EXIT_FAIL;
        json_decref(all);
    }
    free(paths);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "tnrec " CMD ": error: cannot write to standard output\n");
        rc = TNREC_EXIT_FAIL;
    }
    return rc;
}
