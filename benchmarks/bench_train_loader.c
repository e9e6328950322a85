/* benchmarks/bench_train_loader.c: decode rate of the training loader alone
 * (shards -> ready NDHWC float32 batches), by thread count.
 *
 * usage: bench_train_loader DATASET [--batch 16] [--epochs 2] [--threads 1,2]
 * Prints one JSON object per thread count: samples/s in all and per thread,
 * and samples per CPU-second (the process's user + system time, every
 * thread; medians over the epochs; the first epoch also warms the page
 * cache and is not counted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

/* CPU seconds of the whole process (all threads). */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#include "tnrec/tnrec.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DATASET [--batch 16] [--epochs 2] [--threads 1,2]\n", argv[0]);
        return 2;
    }
    int batch = 16, epochs = 2;
    char threads[256] = "1,2";
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--epochs")) epochs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) snprintf(threads, sizeof threads, "%s", argv[i + 1]);
    }
    if (batch < 1 || epochs < 1 || epochs > 100) {
        fprintf(stderr, "bad --batch or --epochs\n");
        return 2;
    }
    tnrec_dataset *ds = NULL;
    if (tnrec_dataset_open(&ds, argv[1])) {
        fprintf(stderr, "bench_train_loader: %s\n", tnrec_error_last());
        return 1;
    }
    char *save = NULL;
    for (char *t = strtok_r(threads, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int nt = atoi(t);
        tnrec_loader_config lc = { .batch = batch, .threads = nt, .prefetch = 4, .shuffle = 1, .seed = 1, .frames = 4 };
        tnrec_loader *l = NULL;
        if (nt < 1 || tnrec_loader_create(&l, ds, &lc)) {
            fprintf(stderr, "bench_train_loader: %s\n", tnrec_error_last());
            return 1;
        }
        double rates[101], cpu_rates[101];
        for (int e = 0; e <= epochs; e++) {
            double t0 = bench_now(), c0 = cpu_now();
            uint64_t n = 0;
            const tnrec_batch *b = NULL;
            if (tnrec_loader_start(l, (uint64_t)e, 0))
                return 1;
            while (tnrec_loader_next(l, &b) == TNREC_OK && b)
                n += (uint64_t)b->n;
            rates[e] = (double)n / (bench_now() - t0);
            cpu_rates[e] = (double)n / (cpu_now() - c0);
        }
        double r = bench_median(rates + 1, epochs), rc = bench_median(cpu_rates + 1, epochs);
        tnrec_input_shape s = tnrec_loader_shape(l);
        printf("{\"threads\": %d, \"batch\": %d, \"shape\": [%d, %d, %d, %d], \"samples_per_s\": %.1f, "
               "\"samples_per_s_per_thread\": %.1f, \"samples_per_cpu_s\": %.1f, \"samples\": %llu}\n",
               nt, batch, s.frames, s.height, s.width, s.channels, r, r / nt, rc,
               (unsigned long long)tnrec_dataset_count(ds));
        tnrec_loader_free(l);
    }
    tnrec_dataset_close(ds);
    return 0;
}
