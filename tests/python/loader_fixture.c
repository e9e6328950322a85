/* tests/python/loader_fixture.c: runs the C loader with tnrec train's
 * settings and writes every batch of one epoch as .npy files, so that the
 * Python package's batches() can be compared with it bit for bit.
 *
 * usage: loader_fixture DATASET OUTDIR BATCH SEED EPOCH THREADS FRAMES VARIABLES MASK
 * writes OUTDIR/NNNNN_{x,label,weight,category,index}.npy per batch, with
 * the balanced class weights tnrec train uses by default. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tnrec/tnrec.h"

static int fail(const char *what)
{
    fprintf(stderr, "loader_fixture: %s: %s\n", what, tnrec_error_last());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 10) {
        fprintf(stderr, "usage: %s DATASET OUTDIR BATCH SEED EPOCH THREADS FRAMES VARIABLES MASK\n", argv[0]);
        return 2;
    }
    tnrec_dataset *ds = NULL;
    if (tnrec_dataset_open(&ds, argv[1]))
        return fail("open");
    mkdir(argv[2], 0777);
    tnrec_loader_config lc = { .variables = argv[8], .frames = atoi(argv[7]), .mask = atoi(argv[9]),
                               .batch = atoi(argv[3]), .threads = atoi(argv[6]), .prefetch = 2, .shuffle = 1,
                               .seed = strtoull(argv[4], NULL, 10), .rank = 0, .world = 1,
                               .class_weight = { (float)tnrec_dataset_class_weight(ds, 0),
                                                 (float)tnrec_dataset_class_weight(ds, 1) } };
    tnrec_loader *l = NULL;
    if (tnrec_loader_create(&l, ds, &lc))
        return fail("loader");
    if (tnrec_loader_start(l, strtoull(argv[5], NULL, 10), 0))
        return fail("start");
    tnrec_input_shape s = tnrec_loader_shape(l);
    const tnrec_batch *b = NULL;
    char path[4096];
    for (;;) {
        if (tnrec_loader_next(l, &b))
            return fail("next");
        if (!b)
            break;
        uint32_t xs[5] = { (uint32_t)b->n, (uint32_t)s.frames, (uint32_t)s.height, (uint32_t)s.width,
                           (uint32_t)s.channels };
        uint32_t n1[1] = { (uint32_t)b->n };
        struct { const char *name; tnrec_dtype dt; uint32_t nd; const uint32_t *shape; const void *data; } out[] = {
            { "x", TNREC_DTYPE_F32, 5, xs, b->x },
            { "label", TNREC_DTYPE_F32, 1, n1, b->label },
            { "weight", TNREC_DTYPE_F32, 1, n1, b->weight },
            { "category", TNREC_DTYPE_I32, 1, n1, b->category },
            { "index", TNREC_DTYPE_U64, 1, n1, b->index },
        };
        for (size_t k = 0; k < sizeof out / sizeof out[0]; k++) {
            snprintf(path, sizeof path, "%s/%05llu_%s.npy", argv[2], (unsigned long long)b->step, out[k].name);
            if (tnrec_npy_write(path, out[k].dt, out[k].nd, out[k].shape, out[k].data))
                return fail("npy");
        }
    }
    tnrec_loader_free(l);
    tnrec_dataset_close(ds);
    return 0;
}
