/* tests/records/test_inject.c: failure injection for the writers and
 * readers. Every allocation in the process (library, zstd, jansson, libc)
 * is made to fail in turn, and then every file size limit in turn (as a
 * full disk would); each run must end in a clean error, leave no manifest,
 * no shard and no temporary file behind, and never crash. Reading under
 * allocation failure must fail cleanly or return the right data. Also
 * counts allocations to show that warm encoders and decoders make none.
 * Replaces malloc, so that part is skipped under AddressSanitizer. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "rec_fixture.h"
#include "tnrec_test.h"

#if defined(__SANITIZE_ADDRESS__)
#define INJECT_SKIP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define INJECT_SKIP 1
#endif
#endif

#ifndef INJECT_SKIP
/* glibc's own allocator, under the names it exports for this purpose. */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);

static long alloc_budget = -1; /* -1: unlimited; otherwise allocations left */
static long alloc_failed, alloc_count;

static int take(void)
{
    alloc_count++;
    if (alloc_budget < 0)
        return 1;
    if (alloc_budget == 0) {
        alloc_failed++;
        errno = ENOMEM;
        return 0;
    }
    alloc_budget--;
    return 1;
}

void *malloc(size_t n) { return take() ? __libc_malloc(n) : NULL; }
void *calloc(size_t n, size_t m) { return take() ? __libc_calloc(n, m) : NULL; }
void *realloc(void *p, size_t n) { return take() ? __libc_realloc(p, n) : NULL; }
#endif

static char dir[4096];

/* Files left in d (names not starting with '.'). */
static int count_files(const char *d)
{
    DIR *dh = opendir(d);
    if (!dh)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dh)) != NULL)
        n += e->d_name[0] != '.';
    closedir(dh);
    return n;
}

static tnrec_err build(const char *d, uint64_t n)
{
    tnrec_schema schema;
    fx_schema(&schema, TNREC_ENC_UINT8, 1);
    tnrec_dataset_options opt = { .max_shard_records = 2 };
    tnrec_encoder *enc = NULL;
    tnrec_dataset_writer *w = NULL;
    tnrec_blob blob = { 0 };
    fx_record r;
    tnrec_err e = tnrec_encoder_create(&enc, &schema, 1);
    if (!e)
        e = tnrec_dataset_writer_open(&w, d, &schema, &opt);
    for (uint64_t i = 0; !e && i < n; i++) {
        fx_fill(&r, i);
        e = tnrec_encoder_encode(enc, r.values, &blob);
        if (!e)
            e = tnrec_dataset_writer_append(w, &blob, &r.meta);
    }
    if (!e)
        e = tnrec_dataset_writer_skip(w, "x.nc", "unreadable");
    if (!e) {
        e = tnrec_dataset_writer_close(w, "{\"k\": [1, 2, 3]}");
        w = NULL;
    }
    tnrec_dataset_writer_abort(w);
    tnrec_encoder_free(enc);
    tnrec_blob_free(&blob);
    return e;
}

/* Reads the whole dataset; 0 if the data is right, else the error. */
static tnrec_err read_all(const char *d)
{
    tnrec_dataset *ds = NULL;
    tnrec_decoder *dec = NULL;
    tnrec_err e = tnrec_dataset_open(&ds, d);
    if (!e)
        e = tnrec_decoder_create(&dec);
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
    if (!e && tnrec_dataset_count(ds) != 5)
        e = TNREC_EINTERNAL;
    tnrec_decoder_free(dec);
    tnrec_dataset_close(ds);
    return e;
}

#ifndef INJECT_SKIP
static void test_alloc_failures(void)
{
    char d[4200];
    snprintf(d, sizeof d, "%s/alloc", dir);
    int writes_ok = 0, reads_ok = 0;
    for (long budget = 0; budget < 100000 && !writes_ok; budget++) {
        alloc_failed = 0;
        alloc_budget = budget;
        tnrec_err e = build(d, 5);
        alloc_budget = -1;
        if (e == TNREC_OK) {
            writes_ok = alloc_failed == 0;
            continue;
        }
        if (e != TNREC_ENOMEM && e != TNREC_EIO)
            fprintf(stderr, "allocation %ld failing gave %s: %s\n", budget, tnrec_err_name(e), tnrec_error_last());
        CHECK(e == TNREC_ENOMEM || e == TNREC_EIO);
        if (count_files(d) != 0)
            fprintf(stderr, "allocation %ld failing left files behind\n", budget);
        CHECK(count_files(d) == 0);
    }
    CHECK(writes_ok);
    CHECK_OK(read_all(d));
    for (long budget = 0; budget < 100000 && !reads_ok; budget++) {
        alloc_failed = 0;
        alloc_budget = budget;
        tnrec_err e = read_all(d);
        alloc_budget = -1;
        if (e == TNREC_OK)
            reads_ok = alloc_failed == 0;
        else
        {
            if (e != TNREC_ENOMEM && e != TNREC_EIO)
                fprintf(stderr, "allocation %ld failing while reading gave %s: %s\n", budget, tnrec_err_name(e),
                        tnrec_error_last());
            CHECK(e == TNREC_ENOMEM || e == TNREC_EIO);
        }
    }
    CHECK(reads_ok);
}
#endif

