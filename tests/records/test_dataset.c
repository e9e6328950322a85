/* tests/records/test_dataset.c: dataset writer rollover by record count
 * and by size, the manifest's exact keys, counts and weights, the dataset
 * reader (locate, counts, skipped, build parameters, single-shard open),
 * refusal of a manifest that disagrees with its shards, and abort or
 * failure leaving no shard or manifest behind, adopting the finished
 * shards of an interrupted writer, and a dataset of more shards than the
 * descriptor limit allows open at once. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rec_fixture.h"
#include "tnrec_test.h"

static char dir[4096];

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Builds a dataset of n fx records into d. Returns the writer error. */
static tnrec_err build(const char *d, uint64_t n, const tnrec_dataset_options *opt, int skip, const char *params)
{
    tnrec_schema schema;
    fx_schema(&schema, TNREC_ENC_FLOAT16, 1);
    tnrec_encoder *enc = NULL;
    tnrec_dataset_writer *w = NULL;
    tnrec_blob blob = { 0 };
    fx_record r;
    tnrec_err e = tnrec_encoder_create(&enc, &schema, 3);
    if (!e)
        e = tnrec_dataset_writer_open(&w, d, &schema, opt);
    for (uint64_t i = 0; !e && i < n; i++) {
        fx_fill(&r, i);
        e = tnrec_encoder_encode(enc, r.values, &blob);
        if (!e)
            e = tnrec_dataset_writer_append(w, &blob, &r.meta);
    }
    if (!e && skip)
        e = tnrec_dataset_writer_skip(w, "train/2013/broken.nc", "no variable DBZ");
    if (!e) {
        e = tnrec_dataset_writer_close(w, params);
        w = NULL;
    }
    tnrec_dataset_writer_abort(w);
    tnrec_encoder_free(enc);
    tnrec_blob_free(&blob);
    return e;
}

static json_t *load_manifest(const char *d)
{
    char p[4300];
    snprintf(p, sizeof p, "%s/manifest.json", d);
    return json_load_file(p, 0, NULL);
}

static int save_manifest(const char *d, json_t *m)
{
    char p[4300];
    snprintf(p, sizeof p, "%s/manifest.json", d);
    return json_dump_file(m, p, JSON_INDENT(2));
}

