/* tests/fuzz/fuzz_manifest.c: libFuzzer target for the dataset manifest
 * reader. Once per process it writes a small dataset (fz_write_dataset)
 * into a temporary directory; each input then becomes that directory's
 * manifest.json and is opened, so parsing and the cross-checks against
 * real shards are both exercised. Anything but a clean error is a bug. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"

static char fz_manifest[300];

static int setup(void)
{
    const char *dir = fz_scratch_make("manifest");
    if (fz_write_dataset(dir) != TNREC_OK) {
        fprintf(stderr, "fuzz_manifest: cannot set up %s: %s\n", dir, tnrec_error_last());
        abort();
    }
    snprintf(fz_manifest, sizeof fz_manifest, "%s/manifest.json", dir);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready)
        ready = setup();
    fz_write_input(fz_manifest, data, size);
    tnrec_dataset *ds = NULL;
    if (tnrec_dataset_open(&ds, fz_scratch()) == TNREC_OK) {
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