#ifndef INJECT_SKIP
/* A warm encoder and a warm decoder allocate nothing per record. */
static void test_no_allocation_when_warm(void)
{
    char d[4200];
    snprintf(d, sizeof d, "%s/warm", dir);
    tnrec_schema schema;
    fx_schema(&schema, TNREC_ENC_FLOAT16, 1);
    tnrec_encoder *enc = NULL;
    tnrec_blob blob = { 0 };
    fx_record r[4];
    CHECK_OK(tnrec_encoder_create(&enc, &schema, 3));
    for (int i = 0; i < 4; i++) {
        fx_fill(&r[i], (uint64_t)i);
        CHECK_OK(tnrec_encoder_encode(enc, r[i].values, &blob));
    }
    long before = alloc_count;
    for (int k = 0; k < 40; k++)
        CHECK_OK(tnrec_encoder_encode(enc, r[k % 4].values, &blob));
    CHECK(alloc_count == before);
    tnrec_encoder_free(enc);
    tnrec_blob_free(&blob);

    CHECK_OK(build(d, 5));
    tnrec_dataset *ds = NULL;
    tnrec_decoder *dec = NULL;
    before = alloc_count;
    CHECK_OK(tnrec_dataset_open(&ds, d));
    CHECK(alloc_count > before); /* the counter does see the library's allocations */
    CHECK_OK(tnrec_decoder_create(&dec));
    if (!ds || !dec)
        return;
    float out[60];
    uint8_t mask[60];
    for (int pass = 0; pass < 2; pass++) {
        before = alloc_count;
        for (uint64_t i = 0; i < tnrec_dataset_count(ds); i++) {
            size_t s;
            uint64_t local;
            CHECK_OK(tnrec_dataset_locate(ds, i, &s, &local));
            CHECK_OK(tnrec_decoder_load(dec, tnrec_dataset_shard(ds, s), local));
            CHECK_OK(tnrec_decoder_field_mask(dec, 0, out, sizeof out, mask));
            CHECK_OK(tnrec_decoder_field(dec, 1, TNREC_DTYPE_U8, mask, sizeof mask));
        }
        if (pass == 1) /* the first pass warmed the buffers */
            CHECK(alloc_count == before);
    }
    tnrec_decoder_free(dec);
    tnrec_dataset_close(ds);
}
#endif

static void test_size_limits(void)
{
    char d[4200];
    snprintf(d, sizeof d, "%s/fsize", dir);
    struct rlimit old_lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old_lim) == 0);
    signal(SIGXFSZ, SIG_IGN);
    int done = 0;
    for (rlim_t limit = 0; limit < 100000 && !done; limit += 97) {
        struct rlimit lim = old_lim;
        lim.rlim_cur = limit;
        CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
        tnrec_err e = build(d, 5);
        CHECK(setrlimit(RLIMIT_FSIZE, &old_lim) == 0);
        if (e == TNREC_OK) {
            done = 1;
            CHECK_OK(read_all(d));
            continue;
        }
        CHECK(e == TNREC_EIO);
        if (count_files(d) != 0)
            fprintf(stderr, "file size limit %lu left files behind\n", (unsigned long)limit);
        CHECK(count_files(d) == 0);
    }
    CHECK(done);
}

/* `test_inject limits`: the file size limits only (also under ASan; ctest's
 * test_inject_limits). `test_inject`: the allocation failures and the warm
 * counts, SKIPPED (77) under ASan, which owns malloc. */
int main(int argc, char **argv)
{
    snprintf(dir, sizeof dir, "%s", tnrec_test_dir());
    if (argc > 1 && strcmp(argv[1], "limits") == 0) {
        test_size_limits();
        return tnrec_test_result("test_inject_limits");
    }
#ifdef INJECT_SKIP
    printf("test_inject: SKIPPED: allocation failure injection replaces malloc, which AddressSanitizer owns "
           "(test_inject_limits runs the file size limits)\n");
    return 77;
#else
    test_alloc_failures();
    test_no_allocation_when_warm();
    return tnrec_test_result("test_inject");
#endif
}