static void test_rollover_by_count(void)
{
    char d[4200];
    snprintf(d, sizeof d, "%s/by_count/nested", dir);
    tnrec_dataset_options opt = { .max_shard_records = 4, .prefix = "train", .first_shard = 3 };
    CHECK_OK(build(d, 10, &opt, 1, "{\"years\": [2013], \"seed\": 7}"));
    json_t *m = load_manifest(d);
    CHECK(m != NULL);
    if (!m)
        return;
    /* Exact public keys. */
    CHECK(strcmp(json_string_value(json_object_get(m, "format")), "tnrec-dataset") == 0);
    CHECK(json_integer_value(json_object_get(m, "format_version")) == 1);
    CHECK(strcmp(json_string_value(json_object_get(m, "tnrec_version")), tnrec_version()) == 0);
    CHECK(json_integer_value(json_object_get(m, "records")) == 10);
    json_t *shards = json_object_get(m, "shards");
    CHECK(json_array_size(shards) == 3);
    const char *names[3] = { "train-00003.tnr", "train-00004.tnr", "train-00005.tnr" };
    const json_int_t counts[3] = { 4, 4, 2 };
    for (size_t i = 0; i < 3 && i < json_array_size(shards); i++) {
        json_t *s = json_array_get(shards, i);
        CHECK(strcmp(json_string_value(json_object_get(s, "file")), names[i]) == 0);
        CHECK(json_integer_value(json_object_get(s, "records")) == counts[i]);
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", d, names[i]);
        struct stat st;
        CHECK(stat(p, &st) == 0 && json_integer_value(json_object_get(s, "bytes")) == (json_int_t)st.st_size);
        const char *hex = json_string_value(json_object_get(s, "index_checksum"));
        CHECK(hex && strlen(hex) == 16 && strspn(hex, "0123456789abcdef") == 16);
    }
    /* fx_fill: label 1 when i % 3 == 0 (0, 3, 6, 9), category TOR then; others NUL/WRN by parity. */
    json_t *cc = json_object_get(m, "class_counts");
    CHECK(json_integer_value(json_object_get(json_object_get(cc, "label"), "0")) == 6);
    CHECK(json_integer_value(json_object_get(json_object_get(cc, "label"), "1")) == 4);
    CHECK(json_integer_value(json_object_get(json_object_get(cc, "category"), "TOR")) == 4);
    CHECK(json_integer_value(json_object_get(json_object_get(cc, "category"), "NUL")) == 3);
    CHECK(json_integer_value(json_object_get(json_object_get(cc, "category"), "WRN")) == 3);
    CHECK(json_integer_value(json_object_get(json_object_get(cc, "ef"), "-1")) == 6);
    CHECK(json_integer_value(json_object_get(json_object_get(cc, "ef"), "0")) == 2); /* i = 0, 6 */
    CHECK(json_integer_value(json_object_get(json_object_get(cc, "ef"), "3")) == 2); /* i = 3, 9 */
    CHECK(json_integer_value(json_object_get(json_object_get(cc, "ef"), "5")) == 0);
    json_t *cw = json_object_get(m, "class_weights");
    CHECK(fabs(json_real_value(json_object_get(cw, "0")) - 10.0 / 12.0) < 1e-12);
    CHECK(fabs(json_real_value(json_object_get(cw, "1")) - 10.0 / 8.0) < 1e-12);
    json_t *sk = json_array_get(json_object_get(m, "skipped"), 0);
    CHECK(strcmp(json_string_value(json_object_get(sk, "input")), "train/2013/broken.nc") == 0);
    CHECK(strcmp(json_string_value(json_object_get(sk, "reason")), "no variable DBZ") == 0);
    CHECK(json_integer_value(json_object_get(json_object_get(m, "build"), "seed")) == 7);
    json_t *f0 = json_array_get(json_object_get(json_object_get(m, "schema"), "fields"), 0);
    CHECK(strcmp(json_string_value(json_object_get(f0, "name")), "DBZ") == 0);
    CHECK(strcmp(json_string_value(json_object_get(f0, "dtype")), "float32") == 0);
    CHECK(strcmp(json_string_value(json_object_get(f0, "encoding")), "float16") == 0);
    CHECK(json_integer_value(json_array_get(json_object_get(f0, "shape"), 2)) == 5);
    CHECK(strcmp(json_string_value(json_array_get(json_object_get(f0, "dims"), 1)), "azimuth") == 0);
    CHECK(json_real_value(json_object_get(f0, "scale")) == 40.0 && json_is_true(json_object_get(f0, "shuffle")));
    CHECK(json_real_value(json_object_get(f0, "nodata")) == -3.0 && json_real_value(json_object_get(f0, "qmax")) == 1.0);
    json_decref(m);

    /* Reading it back. */
    tnrec_dataset *ds = NULL;
    CHECK_OK(tnrec_dataset_open(&ds, d));
    if (!ds)
        return;
    CHECK(tnrec_dataset_count(ds) == 10 && tnrec_dataset_shard_count(ds) == 3);
    CHECK(tnrec_dataset_counts(ds)->label[1] == 4 && tnrec_dataset_counts(ds)->ef[0] == 6);
    CHECK(fabs(tnrec_dataset_class_weight(ds, 1) - 1.25) < 1e-12);
    CHECK(tnrec_dataset_skipped_count(ds) == 1 &&
          strcmp(tnrec_dataset_skipped(ds, 0)->reason, "no variable DBZ") == 0);
    CHECK(strstr(tnrec_dataset_build_params(ds), "\"seed\":7") != NULL);
    CHECK(strcmp(tnrec_dataset_tool_version(ds), tnrec_version()) == 0);
    CHECK(tnrec_dataset_schema(ds)->nfields == 5);
    tnrec_decoder *dec = NULL;
    CHECK_OK(tnrec_decoder_create(&dec));
    for (uint64_t i = 0; i < 10; i++) {
        size_t sh = 99;
        uint64_t local = 99;
        CHECK_OK(tnrec_dataset_locate(ds, i, &sh, &local));
        CHECK(sh == i / 4 && local == i % 4);
        const tnrec_shard *s = tnrec_dataset_shard(ds, sh);
        fx_record r;
        fx_fill(&r, i);
        CHECK(s && strcmp(tnrec_shard_info(s, local)->meta.key, r.meta.key) == 0);
        uint8_t mask[60];
        CHECK_OK(tnrec_decoder_load(dec, s, local));
        CHECK_OK(tnrec_decoder_field(dec, 1, TNREC_DTYPE_U8, mask, sizeof mask));
        CHECK(memcmp(mask, r.mask, 60) == 0);
    }
    size_t sh;
    uint64_t local;
    CHECK(tnrec_dataset_locate(ds, 10, &sh, &local) == TNREC_ERANGE);
    tnrec_decoder_free(dec);
    tnrec_dataset_close(ds);

    /* One shard opened on its own: counts from its index. */
    char one[4400];
    snprintf(one, sizeof one, "%s/train-00005.tnr", d);
    CHECK_OK(tnrec_dataset_open(&ds, one));
    if (ds) {
        CHECK(tnrec_dataset_count(ds) == 2 && tnrec_dataset_shard_count(ds) == 1);
        CHECK(tnrec_dataset_counts(ds)->label[0] + tnrec_dataset_counts(ds)->label[1] == 2);
        CHECK(strcmp(tnrec_dataset_build_params(ds), "{}") == 0 && tnrec_dataset_tool_version(ds) == NULL);
        CHECK(tnrec_dataset_skipped_count(ds) == 0);
    }
    tnrec_dataset_close(ds);
}

