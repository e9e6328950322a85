/* records/dataset_reader.c: opens a dataset directory (manifest.json plus
 * shards) or a single shard file, and checks the manifest against the
 * shards: every shard present, record counts, index checksums, sizes,
 * schema, totals and class counts.
 *
 * Counts and class weights are always recomputed from the shard indexes;
 * the manifest's own numbers are only compared, never trusted. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "json_util.h"
#include "manifest.h"

struct tnrec_dataset {
    char *path;
    tnrec_shard **shards;
    size_t nshards;
    uint64_t *starts;        /* first dataset index of each shard, nshards + 1 entries */
    tnrec_schema schema;
    tnrec_class_counts counts;
    tnrec_skipped *skipped;
    size_t nskipped;
    char *build;
    char *tool_version;      /* NULL for a bare shard */
};

static tnrec_err mfail(tnrec_err err, const char *path, const char *what, const char *hint)
{
    return tnrec__fail(err, "manifest '%s': %s\nhint: %s", path, what, hint);
}

static tnrec_err disagrees(tnrec_err err, const char *mpath, const char *shard, const char *what)
{
    return tnrec__fail(err, "manifest '%s' disagrees with shard '%s': %s\n"
                            "hint: a shard was replaced or removed after the build; rerun the build with the same arguments",
                       mpath, shard, what);
}

#define HINT_REBUILD "the dataset is incomplete or was changed after it was built; rebuild it with 'tnrec build'"

static tnrec_err add_shard(tnrec_dataset *ds, tnrec_shard *s)
{
    ds->shards[ds->nshards] = s;
    ds->starts[ds->nshards + 1] = ds->starts[ds->nshards] + tnrec_shard_count(s);
    ds->nshards++;
    for (uint64_t i = 0; i < tnrec_shard_count(s); i++)
        tnrec_class_counts_add(&ds->counts, &tnrec_shard_info(s, i)->meta);
    return TNREC_OK;
}

static int hex16(const char *s, uint64_t *out)
{
    if (!s || strlen(s) != 16)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return 0;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 1;
}

static tnrec_err open_listed_shard(tnrec_dataset *ds, const char *dir, const char *mpath, const json_t *o, size_t k)
{
    char what[1024];
    const char *file = tnrec__json_str(o, "file");
    const json_t *jrec = json_object_get(o, "records"), *jbytes = json_object_get(o, "bytes");
    uint64_t checksum;
    if (!file || !*file || strchr(file, '/') || strcmp(file, ".") == 0 || strcmp(file, "..") == 0 ||
        !json_is_integer(jrec) || json_integer_value(jrec) < 0 || !json_is_integer(jbytes) ||
        !hex16(tnrec__json_str(o, "index_checksum"), &checksum)) {
        snprintf(what, sizeof what, "shard entry %zu is malformed", k);
        return mfail(TNREC_ECORRUPT, mpath, what, HINT_REBUILD);
    }
    char *path = tnrec__path_join(dir, file);
    if (!path)
        return tnrec__fail(TNREC_ENOMEM, "out of memory opening dataset '%s'", dir);
    tnrec_shard *s = NULL;
    tnrec_err e = tnrec_shard_open(&s, path);
    if (e == TNREC_ENOTFOUND) {
        snprintf(what, sizeof what, "shard '%s' is missing", path);
        e = mfail(TNREC_ENOTFOUND, mpath, what, HINT_REBUILD);
    } else if (!e && tnrec_shard_count(s) != (uint64_t)json_integer_value(jrec)) {
        snprintf(what, sizeof what, "%" PRIu64 " records in the shard, %" PRIu64 " in the manifest", tnrec_shard_count(s),
                 (uint64_t)json_integer_value(jrec));
        e = disagrees(TNREC_ECORRUPT, mpath, path, what);
    } else if (!e && tnrec_shard_index_checksum(s) != checksum) {
        snprintf(what, sizeof what, "index checksum %016" PRIx64 " in the shard, %016" PRIx64 " in the manifest",
                 tnrec_shard_index_checksum(s), checksum);
        e = disagrees(TNREC_ECORRUPT, mpath, path, what);
    } else if (!e && tnrec_shard_file_size(s) != (uint64_t)json_integer_value(jbytes)) {
        snprintf(what, sizeof what, "%" PRIu64 " bytes in the shard, %" PRIu64 " in the manifest", tnrec_shard_file_size(s),
                 (uint64_t)json_integer_value(jbytes));
        e = disagrees(TNREC_ECORRUPT, mpath, path, what);
    } else if (!e && !rec_schema_equal(tnrec_shard_schema(s), &ds->schema)) {
        e = disagrees(TNREC_ESCHEMA, mpath, path, "the shard has a different schema");
    }
    free(path);
    if (e) {
        tnrec_shard_close(s);
        return e;
    }
    return add_shard(ds, s);
}

