/* cli/cmd_dump.c: `tnrec dump`: look inside shards and datasets.
 *
 * Four views of each PATH (a dataset directory or one .tnr shard): the
 * summary (counts, sizes, schema, class counts and weights, skipped inputs),
 * --records (the footer index, one line per record), --record N (per-field,
 * per-channel statistics of one decoded record) and --npy DIR (every field
 * of one record as DIR/<field>.npy). --json gives each view as JSON: one
 * object for one PATH, an array of objects for several.
 *
 * Reads only; never writes except the .npy files. Record indexes are
 * dataset-wide within the given PATH. Statistics are over the decoded
 * values, i.e. normalised units for the float encodings; the channel is the
 * last dimension of a field (e.g. sweep). Decoding and statistics are the
 * records API's (tnrec_decoder_field, tnrec_decoder_field_stats): this file
 * only presents them. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_opt.h"

#define CMD "dump"

typedef enum dump_view { VIEW_SUMMARY, VIEW_RECORDS, VIEW_RECORD, VIEW_NPY } dump_view;

typedef struct dump_opts {
    dump_view view;
    int json;
    int stats;          /* --record given: statistics also with --npy */
    uint64_t record;
    const char *npy_dir;
    int quiet;          /* --quiet: no notes on stderr (errors still) */
} dump_opts;

/* ---- errors: printed on stderr, the last kept for the JSON error object ---- */

static char last_error[2048];

static void dump_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void dump_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    fprintf(stderr, "tnrec " CMD ": error: %s\n", last_error);
}

/* cli_fail with the library's message kept. */
static int dump_fail(tnrec_err e)
{
    const char *m = tnrec_error_last();
    snprintf(last_error, sizeof last_error, "%s", m && *m ? m : tnrec_err_name(e));
    return cli_fail(CMD, e);
}

/* {"path", "ok": false, "message"}: what --json prints for a PATH that failed. */
static json_t *error_doc(const char *path)
{
    json_t *o = json_object();
    json_object_set_new(o, "path", cli_json_text(path));
    json_object_set_new(o, "ok", json_false());
    json_object_set_new(o, "message", cli_json_text(last_error[0] ? last_error : "failed"));
    return o;
}

/* ---- small helpers ---- */