static void test_rollover_by_size(void)
{
    char d[4200];
    snprintf(d, sizeof d, "%s/by_size", dir);
    tnrec_dataset_options opt = { .max_shard_bytes = 1800 };
    CHECK_OK(build(d, 12, &opt, 0, NULL));
    tnrec_dataset *ds = NULL;
    CHECK_OK(tnrec_dataset_open(&ds, d));
    if (!ds)
        return;
    CHECK(tnrec_dataset_count(ds) == 12 && tnrec_dataset_shard_count(ds) > 2);
    for (size_t i = 0; i < tnrec_dataset_shard_count(ds); i++) {
        const tnrec_shard *s = tnrec_dataset_shard(ds, i);
        CHECK(tnrec_shard_file_size(s) <= 1800 || tnrec_shard_count(s) == 1);
        CHECK(tnrec_shard_count(s) >= 1);
        char want[64];
        snprintf(want, sizeof want, "/shard-%05zu.tnr", i);
        CHECK(strstr(tnrec_shard_path(s), want) != NULL);
    }
    tnrec_dataset_close(ds);
    /* A record larger than the limit gets a shard of its own. */
    snprintf(d, sizeof d, "%s/tiny_limit", dir);
    opt.max_shard_bytes = 10;
    CHECK_OK(build(d, 3, &opt, 0, NULL));
    CHECK_OK(tnrec_dataset_open(&ds, d));
    CHECK(ds && tnrec_dataset_shard_count(ds) == 3);
    tnrec_dataset_close(ds);
}

/* Edits the manifest with `edit`, expects open to fail with `want` and a
 * message containing `needle`, then restores it. */
static void expect_rejected(const char *d, void (*edit)(json_t *), tnrec_err want, const char *needle)
{
    json_t *m = load_manifest(d), *orig = json_deep_copy(m);
    edit(m);
    CHECK(save_manifest(d, m) == 0);
    tnrec_dataset *ds = NULL;
    tnrec_err e = tnrec_dataset_open(&ds, d);
    CHECK(e == want && ds == NULL);
    if (e != want || !strstr(tnrec_error_last(), needle) || !strstr(tnrec_error_last(), "hint:"))
        fprintf(stderr, "  wanted %s with '%s', got %s: %s\n", tnrec_err_name(want), needle, tnrec_err_name(e),
                tnrec_error_last());
    CHECK(strstr(tnrec_error_last(), needle) != NULL && strstr(tnrec_error_last(), "hint:") != NULL);
    tnrec_dataset_close(ds);
    CHECK(save_manifest(d, orig) == 0);
    json_decref(m);
    json_decref(orig);
}

