/* tests/fuzz/fuzz_manifest.c: libFuzzer target for the dataset manifest
 * reader. Once per process it writes a small dataset (fz_write_dataset)
 * into a temporary directory; each input then becomes that directory's
 * manifest.json and is opened, so parsing and the cross-checks against
 * real shards are both exercised. Anything but a clean error is a bug. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz_common.h"

static char fz_dir[256];
static char fz_manifest[300];

static void cleanup(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir);
    if (fz_dir[0] && system(cmd) != 0)
        fprintf(stderr, "fuzz_manifest: could not remove %s\n", fz_dir);
}

static int setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(fz_dir, sizeof fz_dir, "%s/tnrec_fuzz_manifest_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(fz_dir) || fz_write_dataset(fz_dir) != TNREC_OK) {
        fprintf(stderr, "fuzz_manifest: cannot set up %s: %s\n", fz_dir, tnrec_error_last());
        abort();
    }
    snprintf(fz_manifest, sizeof fz_manifest, "%s/manifest.json", fz_dir);
    atexit(cleanup);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready)
        ready = setup();
    FILE *f = fopen(fz_manifest, "wb");
    if (!f)
        abort();
    if (fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    tnrec_dataset *ds = NULL;
    if (tnrec_dataset_open(&ds, fz_dir) == TNREC_OK) {
        uint64_t n = tnrec_dataset_count(ds);
        for (uint64_t i = 0; i < n; i++) {
            size_t s;
            uint64_t local;
            if (tnrec_dataset_locate(ds, i, &s, &local) != TNREC_OK || !tnrec_dataset_shard(ds, s))
                abort();
        }
        for (size_t i = 0; i < tnrec_dataset_skipped_count(ds); i++)
            if (!tnrec_dataset_skipped(ds, i)->input)
                abort();
        (void)tnrec_dataset_build_params(ds);
        (void)tnrec_dataset_class_weight(ds, 1);
    }
    tnrec_dataset_close(ds);
    return 0;
}