static tnrec_err parse_skipped(tnrec_dataset *ds, const json_t *arr, const char *mpath)
{
    if (!json_is_array(arr))
        return mfail(TNREC_ECORRUPT, mpath, "\"skipped\" is not an array", HINT_REBUILD);
    size_t n = json_array_size(arr);
    ds->skipped = calloc(n ? n : 1, sizeof *ds->skipped);
    if (!ds->skipped)
        return tnrec__fail(TNREC_ENOMEM, "out of memory reading '%s'", mpath);
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        const char *in = tnrec__json_str(o, "input");
        const char *why = tnrec__json_str(o, "reason");
        if (!in || !why)
            return mfail(TNREC_ECORRUPT, mpath, "a \"skipped\" entry lacks \"input\" or \"reason\"", HINT_REBUILD);
        ds->skipped[i].input = strdup(in);
        ds->skipped[i].reason = strdup(why);
        ds->nskipped = i + 1;
        if (!ds->skipped[i].input || !ds->skipped[i].reason)
            return tnrec__fail(TNREC_ENOMEM, "out of memory reading '%s'", mpath);
    }
    return TNREC_OK;
}

static tnrec_err open_manifest(tnrec_dataset *ds, const char *dir)
{
    char *mpath = tnrec__path_join(dir, TNREC_MANIFEST_NAME);
    uint8_t *text = NULL;
    size_t len = 0;
    json_t *root = NULL;
    tnrec_err e;
    if (!mpath)
        return tnrec__fail(TNREC_ENOMEM, "out of memory opening dataset '%s'", dir);
    if ((e = tnrec__read_file(mpath, &text, &len)) != TNREC_OK) {
        if (e == TNREC_ENOTFOUND)
            e = tnrec__fail(TNREC_ENOTFOUND, "dataset '%s' has no %s\n"
                                             "hint: the build did not finish; rerun 'tnrec build' to complete it",
                            dir, TNREC_MANIFEST_NAME);
        goto done;
    }
    json_error_t jerr;
    rec_json_begin();
    root = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root && rec_json_oom()) {
        e = tnrec__fail(TNREC_ENOMEM, "out of memory reading '%s'", mpath);
        goto done;
    }
    if (!json_is_object(root)) {
        e = tnrec__fail(TNREC_ECORRUPT, "manifest '%s' is not a JSON object (line %d: %s)\nhint: %s", mpath,
                        jerr.line, root ? "not an object" : jerr.text, HINT_REBUILD);
        goto done;
    }
    const char *format = tnrec__json_str(root, "format");
    const json_t *ver = json_object_get(root, "format_version");
    if (!format || strcmp(format, REC_MANIFEST_FORMAT) != 0 || !json_is_integer(ver)) {
        e = mfail(TNREC_EFORMAT, mpath, "not a tnrec dataset manifest (\"format\" is not \"tnrec-dataset\")",
                  "a dataset directory is written by 'tnrec build'");
        goto done;
    }
    if (json_integer_value(ver) != REC_MANIFEST_VERSION) {
        char what[128];
        snprintf(what, sizeof what, "format_version %" JSON_INTEGER_FORMAT " (this tnrec reads version %d)",
                 json_integer_value(ver), REC_MANIFEST_VERSION);
        e = mfail(TNREC_EFORMAT, mpath, what,
                  json_integer_value(ver) > REC_MANIFEST_VERSION ? "upgrade tnrec to read this dataset" : HINT_REBUILD);
        goto done;
    }
    const char *tool = tnrec__json_str(root, "tnrec_version");
    const json_t *shards = json_object_get(root, "shards"), *records = json_object_get(root, "records");
    const json_t *build = json_object_get(root, "build");
    if (!tool || !json_is_array(shards) || !json_is_integer(records) || !json_is_object(build)) {
        e = mfail(TNREC_ECORRUPT, mpath, "\"tnrec_version\", \"records\", \"shards\" or \"build\" missing or of the wrong type",
                  HINT_REBUILD);
        goto done;
    }
    tnrec_class_counts listed;
    if ((e = rec_schema_from_json(json_object_get(root, "schema"), mpath, &ds->schema)) != TNREC_OK ||
        (e = rec_counts_from_json(json_object_get(root, "class_counts"), mpath, &listed)) != TNREC_OK ||
        (e = parse_skipped(ds, json_object_get(root, "skipped"), mpath)) != TNREC_OK)
        goto done;
    ds->tool_version = strdup(tool);
    ds->build = json_dumps(build, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t count = json_array_size(shards);
    ds->shards = calloc(count ? count : 1, sizeof *ds->shards);
    ds->starts = calloc(count + 1, sizeof *ds->starts);
    if (!ds->tool_version || !ds->build || !ds->shards || !ds->starts) {
        e = tnrec__fail(TNREC_ENOMEM, "out of memory opening dataset '%s'", dir);
        goto done;
    }
    for (size_t k = 0; k < count; k++)
        if ((e = open_listed_shard(ds, dir, mpath, json_array_get(shards, k), k)) != TNREC_OK)
            goto done;
    if (ds->starts[ds->nshards] != (uint64_t)json_integer_value(records)) {
        char what[160];
        snprintf(what, sizeof what, "\"records\" is %" JSON_INTEGER_FORMAT " but the shards hold %" PRIu64,
                 json_integer_value(records), ds->starts[ds->nshards]);
        e = mfail(TNREC_ECORRUPT, mpath, what, HINT_REBUILD);
        goto done;
    }
    if (memcmp(&listed, &ds->counts, sizeof listed) != 0) {
        e = mfail(TNREC_ECORRUPT, mpath, "\"class_counts\" disagree with the shard indexes", HINT_REBUILD);
        goto done;
    }
done:
    json_decref(root);
    free(text);
    free(mpath);
    return e;
}