static json_t *shard0(json_t *m) { return json_array_get(json_object_get(m, "shards"), 0); }
static void edit_records(json_t *m) { json_object_set_new(shard0(m), "records", json_integer(3)); }
static void edit_checksum(json_t *m) { json_object_set_new(shard0(m), "index_checksum", json_string("0123456789abcdef")); }
static void edit_file(json_t *m) { json_object_set_new(shard0(m), "file", json_string("shard-00099.tnr")); }
static void edit_escape(json_t *m) { json_object_set_new(shard0(m), "file", json_string("../x.tnr")); }
static void edit_total(json_t *m) { json_object_set_new(m, "records", json_integer(11)); }
static void edit_counts(json_t *m)
{
    json_object_set_new(json_object_get(json_object_get(m, "class_counts"), "label"), "1", json_integer(5));
}
static void edit_version(json_t *m) { json_object_set_new(m, "format_version", json_integer(2)); }
static void edit_format(json_t *m) { json_object_set_new(m, "format", json_string("something-else")); }
static void edit_schema(json_t *m)
{
    json_t *f0 = json_array_get(json_object_get(json_object_get(m, "schema"), "fields"), 0);
    json_object_set_new(f0, "scale", json_real(41.0));
}
static void edit_drop_shard(json_t *m) { json_array_remove(json_object_get(m, "shards"), 1); }

static void test_manifest_mismatch(void)
{
    char d[4200];
    snprintf(d, sizeof d, "%s/mismatch", dir);
    tnrec_dataset_options opt = { .max_shard_records = 5 };
    CHECK_OK(build(d, 10, &opt, 0, NULL));
    tnrec_dataset *ds = NULL;
    CHECK_OK(tnrec_dataset_open(&ds, d));
    tnrec_dataset_close(ds);
    expect_rejected(d, edit_records, TNREC_ECORRUPT, "disagrees with shard '");
    expect_rejected(d, edit_records, TNREC_ECORRUPT, "shard-00000.tnr");
    expect_rejected(d, edit_checksum, TNREC_ECORRUPT, "index checksum");
    expect_rejected(d, edit_file, TNREC_ENOTFOUND, "shard-00099.tnr");
    expect_rejected(d, edit_escape, TNREC_ECORRUPT, "malformed");
    expect_rejected(d, edit_total, TNREC_ECORRUPT, "\"records\"");
    expect_rejected(d, edit_counts, TNREC_ECORRUPT, "class_counts");
    expect_rejected(d, edit_version, TNREC_EFORMAT, "upgrade tnrec");
    expect_rejected(d, edit_format, TNREC_EFORMAT, "manifest.json");
    expect_rejected(d, edit_schema, TNREC_ESCHEMA, "disagrees with shard");
    expect_rejected(d, edit_drop_shard, TNREC_ECORRUPT, "\"records\"");
    /* A shard deleted from disk. */
    char p[4300], q[4300];
    snprintf(p, sizeof p, "%s/shard-00001.tnr", d);
    snprintf(q, sizeof q, "%s/moved.bin", d);
    CHECK(rename(p, q) == 0);
    CHECK(tnrec_dataset_open(&ds, d) == TNREC_ENOTFOUND && strstr(tnrec_error_last(), "shard-00001.tnr"));
    CHECK(rename(q, p) == 0);
    /* Not JSON at all. */
    snprintf(p, sizeof p, "%s/manifest.json", d);
    json_t *orig = load_manifest(d);
    CHECK(fx_write_all(p, "{\"format\": ", 11) == 0);
    CHECK(tnrec_dataset_open(&ds, d) == TNREC_ECORRUPT && strstr(tnrec_error_last(), "manifest.json"));
    CHECK(save_manifest(d, orig) == 0);
    json_decref(orig);
    CHECK_OK(tnrec_dataset_open(&ds, d));
    tnrec_dataset_close(ds);
    /* No manifest: the build did not finish. */
    CHECK(unlink(p) == 0);
    CHECK(tnrec_dataset_open(&ds, d) == TNREC_ENOTFOUND && strstr(tnrec_error_last(), "hint:"));
}