static void iso_time(int64_t t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if ((int64_t)tt == t && gmtime_r(&tt, &tm) && strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
        return;
    snprintf(buf, cap, "%" PRId64, t);
}

/* jansson refuses NaN and infinities: they become null. */
static json_t *json_num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *json_u64(uint64_t v)
{
    if (v <= (uint64_t)INT64_MAX)
        return json_integer((json_int_t)v);
    return json_real((double)v);
}

static const char *safe_dtype_name(tnrec_dtype dt)
{
    const char *s = tnrec_dtype_name(dt);
    return s ? s : "unknown";
}

static const char *safe_encoding_name(tnrec_encoding enc)
{
    const char *s = tnrec_encoding_name(enc);
    return s ? s : "unknown";
}

static size_t decoded_bytes(const tnrec_field *f)
{
    return tnrec_field_elems(f) * tnrec_dtype_size(tnrec_field_decoded_dtype(f));
}

static uint64_t total_raw_bytes(const tnrec_dataset *ds)
{
    uint64_t raw = 0;
    for (size_t s = 0; s < tnrec_dataset_shard_count(ds); s++) {
        const tnrec_shard *sh = tnrec_dataset_shard(ds, s);
        for (uint64_t i = 0; i < tnrec_shard_count(sh); i++) {
            const tnrec_record_info *info = tnrec_shard_info(sh, i);
            if (info)
                raw += info->raw_size;
        }
    }
    return raw;
}

static uint64_t total_bytes(const tnrec_dataset *ds)
{
    uint64_t bytes = 0;
    for (size_t s = 0; s < tnrec_dataset_shard_count(ds); s++)
        bytes += tnrec_shard_file_size(tnrec_dataset_shard(ds, s));
    return bytes;
}

/* Prints a JSON document to stdout; returns 0 on success. */
static int emit_json(json_t *doc)
{
    if (!doc) {
        dump_error("out of memory building JSON output");
        return -1;
    }
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    if (!text) {
        dump_error("cannot format JSON output (out of memory)");
        return -1;
    }
    fputs(text, stdout);
    fputc('\n', stdout);
    free(text);
    return 0;
}

/* ---- summary ---- */

static json_t *field_json(const tnrec_field *f)
{
    json_t *o = json_object();
    json_t *shape = json_array(), *dims = json_array();
    for (uint32_t d = 0; d < f->ndim && d < TNREC_MAX_DIMS; d++) {
        json_array_append_new(shape, json_integer(f->shape[d]));
        json_array_append_new(dims, cli_json_text(f->dims[d]));
    }
    json_object_set_new(o, "name", cli_json_text(f->name));
    json_object_set_new(o, "dtype", cli_json_text(safe_dtype_name(f->dtype)));
    json_object_set_new(o, "encoding", cli_json_text(safe_encoding_name(f->encoding)));
    json_object_set_new(o, "shape", shape);
    json_object_set_new(o, "dims", dims);
    json_object_set_new(o, "shuffle", json_boolean(f->shuffle));
    if (f->encoding != TNREC_ENC_RAW) {
        json_object_set_new(o, "offset", json_num(f->offset));
        json_object_set_new(o, "scale", json_num(f->scale));
        json_object_set_new(o, "nodata", json_num(f->nodata));
    }
    if (f->encoding == TNREC_ENC_UINT8) {
        json_object_set_new(o, "qmin", json_num(f->qmin));
        json_object_set_new(o, "qmax", json_num(f->qmax));
    }
    return o;
}

static json_t *counts_json(const tnrec_class_counts *c)
{
    json_t *label = json_object(), *cat = json_object(), *ef = json_object();
    json_object_set_new(label, "0", json_u64(c->label[0]));
    json_object_set_new(label, "1", json_u64(c->label[1]));
    json_object_set_new(cat, "TOR", json_u64(c->category[TNREC_CAT_TOR]));
    json_object_set_new(cat, "NUL", json_u64(c->category[TNREC_CAT_NUL]));
    json_object_set_new(cat, "WRN", json_u64(c->category[TNREC_CAT_WRN]));
    for (int e = -1; e <= 5; e++) {
        char key[8];
        snprintf(key, sizeof key, "%d", e);
        json_object_set_new(ef, key, json_u64(c->ef[e + 1]));
    }
    json_t *o = json_object();
    json_object_set_new(o, "label", label);
    json_object_set_new(o, "category", cat);
    json_object_set_new(o, "ef", ef);
    return o;
}

static json_t *summary_json(const char *path, const tnrec_dataset *ds)
{
    json_t *o = json_object();
    const char *tool = tnrec_dataset_tool_version(ds);
    uint64_t bytes = total_bytes(ds), raw = total_raw_bytes(ds);
    json_object_set_new(o, "path", cli_json_text(path));
    json_object_set_new(o, "kind", cli_json_text(tool ? "dataset" : "shard"));
    json_object_set_new(o, "tool_version", tool ? cli_json_text(tool) : json_null());
    json_object_set_new(o, "records", json_u64(tnrec_dataset_count(ds)));
    json_object_set_new(o, "bytes", json_u64(bytes));
    json_object_set_new(o, "raw_bytes", json_u64(raw));
    json_object_set_new(o, "ratio", bytes ? json_num((double)raw / (double)bytes) : json_null());

    json_t *shards = json_array();
    for (size_t s = 0; s < tnrec_dataset_shard_count(ds); s++) {
        const tnrec_shard *sh = tnrec_dataset_shard(ds, s);
        uint32_t v = tnrec_shard_version(sh);
        char ver[32], sum[32];
        snprintf(ver, sizeof ver, "%" PRIu32 ".%" PRIu32, v >> 16, v & 0xffffu);
        snprintf(sum, sizeof sum, "%016" PRIx64, tnrec_shard_index_checksum(sh));
        json_t *so = json_object();
        json_object_set_new(so, "path", cli_json_text(tnrec_shard_path(sh)));
        json_object_set_new(so, "records", json_u64(tnrec_shard_count(sh)));
        json_object_set_new(so, "bytes", json_u64(tnrec_shard_file_size(sh)));
        json_object_set_new(so, "version", cli_json_text(ver));
        json_object_set_new(so, "index_checksum", cli_json_text(sum));
        json_array_append_new(shards, so);
    }
    json_object_set_new(o, "shards", shards);

    const tnrec_schema *schema = tnrec_dataset_schema(ds);
    json_t *fields = json_array();
    for (uint32_t f = 0; f < schema->nfields && f < TNREC_MAX_FIELDS; f++)
        json_array_append_new(fields, field_json(&schema->fields[f]));
    json_object_set_new(o, "schema", fields);

    json_object_set_new(o, "class_counts", counts_json(tnrec_dataset_counts(ds)));
    json_t *w = json_object();
    json_object_set_new(w, "0", json_num(tnrec_dataset_class_weight(ds, 0)));
    json_object_set_new(w, "1", json_num(tnrec_dataset_class_weight(ds, 1)));
    json_object_set_new(o, "class_weights", w);

    size_t nskip = tnrec_dataset_skipped_count(ds);
    json_t *skipped = json_array();
    for (size_t i = 0; i < nskip; i++) {
        const tnrec_skipped *sk = tnrec_dataset_skipped(ds, i);
        json_t *so = json_object();
        json_object_set_new(so, "input", cli_json_text(sk->input ? sk->input : ""));
        json_object_set_new(so, "reason", cli_json_text(sk->reason ? sk->reason : ""));
        json_array_append_new(skipped, so);
    }
    json_object_set_new(o, "skipped", json_u64(nskip));
    json_object_set_new(o, "skipped_inputs", skipped);

    const char *build = tnrec_dataset_build_params(ds);
    json_t *b = build ? json_loads(build, 0, NULL) : NULL;
    json_object_set_new(o, "build", b ? b : json_object());
    return o;
}

static void print_field(const tnrec_field *f)
{
    printf("    %-20s %-8s", f->name, safe_encoding_name(f->encoding));
    if (f->encoding == TNREC_ENC_RAW)
        printf(" %-8s", safe_dtype_name(f->dtype));
    else
        printf(" %-8s", "");
    printf(" (");
    for (uint32_t d = 0; d < f->ndim && d < TNREC_MAX_DIMS; d++)
        printf("%s%s=%" PRIu32, d ? ", " : "", f->dims[d][0] ? f->dims[d] : "?", f->shape[d]);
    printf(")");
    if (f->encoding != TNREC_ENC_RAW)
        printf("  offset %g scale %g nodata %g", f->offset, f->scale, f->nodata);
    if (f->encoding == TNREC_ENC_UINT8)
        printf(" q [%g, %g]", f->qmin, f->qmax);
    printf("\n");
}

static void print_summary(const char *path, const tnrec_dataset *ds)
{
    const char *tool = tnrec_dataset_tool_version(ds);
    uint64_t bytes = total_bytes(ds), raw = total_raw_bytes(ds);
    size_t nshards = tnrec_dataset_shard_count(ds);
    if (tool)
        printf("dataset '%s' (written by tnrec %s)\n", path, tool);
    else
        printf("shard '%s'\n", path);
    printf("  records        %" PRIu64 " in %zu shard%s\n", tnrec_dataset_count(ds), nshards,
           nshards == 1 ? "" : "s");
    printf("  bytes on disk  %" PRIu64 "\n", bytes);
    printf("  raw bytes      %" PRIu64 "\n", raw);
    if (bytes)
        printf("  ratio          %.3f (raw / on disk)\n", (double)raw / (double)bytes);
    else
        printf("  ratio          -\n");

    const tnrec_class_counts *c = tnrec_dataset_counts(ds);
    printf("  label          0: %" PRIu64 "  1: %" PRIu64 "\n", c->label[0], c->label[1]);
    printf("  category       TOR: %" PRIu64 "  NUL: %" PRIu64 "  WRN: %" PRIu64 "\n",
           c->category[TNREC_CAT_TOR], c->category[TNREC_CAT_NUL], c->category[TNREC_CAT_WRN]);
    printf("  ef            ");
    for (int e = -1; e <= 5; e++)
        printf(" %d: %" PRIu64 "%s", e, c->ef[e + 1], e < 5 ? " " : "\n");
    printf("  class weights  0: %.6g  1: %.6g\n", tnrec_dataset_class_weight(ds, 0),
           tnrec_dataset_class_weight(ds, 1));

    const tnrec_schema *schema = tnrec_dataset_schema(ds);
    printf("  schema         %" PRIu32 " field%s (name, encoding, raw type, shape, normalisation)\n",
           schema->nfields, schema->nfields == 1 ? "" : "s");
    for (uint32_t f = 0; f < schema->nfields && f < TNREC_MAX_FIELDS; f++)
        print_field(&schema->fields[f]);

    size_t nskip = tnrec_dataset_skipped_count(ds);
    printf("  skipped        %zu input%s\n", nskip, nskip == 1 ? "" : "s");
    for (size_t i = 0; i < nskip; i++) {
        const tnrec_skipped *sk = tnrec_dataset_skipped(ds, i);
        printf("    %s: %s\n", sk->input ? sk->input : "", sk->reason ? sk->reason : "");
    }
}

/* ---- --records ---- */

static json_t *record_json(uint64_t index, const tnrec_shard *sh, uint64_t local, const tnrec_record_info *info)
{
    const tnrec_record_meta *m = &info->meta;
    char when[64], sum[32];
    iso_time(m->time, when, sizeof when);
    snprintf(sum, sizeof sum, "%016" PRIx64, info->checksum);
    json_t *o = json_object();
    json_object_set_new(o, "index", json_u64(index));
    json_object_set_new(o, "label", json_integer(m->label));
    json_object_set_new(o, "category", cli_json_text(tnrec_category_name(m->category)));
    json_object_set_new(o, "ef", json_integer(m->ef));
    json_object_set_new(o, "event_id", json_integer(m->event_id));
    json_object_set_new(o, "episode_id", json_integer(m->episode_id));
    json_object_set_new(o, "time", cli_json_text(when));
    json_object_set_new(o, "time_unix", json_integer(m->time));
    json_object_set_new(o, "key", cli_json_text(m->key));
    json_object_set_new(o, "shard", cli_json_text(tnrec_shard_path(sh)));
    json_object_set_new(o, "shard_index", json_u64(local));
    json_object_set_new(o, "offset", json_u64(info->offset));
    json_object_set_new(o, "size", json_u64(info->size));
    json_object_set_new(o, "raw_size", json_u64(info->raw_size));
    json_object_set_new(o, "checksum", cli_json_text(sum));
    return o;
}

/* JSON documents on stdout: one, or an array of them for several PATHs,
 * written as they are made so that no view holds a whole dataset's worth. */
typedef struct json_stream {
    int array;
    size_t count;
} json_stream;

static void doc_begin(json_stream *js)
{
    if (js->array && js->count)
        fputs(",\n", stdout);
    js->count++;
}

/* Prints v compactly (any JSON value); returns 0 on success. */
static int put_compact(json_t *v)
{
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    if (!text)
        return -1;
    fputs(text, stdout);
    free(text);
    return 0;
}

/* Text: one tab-separated line per record. JSON: {"path", "records": [...]},
 * streamed one record at a time. Returns 0 on success. */
static int records_view(const char *path, const tnrec_dataset *ds, json_stream *js)
{
    uint64_t index = 0;
    int rc = 0;
    if (js) {
        doc_begin(js);
        fputs("{\n  \"path\": ", stdout);
        rc |= put_compact(cli_json_text(path));
        fputs(",\n  \"records\": [", stdout);
    } else {
        printf("# %s\n# index\tlabel\tcategory\tef\tevent_id\ttime\tkey\n", path);
    }
    for (size_t s = 0; s < tnrec_dataset_shard_count(ds); s++) {
        const tnrec_shard *sh = tnrec_dataset_shard(ds, s);
        for (uint64_t i = 0; i < tnrec_shard_count(sh); i++, index++) {
            const tnrec_record_info *info = tnrec_shard_info(sh, i);
            if (!info)
                continue;
            if (js) {
                fputs(index ? ",\n    " : "\n    ", stdout);
                rc |= put_compact(record_json(index, sh, i, info));
                continue;
            }
            char when[64];
            iso_time(info->meta.time, when, sizeof when);
            printf("%" PRIu64 "\t%d\t%s\t%d\t%" PRId64 "\t%s\t%s\n", index, (int)info->meta.label,
                   tnrec_category_name(info->meta.category), (int)info->meta.ef, info->meta.event_id,
                   when, info->meta.key);
        }
    }
    if (js)
        fputs(index ? "\n  ]\n}\n" : "]\n}\n", stdout);
    if (rc)
        dump_error("out of memory writing the records of '%s' as JSON", path);
    return rc;
}

/* ---- --record N and --npy: one decoded record ---- */

typedef struct record_ctx {
    const char *path;
    const tnrec_dataset *ds;
    uint64_t index, local;
    const tnrec_shard *shard;
    tnrec_decoder *dec;
    void *buf;                   /* decoded values of one field (--npy) */
    tnrec_channel_stats *stats;  /* one per channel */
    size_t max_chan;             /* entries of stats */
} record_ctx;

static void record_ctx_free(record_ctx *rc)
{
    tnrec_decoder_free(rc->dec);
    free(rc->buf);
    free(rc->stats);
}

/* Locates and loads record rc->index, with buffers big enough for any field. */
static int record_ctx_open(record_ctx *rc, const char *path, const tnrec_dataset *ds, uint64_t index)
{
    memset(rc, 0, sizeof *rc);
    rc->path = path;
    rc->ds = ds;
    rc->index = index;
    uint64_t n = tnrec_dataset_count(ds);
    if (index >= n) {
        if (n == 0)
            dump_error("record %" PRIu64 " out of range: '%s' has no records\n"
                    "hint: this dataset is empty; rebuild it or pick another PATH", index, path);
        else
            dump_error("record %" PRIu64 " out of range: '%s' has %" PRIu64
                    " record%s\nhint: pick an index from 0 to %" PRIu64
                    " ('tnrec dump --records %s' lists them)",
                    index, path, n, n == 1 ? "" : "s", n - 1, path);
        return -1;
    }
    size_t s = 0;
    tnrec_err e = tnrec_dataset_locate(ds, index, &s, &rc->local);
    if (e)
        return dump_fail(e), -1;
    rc->shard = tnrec_dataset_shard(ds, s);
    const tnrec_schema *schema = tnrec_dataset_schema(ds);
    size_t max_bytes = 1, max_chan = 1;
    for (uint32_t f = 0; f < schema->nfields && f < TNREC_MAX_FIELDS; f++) {
        const tnrec_field *fl = &schema->fields[f];
        size_t b = decoded_bytes(fl), ch = tnrec_field_channels(fl);
        max_bytes = b > max_bytes ? b : max_bytes;
        max_chan = ch > max_chan ? ch : max_chan;
    }
    rc->buf = malloc(max_bytes);
    rc->stats = calloc(max_chan, sizeof *rc->stats);
    rc->max_chan = max_chan;
    if (!rc->buf || !rc->stats) {
        dump_error("out of memory decoding record %" PRIu64 " of '%s' (%zu bytes)",
                index, path, max_bytes);
        record_ctx_free(rc);
        return -1;
    }
    e = tnrec_decoder_create(&rc->dec);
    if (!e)
        e = tnrec_decoder_load(rc->dec, rc->shard, rc->local);
    if (e) {
        dump_fail(e);
        record_ctx_free(rc);
        return -1;
    }
    return 0;
}

static json_t *meta_json(const record_ctx *rc)
{
    const tnrec_record_info *info = tnrec_shard_info(rc->shard, rc->local);
    return info ? record_json(rc->index, rc->shard, rc->local, info) : json_null();
}

static void print_meta(const record_ctx *rc)
{
    const tnrec_record_info *info = tnrec_shard_info(rc->shard, rc->local);
    if (!info)
        return;
    char when[64];
    iso_time(info->meta.time, when, sizeof when);
    printf("record %" PRIu64 " of '%s' (shard '%s', record %" PRIu64 ")\n", rc->index, rc->path,
           tnrec_shard_path(rc->shard), rc->local);
    printf("  label %d  category %s  ef %d  event %" PRId64 "  time %s\n  key %s\n",
           (int)info->meta.label, tnrec_category_name(info->meta.category), (int)info->meta.ef,
           info->meta.event_id, when, info->meta.key);
}

static json_t *stats_view(record_ctx *rc, int json, int *failed)
{
    const tnrec_schema *schema = tnrec_dataset_schema(rc->ds);
    json_t *fields = json ? json_object() : NULL;
    if (!json) {
        print_meta(rc);
        printf("  statistics over the gates with data, as decoded (normalised units for float encodings)\n");
    }
    for (uint32_t f = 0; f < schema->nfields && f < TNREC_MAX_FIELDS; f++) {
        const tnrec_field *fl = &schema->fields[f];
        tnrec_err e = tnrec_decoder_field_stats(rc->dec, f, rc->stats, rc->max_chan);
        if (e) {
            dump_fail(e);
            *failed = 1;
            continue;
        }
        size_t n = tnrec_field_elems(fl), nch = tnrec_field_channels(fl);
        const char *chdim = fl->ndim ? fl->dims[fl->ndim - 1] : NULL;
        tnrec_dtype dt = tnrec_field_decoded_dtype(fl);
        if (json) {
            json_t *fo = json_object(), *shape = json_array(), *dims = json_array(), *chans = json_array();
            for (uint32_t d = 0; d < fl->ndim && d < TNREC_MAX_DIMS; d++) {
                json_array_append_new(shape, json_integer(fl->shape[d]));
                json_array_append_new(dims, cli_json_text(fl->dims[d]));
            }
            for (size_t c = 0; c < nch; c++) {
                const tnrec_channel_stats *st = &rc->stats[c];
                json_t *co = json_object();
                json_object_set_new(co, "channel", json_integer((json_int_t)c));
                json_object_set_new(co, "count", json_u64(st->count));
                json_object_set_new(co, "data", json_u64(st->data));
                json_object_set_new(co, "nodata_fraction",
                                    json_real(st->count ? (double)(st->count - st->data) / (double)st->count : 0.0));
                json_object_set_new(co, "min", st->data ? json_num(st->min) : json_null());
                json_object_set_new(co, "max", st->data ? json_num(st->max) : json_null());
                json_object_set_new(co, "mean", st->data ? json_num(st->mean) : json_null());
                json_array_append_new(chans, co);
            }
            json_object_set_new(fo, "encoding", cli_json_text(safe_encoding_name(fl->encoding)));
            json_object_set_new(fo, "dtype", cli_json_text(safe_dtype_name(dt)));
            json_object_set_new(fo, "shape", shape);
            json_object_set_new(fo, "dims", dims);
            json_object_set_new(fo, "channel_dim", chdim ? cli_json_text(chdim) : json_null());
            json_object_set_new(fo, "channels", chans);
            json_object_set_new(fields, fl->name, fo);
            continue;
        }
        printf("  field %s (%s", fl->name, safe_encoding_name(fl->encoding));
        if (fl->encoding == TNREC_ENC_RAW)
            printf(" %s", safe_dtype_name(fl->dtype));
        printf(", %zu element%s)\n", n, n == 1 ? "" : "s");
        printf("    %-10s %10s %10s %17s %17s %17s\n", chdim && chdim[0] ? chdim : "channel", "count",
               "nodata", "min", "max", "mean");
        for (size_t c = 0; c < nch; c++) {
            const tnrec_channel_stats *st = &rc->stats[c];
            double frac = st->count ? (double)(st->count - st->data) / (double)st->count : 0.0;
            printf("    %-10zu %10" PRIu64 " %10.4f", c, st->count, frac);
            if (st->data)
                printf(" %17.12g %17.12g %17.12g\n", st->min, st->max, st->mean);
            else
                printf(" %17s %17s %17s\n", "-", "-", "-");
        }
    }
    if (!json)
        return NULL;
    json_t *o = json_object();
    json_object_set_new(o, "path", cli_json_text(rc->path));
    json_object_set_new(o, "index", json_u64(rc->index));
    json_object_set_new(o, "meta", meta_json(rc));
    json_object_set_new(o, "fields", fields);
    return o;
}

/* mkdir -p: every missing component of dir. */
static int make_dirs(const char *dir)
{
    size_t len = strlen(dir);
    char *p = malloc(len + 1);
    if (!p) {
        dump_error("out of memory");
        return -1;
    }
    memcpy(p, dir, len + 1);
    int rc = 0;
    for (size_t i = 1; i <= len && rc == 0; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char saved = p[i];
        p[i] = '\0';
        struct stat st;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            dump_error("cannot create directory '%s': %s\n"
                    "hint: check the --npy path and its permissions", p, strerror(errno));
            rc = -1;
        } else if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
            dump_error("'%s' exists and is not a directory\n"
                    "hint: give --npy a directory path", p);
            rc = -1;
        }
        p[i] = saved;
    }
    free(p);
    return rc;
}

