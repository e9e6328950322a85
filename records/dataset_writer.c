/* records/dataset_writer.c: a directory of shards plus manifest.json.
 *
 * Starts a new shard when the next record would push the current one past
 * max_shard_bytes or max_shard_records (a record alone may exceed the byte
 * limit). Counts classes as records arrive and writes the manifest last,
 * atomically. An old manifest in the directory is removed before the first
 * shard is written, so a directory with a manifest is always complete. On
 * failure or abort the shard being written is removed, and so is every
 * shard this writer renamed into place unless keep_closed_shards asks to
 * keep them for a rerun (shards it adopted from an earlier run always stay).
 * Records are written in append order: the caller decides the order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest.h"
#include "tnrec/tnrec.h"

#define REC_PREFIX_MAX 128

struct tnrec_dataset_writer {
    char *dir;
    tnrec_schema schema;
    uint64_t max_bytes, max_records;
    char prefix[REC_PREFIX_MAX];
    int next_shard;
    int keep_closed;         /* failure and abort keep the closed shards */
    tnrec_shard_writer *cur;
    char *cur_name;          /* file name of cur */
    json_t *shards;          /* manifest "shards" entries of closed shards */
    json_t *skipped;
    char **done;             /* paths of closed shards, removed on failure */
    size_t ndone, done_cap;
    tnrec_class_counts counts;
    uint64_t records;
};

static tnrec_err remove_stale_manifest(const char *dir)
{
    char *m = tnrec__path_join(dir, TNREC_MANIFEST_NAME);
    if (!m)
        return tnrec__fail(TNREC_ENOMEM, "out of memory opening dataset '%s'", dir);
    tnrec_err e = TNREC_OK;
    struct stat st;
    /* only when there is one: a read-only directory refuses even a vain unlink */
    int exists = lstat(m, &st) == 0 || errno != ENOENT;
    if (!exists)
        e = TNREC_OK;
    else if (unlink(m) == 0)
        e = tnrec__fsync_dir(dir);
    else if (errno != ENOENT)
        e = tnrec__fail_errno(TNREC_EIO, errno, "cannot remove the old manifest '%s'", m);
    free(m);
    return e;
}

tnrec_err tnrec_dataset_writer_open(tnrec_dataset_writer **out, const char *dir, const tnrec_schema *schema,
                                    const tnrec_dataset_options *opt)
{
    *out = NULL;
    tnrec_err e = tnrec_schema_check(schema);
    if (e)
        return e;
    const char *prefix = opt && opt->prefix ? opt->prefix : "shard";
    if (!*prefix || strlen(prefix) >= REC_PREFIX_MAX || strchr(prefix, '/'))
        return tnrec__fail(TNREC_EINVAL, "shard prefix '%s' must be 1..%d characters without '/'", prefix,
                           REC_PREFIX_MAX - 1);
    if (opt && opt->first_shard < 0)
        return tnrec__fail(TNREC_EINVAL, "first shard number %d is negative", opt->first_shard);
    if ((e = tnrec__mkdir_p(dir, 0755)) != TNREC_OK || (e = remove_stale_manifest(dir)) != TNREC_OK)
        return e;
    tnrec_dataset_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->dir = strdup(dir)) || !(w->shards = json_array()) || !(w->skipped = json_array())) {
        tnrec_dataset_writer_abort(w);
        return tnrec__fail(TNREC_ENOMEM, "out of memory opening dataset '%s'", dir);
    }
    w->schema = *schema;
    w->max_bytes = opt && opt->max_shard_bytes ? opt->max_shard_bytes : TNREC_DEFAULT_SHARD_BYTES;
    w->max_records = opt ? opt->max_shard_records : 0;
    snprintf(w->prefix, sizeof w->prefix, "%s", prefix);
    w->next_shard = opt ? opt->first_shard : 0;
    w->keep_closed = opt ? opt->keep_closed_shards != 0 : 0;
    *out = w;
    return TNREC_OK;
}

static tnrec_err start_shard(tnrec_dataset_writer *w)
{
    char name[REC_PREFIX_MAX + 32];
    snprintf(name, sizeof name, "%s-%05d%s", w->prefix, w->next_shard, TNREC_SHARD_EXT);
    char *path = tnrec__path_join(w->dir, name);
    char *nm = strdup(name);
    if (!path || !nm) {
        free(path);
        free(nm);
        return tnrec__fail(TNREC_ENOMEM, "out of memory starting a shard in '%s'", w->dir);
    }
    tnrec_err e = tnrec_shard_writer_open(&w->cur, path, &w->schema);
    free(path);
    if (e) {
        free(nm);
        return e;
    }
    w->cur_name = nm;
    w->next_shard++;
    return TNREC_OK;
}