static void test_abort_and_failure(void)
{
    char d[4200], p[4300];
    snprintf(d, sizeof d, "%s/aborted", dir);
    /* A finished dataset, then a rebuild into the same directory that is aborted. */
    tnrec_dataset_options opt = { .max_shard_records = 2 };
    CHECK_OK(build(d, 3, &opt, 0, NULL));
    snprintf(p, sizeof p, "%s/manifest.json", d);
    CHECK(exists(p));
    tnrec_schema schema;
    fx_schema(&schema, TNREC_ENC_FLOAT16, 1);
    tnrec_encoder *enc = NULL;
    tnrec_dataset_writer *w = NULL;
    tnrec_blob blob = { 0 };
    fx_record r;
    fx_fill(&r, 0);
    CHECK_OK(tnrec_encoder_create(&enc, &schema, 1));
    CHECK_OK(tnrec_encoder_encode(enc, r.values, &blob));
    opt.prefix = "again";
    CHECK_OK(tnrec_dataset_writer_open(&w, d, &schema, &opt));
    CHECK(!exists(p)); /* the old manifest no longer vouches for the directory */
    for (int i = 0; i < 5; i++)
        CHECK_OK(tnrec_dataset_writer_append(w, &blob, &r.meta));
    snprintf(p, sizeof p, "%s/again-00000.tnr", d);
    CHECK(exists(p));
    tnrec_dataset_writer_abort(w);
    CHECK(!exists(p));
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q -e again -e '\\.tmp\\.'", d);
    CHECK(system(cmd) != 0);
    /* Bad build parameters: close fails and removes what it wrote. */
    CHECK_OK(tnrec_dataset_writer_open(&w, d, &schema, &opt));
    CHECK_OK(tnrec_dataset_writer_append(w, &blob, &r.meta));
    CHECK(tnrec_dataset_writer_close(w, "[1, 2]") == TNREC_EINVAL);
    CHECK(!exists(p));
    snprintf(p, sizeof p, "%s/manifest.json", d);
    CHECK(!exists(p));
    /* keep_closed_shards (a resumable build): abort and a failed close keep
     * the closed shards and remove only the one being written. */
    tnrec_dataset_options keep = { .max_shard_records = 2, .prefix = "kept", .keep_closed_shards = 1 };
    char k0[4300], k1[4300], k2[4300];
    snprintf(k0, sizeof k0, "%s/kept-00000.tnr", d);
    snprintf(k1, sizeof k1, "%s/kept-00001.tnr", d);
    snprintf(k2, sizeof k2, "%s/kept-00002.tnr", d);
    CHECK_OK(tnrec_dataset_writer_open(&w, d, &schema, &keep));
    for (int i = 0; i < 5; i++)
        CHECK_OK(tnrec_dataset_writer_append(w, &blob, &r.meta));
    tnrec_dataset_writer_abort(w);
    CHECK(exists(k0) && exists(k1) && !exists(k2));
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q -e '\\.tmp\\.' -e manifest.json", d);
    CHECK(system(cmd) != 0);
    CHECK(unlink(k0) == 0 && unlink(k1) == 0);
    CHECK_OK(tnrec_dataset_writer_open(&w, d, &schema, &keep));
    for (int i = 0; i < 3; i++)
        CHECK_OK(tnrec_dataset_writer_append(w, &blob, &r.meta));
    CHECK(tnrec_dataset_writer_close(w, "[1, 2]") == TNREC_EINVAL);
    CHECK(exists(k0) && exists(k1) && !exists(k2) && !exists(p));
    CHECK(unlink(k0) == 0 && unlink(k1) == 0);
    /* Bad options. */
    opt.prefix = "a/b";
    CHECK(tnrec_dataset_writer_open(&w, d, &schema, &opt) == TNREC_EINVAL);
    snprintf(p, sizeof p, "/proc/tnrec_dataset_test");
    CHECK(tnrec_dataset_writer_open(&w, p, &schema, NULL) == TNREC_EIO);
    /* An empty dataset is valid. */
    snprintf(d, sizeof d, "%s/empty", dir);
    CHECK_OK(build(d, 0, NULL, 0, NULL));
    tnrec_dataset *ds = NULL;
    CHECK_OK(tnrec_dataset_open(&ds, d));
    CHECK(ds && tnrec_dataset_count(ds) == 0 && tnrec_dataset_shard_count(ds) == 0);
    CHECK(ds && tnrec_dataset_class_weight(ds, 0) == 0.0);
    tnrec_dataset_close(ds);
    tnrec_encoder_free(enc);
    tnrec_blob_free(&blob);
}