/* A field name becomes a file name: refuse anything that would escape DIR. */
static int name_is_safe(const char *name)
{
    return name[0] && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 && !strchr(name, '/');
}

/* The .npy files one --npy call has written, removed again when a later
 * one fails, so that DIR never holds part of a record. */
typedef struct npy_written {
    char *file[TNREC_MAX_FIELDS];
    tnrec_dtype dtype[TNREC_MAX_FIELDS];
    const tnrec_field *field[TNREC_MAX_FIELDS];
    size_t n;
} npy_written;

/* Removes the files written before an error; quiet: without saying so. */
static void npy_remove_all(npy_written *w, int quiet)
{
    size_t removed = 0;
    for (size_t i = 0; i < w->n; i++)
        if (unlink(w->file[i]) == 0)
            removed++;
    if (removed && !quiet)
        fprintf(stderr, "tnrec " CMD ": removed the %zu .npy file%s written before the error\n", removed,
                removed == 1 ? "" : "s");
}

static void npy_written_free(npy_written *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->file[i]);
    w->n = 0;
}

/* One field as DIR/<field>.npy; the file's path goes into w. 0 or -1. */
static int npy_write_field(record_ctx *rc, const char *dir, uint32_t f, npy_written *w)
{
    const tnrec_field *fl = &tnrec_dataset_schema(rc->ds)->fields[f];
    if (!name_is_safe(fl->name)) {
        dump_error("field %" PRIu32 " of '%s' is named '%s', which cannot be a file name\n"
                   "hint: the shard's schema is damaged; rebuild it", f, rc->path, fl->name);
        return -1;
    }
    tnrec_dtype dt = tnrec_field_decoded_dtype(fl);
    size_t plen = strlen(dir) + strlen(fl->name) + 8;
    char *file = malloc(plen);
    if (!file) {
        dump_error("out of memory");
        return -1;
    }
    snprintf(file, plen, "%s/%s.npy", dir, fl->name);
    tnrec_err e = tnrec_decoder_field(rc->dec, f, dt, rc->buf, decoded_bytes(fl));
    if (!e)
        e = tnrec_npy_write(file, dt, fl->ndim, fl->shape, rc->buf);
    if (e) {
        dump_fail(e);
        free(file);
        return -1;
    }
    w->file[w->n] = file;
    w->dtype[w->n] = dt;
    w->field[w->n] = fl;
    w->n++;
    return 0;
}