/* The manifest entry of a closed shard. */
static tnrec_err list_shard(tnrec_dataset_writer *w, const char *name, uint64_t records, uint64_t bytes,
                            uint64_t checksum)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)checksum);
    json_t *o = json_pack("{s:s, s:I, s:I, s:s}", "file", name, "records", (json_int_t)records, "bytes",
                          (json_int_t)bytes, "index_checksum", hex);
    if (!o || json_array_append_new(w->shards, o) != 0)
        return tnrec__fail(TNREC_ENOMEM, "out of memory recording a shard of '%s'", w->dir);
    return TNREC_OK;
}

static tnrec_err finish_shard(tnrec_dataset_writer *w)
{
    uint64_t records = tnrec_shard_writer_count(w->cur), bytes = tnrec_shard_writer_size(w->cur), checksum = 0;
    tnrec_err e = tnrec__grow(&w->done, &w->done_cap, w->ndone + 1, sizeof *w->done, "the list of written shards");
    if (e)
        return e;
    char *path = tnrec__path_join(w->dir, w->cur_name);
    if (!path)
        return tnrec__fail(TNREC_ENOMEM, "out of memory closing a shard in '%s'", w->dir);
    e = tnrec_shard_writer_close(w->cur, &checksum);
    w->cur = NULL;
    if (e) {
        unlink(path); /* in case the error came after the rename */
        free(path);
        return e;
    }
    w->done[w->ndone++] = path;
    e = list_shard(w, w->cur_name, records, bytes, checksum);
    free(w->cur_name);
    w->cur_name = NULL;
    return e;
}

tnrec_err tnrec_dataset_writer_append(tnrec_dataset_writer *w, const tnrec_blob *rec, const tnrec_record_meta *meta)
{
    if (!w || !rec || !meta)
        return tnrec__fail(TNREC_EINVAL, "tnrec_dataset_writer_append: NULL argument");
    tnrec_err e;
    if (w->cur && tnrec_shard_writer_count(w->cur) > 0) {
        uint64_t grown = tnrec_shard_writer_size(w->cur) + rec->size + REC_INDEX_ENTRY + strnlen(meta->key, TNREC_KEY_MAX);
        int full = (w->max_records && tnrec_shard_writer_count(w->cur) >= w->max_records) || grown > w->max_bytes;
        if (full && (e = finish_shard(w)) != TNREC_OK)
            return e;
    }
    if (!w->cur && (e = start_shard(w)) != TNREC_OK)
        return e;
    if ((e = tnrec_shard_writer_append(w->cur, rec, meta)) != TNREC_OK)
        return e;
    tnrec_class_counts_add(&w->counts, meta);
    w->records++;
    return TNREC_OK;
}

tnrec_err tnrec_dataset_writer_adopt(tnrec_dataset_writer *w, uint64_t *out_records, tnrec_class_counts *counts)
{
    if (out_records)
        *out_records = 0;
    if (!w)
        return tnrec__fail(TNREC_EINVAL, "tnrec_dataset_writer_adopt: NULL writer");
    if (w->cur)
        return tnrec__fail(TNREC_EINVAL, "dataset '%s': a shard can only be adopted between shards", w->dir);
    char name[REC_PREFIX_MAX + 32];
    snprintf(name, sizeof name, "%s-%05d%s", w->prefix, w->next_shard, TNREC_SHARD_EXT);
    char *path = tnrec__path_join(w->dir, name);
    if (!path)
        return tnrec__fail(TNREC_ENOMEM, "out of memory adopting a shard of '%s'", w->dir);
    tnrec_shard *sh = NULL;
    tnrec_err e = tnrec_shard_open(&sh, path);
    if (!e && !rec_schema_equal(tnrec_shard_schema(sh), &w->schema))
        e = tnrec__fail(TNREC_EINVAL, "shard '%s' has another schema than the dataset being written\n"
                        "hint: remove it, or write the dataset to another directory", path);
    uint64_t n = e ? 0 : tnrec_shard_count(sh);
    if (!e)
        e = list_shard(w, name, n, tnrec_shard_file_size(sh), tnrec_shard_index_checksum(sh));
    for (uint64_t i = 0; !e && i < n; i++) {
        const tnrec_record_info *info = tnrec_shard_info(sh, i);
        tnrec_class_counts_add(&w->counts, &info->meta);
        if (counts)
            tnrec_class_counts_add(counts, &info->meta);
    }
    tnrec_shard_close(sh);
    free(path);
    if (e)
        return e;
    w->records += n;
    w->next_shard++;
    if (out_records)
        *out_records = n;
    return TNREC_OK;
}