static int same_file(const char *a, const char *b)
{
    FILE *x = fopen(a, "rb"), *y = fopen(b, "rb");
    int same = x && y;
    while (same) {
        int cx = getc(x), cy = getc(y);
        same = cx == cy;
        if (cx == EOF)
            break;
    }
    if (x)
        fclose(x);
    if (y)
        fclose(y);
    return same;
}

/* A writer reopened on an interrupted dataset adopts its finished shards
 * untouched and yields the same files as one uninterrupted writer. */
static void test_adopt(void)
{
    char d[4200], ref[4200], p[4300], q[4300];
    snprintf(d, sizeof d, "%s/adopt", dir);
    snprintf(ref, sizeof ref, "%s/adopt_ref", dir);
    tnrec_dataset_options opt = { .max_shard_records = 2 };
    CHECK_OK(build(ref, 7, &opt, 0, NULL));
    CHECK_OK(build(d, 5, &opt, 0, NULL)); /* shards 0 and 1 full, 2 partial */
    snprintf(p, sizeof p, "%s/shard-00000.tnr", d);
    struct stat before, after;
    CHECK(stat(p, &before) == 0);

    tnrec_schema schema, other;
    fx_schema(&schema, TNREC_ENC_FLOAT16, 1);
    fx_schema(&other, TNREC_ENC_UINT8, 1);
    tnrec_encoder *enc = NULL;
    tnrec_dataset_writer *w = NULL;
    tnrec_blob blob = { 0 };
    fx_record r;
    tnrec_class_counts counts;
    memset(&counts, 0, sizeof counts);
    uint64_t n = 99;
    CHECK_OK(tnrec_encoder_create(&enc, &schema, 3));
    /* another schema is refused, naming the shard */
    CHECK_OK(tnrec_dataset_writer_open(&w, d, &other, &opt));
    CHECK(tnrec_dataset_writer_adopt(w, &n, NULL) == TNREC_EINVAL && n == 0);
    CHECK(strstr(tnrec_error_last(), "shard-00000.tnr") != NULL);
    tnrec_dataset_writer_abort(w);
    CHECK(exists(p)); /* a failed adopt removes nothing */

    CHECK_OK(tnrec_dataset_writer_open(&w, d, &schema, &opt));
    CHECK_OK(tnrec_dataset_writer_adopt(w, &n, &counts));
    CHECK(n == 2);
    CHECK_OK(tnrec_dataset_writer_adopt(w, &n, &counts));
    CHECK(n == 2 && counts.label[0] + counts.label[1] == 4);
    for (uint64_t i = 4; i < 7; i++) {
        fx_fill(&r, i);
        CHECK_OK(tnrec_encoder_encode(enc, r.values, &blob));
        CHECK_OK(tnrec_dataset_writer_append(w, &blob, &r.meta));
    }
    CHECK(tnrec_dataset_writer_adopt(w, &n, NULL) == TNREC_EINVAL); /* a shard is open */
    CHECK_OK(tnrec_dataset_writer_close(w, NULL));
    CHECK(stat(p, &after) == 0);
    CHECK(before.st_ino == after.st_ino && before.st_mtim.tv_sec == after.st_mtim.tv_sec &&
          before.st_mtim.tv_nsec == after.st_mtim.tv_nsec);
    static const char *files[] = { "shard-00000.tnr", "shard-00001.tnr", "shard-00002.tnr", "shard-00003.tnr",
                                   "manifest.json" };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", d, files[i]);
        snprintf(q, sizeof q, "%s/%s", ref, files[i]);
        CHECK(same_file(p, q));
    }

    /* adopting a shard that is not there fails; an aborted writer keeps
     * what it adopted */
    CHECK_OK(tnrec_dataset_writer_open(&w, d, &schema, &opt));
    CHECK_OK(tnrec_dataset_writer_adopt(w, NULL, NULL));
    snprintf(p, sizeof p, "%s/shard-00001.tnr", d);
    CHECK(unlink(p) == 0);
    CHECK(tnrec_dataset_writer_adopt(w, &n, NULL) != TNREC_OK && n == 0);
    tnrec_dataset_writer_abort(w);
    snprintf(p, sizeof p, "%s/shard-00000.tnr", d);
    CHECK(exists(p));
    tnrec_encoder_free(enc);
    tnrec_blob_free(&blob);
}