static json_t *npy_report(const npy_written *w, int json)
{
    json_t *files = json ? json_array() : NULL;
    for (size_t i = 0; i < w->n; i++) {
        const tnrec_field *fl = w->field[i];
        if (json) {
            json_t *fo = json_object(), *shape = json_array();
            for (uint32_t d = 0; d < fl->ndim && d < TNREC_MAX_DIMS; d++)
                json_array_append_new(shape, json_integer(fl->shape[d]));
            json_object_set_new(fo, "field", cli_json_text(fl->name));
            json_object_set_new(fo, "file", cli_json_text(w->file[i]));
            json_object_set_new(fo, "dtype", cli_json_text(safe_dtype_name(w->dtype[i])));
            json_object_set_new(fo, "shape", shape);
            json_array_append_new(files, fo);
            continue;
        }
        printf("wrote %s (%s", w->file[i], safe_dtype_name(w->dtype[i]));
        for (uint32_t d = 0; d < fl->ndim && d < TNREC_MAX_DIMS; d++)
            printf("%s%" PRIu32, d ? " x " : " ", fl->shape[d]);
        printf(")\n");
    }
    return files;
}

static json_t *npy_view(record_ctx *rc, const char *dir, int json, int quiet, int *failed)
{
    const tnrec_schema *schema = tnrec_dataset_schema(rc->ds);
    if (make_dirs(dir) != 0) {
        *failed = 1;
        return NULL;
    }
    npy_written w = { .n = 0 };
    for (uint32_t f = 0; f < schema->nfields && f < TNREC_MAX_FIELDS && !*failed; f++)
        if (npy_write_field(rc, dir, f, &w) != 0)
            *failed = 1;
    if (*failed) {
        npy_remove_all(&w, quiet);
        npy_written_free(&w);
        return NULL;
    }
    json_t *files = npy_report(&w, json);
    npy_written_free(&w);
    if (!json)
        return NULL;
    json_t *o = json_object();
    json_object_set_new(o, "path", cli_json_text(rc->path));
    json_object_set_new(o, "index", json_u64(rc->index));
    json_object_set_new(o, "dir", cli_json_text(dir));
    json_object_set_new(o, "files", files);
    return o;
}

