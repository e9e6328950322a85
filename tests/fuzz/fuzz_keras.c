/* tests/fuzz/fuzz_keras.c: libFuzzer target for `tnrec import keras`
 * (import/keras.c): each input becomes a .keras file in a temporary
 * directory and is imported into a run directory there. The zip, the
 * config.json walk and the weights file are all outside bytes; anything
 * but a clean import or a clean error is a bug, and a refused input must
 * leave no run directory. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"

static char fz_model[300], fz_run[300];

static int setup(void)
{
    const char *dir = fz_scratch_make("keras");
    snprintf(fz_model, sizeof fz_model, "%s/model.keras", dir);
    snprintf(fz_run, sizeof fz_run, "%s/run", dir);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready)
        ready = setup();
    fz_write_input(fz_model, data, size);
    tnrec_import_summary sum;
    tnrec_err err = tnrec_import_keras(fz_model, fz_run, &sum);
    struct stat sb;
    if (err) {
        if (stat(fz_run, &sb) == 0) /* a refusal leaves nothing */
            abort();
        return 0;
    }
    tnrec_model *m = NULL;
    if (tnrec_checkpoint_load_model(&m, fz_run) != TNREC_OK)
        abort();
    tnrec_model_free(m);
    char p[400];
    snprintf(p, sizeof p, "%s/best.tnck", fz_run);
    unlink(p);
    snprintf(p, sizeof p, "%s/last.tnck", fz_run);
    unlink(p);
    rmdir(fz_run);
    return 0;
}