/* Loads and checks the DBZ mask of every record of ds. */
static tnrec_err read_every_record(const tnrec_dataset *ds)
{
    tnrec_decoder *dec = NULL;
    tnrec_err e = tnrec_decoder_create(&dec);
    for (uint64_t i = 0; !e && i < tnrec_dataset_count(ds); i++) {
        size_t s;
        uint64_t local;
        uint8_t mask[60];
        fx_record r;
        fx_fill(&r, i);
        e = tnrec_dataset_locate(ds, i, &s, &local);
        if (!e)
            e = tnrec_decoder_load(dec, tnrec_dataset_shard(ds, s), local);
        if (!e)
            e = tnrec_decoder_field(dec, 1, TNREC_DTYPE_U8, mask, sizeof mask);
        if (!e && memcmp(mask, r.mask, sizeof mask) != 0)
            e = TNREC_EINTERNAL;
    }
    tnrec_decoder_free(dec);
    return e;
}

/* 60 shards under a limit of 40 descriptors: the dataset opens (shards past
 * the budget reopen their file per read), every record reads back, and a
 * shard replaced after the open is refused rather than read. */
static void test_more_shards_than_descriptors(void)
{
    char d[4200], a[4400], b[4400];
    snprintf(d, sizeof d, "%s/many", dir);
    tnrec_dataset_options opt = { .max_shard_records = 1 };
    CHECK_OK(build(d, 60, &opt, 0, NULL));
    struct rlimit old_lim, lim;
    CHECK(getrlimit(RLIMIT_NOFILE, &old_lim) == 0);
    lim = old_lim;
    lim.rlim_cur = 40;
    CHECK(setrlimit(RLIMIT_NOFILE, &lim) == 0);
    tnrec_dataset *ds = NULL;
    CHECK_OK(tnrec_dataset_open(&ds, d));
    if (ds) {
        CHECK(tnrec_dataset_shard_count(ds) == 60);
        CHECK_OK(read_every_record(ds));
        /* The last shard is past the budget; swap another shard's file in. */
        snprintf(a, sizeof a, "%s/shard-00058.tnr", d);
        snprintf(b, sizeof b, "%s/shard-00059.tnr", d);
        CHECK(rename(a, b) == 0);
        tnrec_decoder *dec = NULL;
        CHECK_OK(tnrec_decoder_create(&dec));
        CHECK(tnrec_decoder_load(dec, tnrec_dataset_shard(ds, 59), 0) == TNREC_ECORRUPT);
        CHECK(strstr(tnrec_error_last(), "replaced") != NULL);
        tnrec_decoder_free(dec);
        tnrec_dataset_close(ds);
    }
    CHECK(setrlimit(RLIMIT_NOFILE, &old_lim) == 0);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s", tnrec_test_dir());
    test_rollover_by_count();
    test_rollover_by_size();
    test_manifest_mismatch();
    test_abort_and_failure();
    test_adopt();
    test_more_shards_than_descriptors();
    return tnrec_test_result("test_dataset");
}