/* ---- driver ---- */

/* One PATH in the chosen view. Returns an exit code; *out gets the JSON
 * document of the views that build one (--records streams to js itself). */
static int dump_one(const char *path, const dump_opts *opt, json_stream *js, json_t **out)
{
    *out = NULL;
    tnrec_dataset *ds = NULL;
    tnrec_err e = tnrec_dataset_open(&ds, path);
    if (e)
        return dump_fail(e);
    int failed = 0;
    switch (opt->view) {
    case VIEW_SUMMARY:
        if (opt->json)
            *out = summary_json(path, ds);
        else
            print_summary(path, ds);
        break;
    case VIEW_RECORDS:
        if (records_view(path, ds, opt->json ? js : NULL) != 0)
            failed = 1;
        break;
    case VIEW_RECORD:
    case VIEW_NPY: {
        record_ctx rc;
        if (record_ctx_open(&rc, path, ds, opt->record) != 0) {
            failed = 1;
            break;
        }
        if (opt->view == VIEW_RECORD) {
            *out = stats_view(&rc, opt->json, &failed);
        } else {
            json_t *files = npy_view(&rc, opt->npy_dir, opt->json, opt->quiet, &failed);
            if (!opt->stats || failed) {
                *out = files;
            } else {
                /* --record N --npy DIR: the statistics, with the files under "npy". */
                if (!opt->json)
                    printf("\n");
                *out = stats_view(&rc, opt->json, &failed);
                if (*out)
                    json_object_set(*out, "npy", files);
                json_decref(files);
            }
        }
        record_ctx_free(&rc);
        break;
    }
    }
    tnrec_dataset_close(ds);
    if (failed) {
        json_decref(*out);
        *out = NULL;
        return TNREC_EXIT_FAIL;
    }
    return TNREC_EXIT_OK;
}