tnrec_err tnrec_dataset_writer_skip(tnrec_dataset_writer *w, const char *input, const char *reason)
{
    if (!w || !input || !reason)
        return tnrec__fail(TNREC_EINVAL, "tnrec_dataset_writer_skip: NULL argument");
    json_t *o = json_pack("{s:s, s:s}", "input", input, "reason", reason);
    if (!o || json_array_append_new(w->skipped, o) != 0)
        return tnrec__fail(TNREC_ENOMEM, "out of memory (or input name not UTF-8) listing skipped '%s'", input);
    return TNREC_OK;
}

static void writer_free(tnrec_dataset_writer *w, int remove_shards)
{
    tnrec_shard_writer_abort(w->cur);
    for (size_t i = 0; i < w->ndone; i++) {
        if (remove_shards)
            unlink(w->done[i]);
        free(w->done[i]);
    }
    if (remove_shards && w->ndone)
        tnrec__fsync_dir(w->dir);
    free(w->done);
    free(w->cur_name);
    json_decref(w->shards);
    json_decref(w->skipped);
    free(w->dir);
    free(w);
}

void tnrec_dataset_writer_abort(tnrec_dataset_writer *w)
{
    if (w)
        writer_free(w, !w->keep_closed);
}

tnrec_err tnrec_dataset_writer_close(tnrec_dataset_writer *w, const char *build_params)
{
    if (!w)
        return tnrec__fail(TNREC_EINVAL, "tnrec_dataset_writer_close: NULL writer");
    tnrec_err e = TNREC_OK;
    json_t *root = NULL, *build = NULL;
    char *text = NULL, *path = NULL;
    if (w->cur && (e = finish_shard(w)) != TNREC_OK)
        goto done;
    json_error_t jerr;
    rec_json_begin();
    build = build_params ? json_loads(build_params, JSON_REJECT_DUPLICATES, &jerr) : json_object();
    if (!build && rec_json_oom()) {
        e = tnrec__fail(TNREC_ENOMEM, "out of memory writing the manifest of '%s'", w->dir);
        goto done;
    }
    if (!json_is_object(build)) {
        e = tnrec__fail(TNREC_EINVAL, "dataset '%s': build parameters are not a JSON object%s%s", w->dir,
                        build ? "" : ": ", build ? "" : jerr.text);
        goto done;
    }
    root = json_pack("{s:s, s:i, s:s, s:o, s:I, s:O, s:o, s:o, s:O, s:O}", "format", REC_MANIFEST_FORMAT,
                     "format_version", REC_MANIFEST_VERSION, "tnrec_version", tnrec_version(), "schema",
                     rec_schema_to_json(&w->schema), "records", (json_int_t)w->records, "shards", w->shards,
                     "class_counts", rec_counts_to_json(&w->counts), "class_weights",
                     rec_weights_to_json(&w->counts), "skipped", w->skipped, "build", build);
    text = root ? json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) : NULL;
    path = tnrec__path_join(w->dir, TNREC_MANIFEST_NAME);
    if (!text || !path) {
        e = tnrec__fail(TNREC_ENOMEM, "out of memory writing the manifest of '%s'", w->dir);
        goto done;
    }
    size_t len = strlen(text);
    char *nl = realloc(text, len + 2); /* end the file with a newline */
    if (!nl) {
        e = tnrec__fail(TNREC_ENOMEM, "out of memory writing the manifest of '%s'", w->dir);
        goto done;
    }
    text = nl;
    text[len] = '\n';
    e = tnrec__write_file_atomic(path, text, len + 1);
    if (e)
        unlink(path); /* an error after the rename (directory fsync) must not leave it */
done:
    json_decref(root);
    json_decref(build);
    free(text);
    free(path);
    writer_free(w, e != TNREC_OK && !w->keep_closed);
    return e;
}