static tnrec_err open_single(tnrec_dataset *ds, const char *path)
{
    tnrec_shard *s;
    tnrec_err e = tnrec_shard_open(&s, path);
    if (e)
        return e;
    ds->shards = calloc(1, sizeof *ds->shards);
    ds->starts = calloc(2, sizeof *ds->starts);
    ds->skipped = calloc(1, sizeof *ds->skipped);
    ds->build = strdup("{}");
    if (!ds->shards || !ds->starts || !ds->skipped || !ds->build) {
        tnrec_shard_close(s);
        return tnrec__fail(TNREC_ENOMEM, "out of memory opening '%s'", path);
    }
    ds->schema = *tnrec_shard_schema(s);
    return add_shard(ds, s);
}

tnrec_err tnrec_dataset_open(tnrec_dataset **out, const char *path)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return tnrec__fail_errno(errno == ENOENT ? TNREC_ENOTFOUND : TNREC_EIO, errno, "cannot open dataset '%s'", path);
    tnrec_dataset *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->path = strdup(path))) {
        free(ds);
        return tnrec__fail(TNREC_ENOMEM, "out of memory opening dataset '%s'", path);
    }
    tnrec_err e = S_ISDIR(st.st_mode) ? open_manifest(ds, path) : open_single(ds, path);
    if (e) {
        tnrec_dataset_close(ds);
        return e;
    }
    *out = ds;
    return TNREC_OK;
}

void tnrec_dataset_close(tnrec_dataset *ds)
{
    if (!ds)
        return;
    for (size_t i = 0; i < ds->nshards; i++)
        tnrec_shard_close(ds->shards[i]);
    for (size_t i = 0; i < ds->nskipped; i++) {
        free(ds->skipped[i].input);
        free(ds->skipped[i].reason);
    }
    free(ds->skipped);
    free(ds->shards);
    free(ds->starts);
    free(ds->build);
    free(ds->tool_version);
    free(ds->path);
    free(ds);
}

size_t tnrec_dataset_shard_count(const tnrec_dataset *ds) { return ds->nshards; }
const tnrec_shard *tnrec_dataset_shard(const tnrec_dataset *ds, size_t s) { return s < ds->nshards ? ds->shards[s] : NULL; }
uint64_t tnrec_dataset_count(const tnrec_dataset *ds) { return ds->starts[ds->nshards]; }
const tnrec_schema *tnrec_dataset_schema(const tnrec_dataset *ds) { return &ds->schema; }
const tnrec_class_counts *tnrec_dataset_counts(const tnrec_dataset *ds) { return &ds->counts; }
double tnrec_dataset_class_weight(const tnrec_dataset *ds, int label) { return rec_class_weight(&ds->counts, label); }
size_t tnrec_dataset_skipped_count(const tnrec_dataset *ds) { return ds->nskipped; }
const tnrec_skipped *tnrec_dataset_skipped(const tnrec_dataset *ds, size_t i) { return i < ds->nskipped ? &ds->skipped[i] : NULL; }
const char *tnrec_dataset_build_params(const tnrec_dataset *ds) { return ds->build; }
const char *tnrec_dataset_tool_version(const tnrec_dataset *ds) { return ds->tool_version; }

tnrec_err tnrec_dataset_locate(const tnrec_dataset *ds, uint64_t i, size_t *out_shard, uint64_t *out_local)
{
    if (i >= tnrec_dataset_count(ds))
        return tnrec__fail(TNREC_ERANGE, "dataset '%s': record %" PRIu64 " out of range (%" PRIu64 " records)",
                           ds->path, i, tnrec_dataset_count(ds));
    /* Last shard whose start is <= i (empty shards are skipped over). */
    size_t lo = 0, hi = ds->nshards;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (ds->starts[mid] <= i)
            lo = mid;
        else
            hi = mid;
    }
    *out_shard = lo;
    *out_local = i - ds->starts[lo];
    return TNREC_OK;
}