int cmd_dump(int argc, char **argv)
{
    dump_opts opt = { VIEW_SUMMARY, 0, 0, 0, NULL, 0 };
    int want_records = 0, want_record = 0;
    const cli_opt opts[] = {
        { CLI_FLAG, "records", 0, .dst = &want_records,
          .help = "one line per record: index, label, category, EF, event id,\ntime (ISO 8601 UTC), key" },
        { CLI_INT, "record", 0, NULL, "N", CLI_INT_DST(opt.record), .min = 0, .max = CLI_NONE, .seen = &want_record,
          .help = "per-field, per-channel statistics of record N (min, max and\n"
                  "mean over the gates with data, fraction of no-data gates);\n"
                  "values as decoded: normalised units for float encodings" },
        { CLI_STRING, "npy", 0, NULL, "DIR", .dst = &opt.npy_dir,
          .help = "write every field of record N (default 0) as DIR/<field>.npy;\n"
                  "float encodings as float32 (no data = the field's nodata),\n"
                  "raw fields in their own type; creates DIR; one PATH only;\n"
                  "with --record N also prints that record's statistics; on an\n"
                  "error the files already written are removed" },
        { CLI_FLAG, "json", 0, .dst = &opt.json,
          .help = "JSON instead of text (one object per PATH; an array of them\n"
                  "when several PATHs are given). Summary keys: path, kind,\n"
                  "records, shards, bytes, raw_bytes, ratio, schema,\n"
                  "class_counts {label, category, ef}, class_weights,\n"
                  "skipped (a count), skipped_inputs, tool_version, build;\n"
                  "a PATH that fails gives {path, ok: false, message}" },
        { CLI_FLAG, "quiet", 'q', .dst = &opt.quiet,
          .help = "no notes on stderr (errors are still printed; stdout is\nthe same)" },
        CLI_OPT_END
    };
    const cli_spec spec = {
        .cmd = CMD,
        .usage = "tnrec dump [options] PATH...",
        .about = "Summarise each PATH (a dataset directory with manifest.json, or one .tnr\n"
                 "shard): records, bytes on disk and raw, compression ratio, schema, class\n"
                 "counts by label, category and EF, balanced class weights, skipped inputs.",
        .opts = opts,
        .epilog = "Record indexes count from 0 across the whole PATH.\n"
                  "example: tnrec dump --record 3 --json out/train\n",
    };
    const char **paths = NULL;
    size_t npaths = 0;
    int prc = cli_parse_paths(&spec, argc, argv, "a dataset directory or a .tnr shard", &paths, &npaths);
    if (prc >= 0)
        return prc;
    if (want_records && (want_record || opt.npy_dir)) {
        free(paths);
        return cli_usage_error(CMD, "--records lists every record; it cannot be combined with --record or --npy");
    }
    if (opt.npy_dir && npaths > 1) {
        free(paths);
        return cli_usage_error(CMD, "--npy writes one record's fields: give exactly one PATH");
    }
    opt.stats = want_record;
    opt.view = opt.npy_dir ? VIEW_NPY : want_record ? VIEW_RECORD : want_records ? VIEW_RECORDS : VIEW_SUMMARY;

    int rc = TNREC_EXIT_OK;
    json_stream js = { opt.json && npaths > 1, 0 };
    if (js.array)
        fputs("[\n", stdout);
    for (size_t p = 0; p < npaths; p++) {
        json_t *doc = NULL;
        if (p > 0 && !opt.json)
            printf("\n");
        last_error[0] = '\0';
        size_t streamed = js.count;
        if (dump_one(paths[p], &opt, &js, &doc) != TNREC_EXIT_OK) {
            rc = TNREC_EXIT_FAIL;
            /* --records streams its document: an error object only when it began none */
            if (opt.json && !doc && js.count == streamed)
                doc = error_doc(paths[p]);
        }
        if (!opt.json || !doc)
            continue;
        doc_begin(&js);
        if (emit_json(doc) != 0)
            rc = TNREC_EXIT_FAIL;
        json_decref(doc);
    }
    if (js.array)
        fputs("]\n", stdout);
    free(paths);
    if (fflush(stdout) != 0) {
        dump_error("cannot write to standard output");
        rc = TNREC_EXIT_FAIL;
    }
    return rc;
}
