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

#include "tnrec/tnrec.h"

static char fz_dir[256];
static char fz_model[300], fz_run[300];

static void cleanup(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir);
    if (fz_dir[0] && system(cmd) != 0)
        fprintf(stderr, "fuzz_keras: could not remove %s\n", fz_dir);
}

static int setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(fz_dir, sizeof fz_dir, "%s/tnrec_fuzz_keras_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(fz_dir))
        abort();
    snprintf(fz_model, sizeof fz_model, "%s/model.keras", fz_dir);
    snprintf(fz_run, sizeof fz_run, "%s/run", fz_dir);
    atexit(cleanup);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready)
        ready = setup();
    FILE *f = fopen(fz_model, "wb");
    if (!f)
        abort();
    if (fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
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
