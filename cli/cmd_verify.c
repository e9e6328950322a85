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

#include "cli.h"

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
    size_t next;
    pthread_mutex_t lock;
} verify_job;

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: tnrec verify [options] PATH...\n"
            "\n"
            "Check each PATH (a dataset directory with manifest.json, or one .tnr shard):\n"
            "the manifest against the shards (counts, index checksums), each shard's\n"
            "header and index, and every record's checksum and size. Prints each bad\n"
            "record as '<shard path>: record <i>: <reason>' and a final line per PATH,\n"
            "'ok: N records in S shards (PATH)' or 'FAILED: K bad records (PATH)'.\n"
            "Exits 1 if anything is wrong.\n"
            "\n"
            "options:\n"
            "  -j N, --jobs N  verify N shards at a time (threads; default 1)\n"
            "  --json          JSON instead of text (one object per PATH, an array of\n"
            "                  them when several PATHs are given)\n"
            "  -h, --help      this text\n"
            "\n"
            "example: tnrec verify -j 2 out/train\n");
}

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
    }
}

/* Runs verify_shard on every result, with up to `jobs` threads. If a
 * thread cannot be started, the remaining work runs on this thread. */
static void run_all(shard_result *results, size_t nshards, unsigned jobs)
{
    verify_job job = { results, nshards, 0, PTHREAD_MUTEX_INITIALIZER };
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
    }
    free(results);
}

/* Verifies one PATH; prints text or fills *out with JSON. Returns an exit code. */
static int verify_one(const char *path, unsigned jobs, int json, json_t **out)
{
    *out = NULL;
    tnrec_dataset *ds = NULL;
    tnrec_err e = tnrec_dataset_open(&ds, path);
    if (e) {
        const char *m = tnrec_error_last();
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "path", cli_json_text(path));
            json_object_set_new(o, "ok", json_false());
            json_object_set_new(o, "error", cli_json_text(tnrec_err_name(e)));
            json_object_set_new(o, "message", cli_json_text(m && *m ? m : tnrec_err_name(e)));
            *out = o;
            fprintf(stderr, "tnrec " CMD ": error: %s\n", m && *m ? m : tnrec_err_name(e));
        } else {
            cli_fail(CMD, e);
            printf("FAILED: cannot open (%s)\n", path);
        }
        return TNREC_EXIT_FAIL;
    }
    size_t nshards = tnrec_dataset_shard_count(ds);
    shard_result *results = calloc(nshards ? nshards : 1, sizeof *results);
    if (!results) {
        fprintf(stderr, "tnrec " CMD ": error: out of memory verifying '%s'\n", path);
        tnrec_dataset_close(ds);
        return TNREC_EXIT_FAIL;
    }
    for (size_t s = 0; s < nshards; s++)
        results[s].shard = tnrec_dataset_shard(ds, s);
    run_all(results, nshards, jobs);

    uint64_t bad = 0;
    size_t unchecked = 0; /* shards whose check failed beyond bad records */
    int oom = 0;
    const char *hint = NULL;
    json_t *errors = json ? json_array() : NULL;
    for (size_t s = 0; s < nshards; s++) {
        const shard_result *r = &results[s];
        const char *spath = tnrec_shard_path(r->shard);
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
    uint64_t n = tnrec_dataset_count(ds);
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "path", cli_json_text(path));
        json_object_set_new(o, "ok", json_boolean(bad == 0 && unchecked == 0));
        json_object_set_new(o, "records", json_integer((json_int_t)n));
        json_object_set_new(o, "shards", json_integer((json_int_t)nshards));
        json_object_set_new(o, "bad_records", json_integer((json_int_t)bad));
        json_object_set_new(o, "unchecked_shards", json_integer((json_int_t)unchecked));
        json_object_set_new(o, "errors", errors);
        *out = o;
    } else if (bad == 0 && unchecked == 0) {
        printf("ok: %" PRIu64 " records in %zu shards (%s)\n", n, nshards, path);
    } else if (unchecked == 0) {
        printf("FAILED: %" PRIu64 " bad records (%s)\n", bad, path);
    } else {
        printf("FAILED: %" PRIu64 " bad records, %zu shards not fully checked (%s)\n", bad, unchecked, path);
    }
    if (hint && (bad || unchecked))
        fprintf(stderr, "%s\n", hint);
    int ok = bad == 0 && unchecked == 0;
    free_results(results, nshards);
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
    if (cli_wants_help(argc, argv)) {
        print_usage(stdout);
        return TNREC_EXIT_OK;
    }
    int json = 0, only_paths = 0;
    unsigned jobs = 1;
    const char **paths = calloc((size_t)argc, sizeof *paths);
    size_t npaths = 0;
    if (!paths) {
        fprintf(stderr, "tnrec " CMD ": error: out of memory\n");
        return TNREC_EXIT_FAIL;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_paths || a[0] != '-' || strcmp(a, "-") == 0) {
            paths[npaths++] = a;
        } else if (strcmp(a, "--") == 0) {
            only_paths = 1;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "-j") == 0 || strcmp(a, "--jobs") == 0 || strncmp(a, "--jobs=", 7) == 0 ||
                   (strncmp(a, "-j", 2) == 0 && a[2] >= '0' && a[2] <= '9')) {
            const char *v = strncmp(a, "--jobs=", 7) == 0 ? a + 7
                            : (a[1] == 'j' && a[2]) ? a + 2
                            : (i + 1 < argc ? argv[++i] : NULL);
            unsigned long long n;
            if (!v || cli_parse_u64(v, &n) != 0 || n < 1 || n > MAX_JOBS) {
                free(paths);
                return cli_usage_error(CMD, "-j needs a number of threads from 1 to %d, got '%s'", MAX_JOBS,
                                       v ? v : "nothing");
            }
            jobs = (unsigned)n;
        } else {
            free(paths);
            return cli_usage_error(CMD, "unknown option '%s'", a);
        }
    }
    if (npaths == 0) {
        free(paths);
        return cli_usage_error(CMD, "no PATH given (a dataset directory or a .tnr shard)");
    }

    int rc = TNREC_EXIT_OK;
    json_t *all = (json && npaths > 1) ? json_array() : NULL;
    for (size_t p = 0; p < npaths; p++) {
        json_t *doc = NULL;
        if (verify_one(paths[p], jobs, json, &doc) != TNREC_EXIT_OK)
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
