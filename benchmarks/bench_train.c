/* benchmarks/bench_train.c: training and inference samples/s of a model on
 * random inputs (no data loading), on the CPU path.
 *
 * usage: bench_train [--model seed3d] [--batch 8] [--steps 3] [--frames 4]
 *                    [--height 120] [--width 240] [--channels 12]
 *                    [--precision fp32|bf16] [--train 1|0]
 * --precision bf16: bfloat16 products in the convolutions of the training
 * step (tnrec_net_set_train_precision) and of inference, where the CPU has
 * avx512_bf16; "precision" in the output is the one in effect. --train 0
 * times inference only.
 * Prints one JSON object: model, batch, conv implementation, threads,
 * median seconds per training step and per inference batch, samples/s,
 * and the median CPU seconds (all threads) of each: on a machine shared
 * with other work, CPU time moves less than wall time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "tnrec/tnrec.h"

/* CPU seconds of this process, all threads. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    const char *model = "seed3d";
    int batch = 8, steps = 3, train = 1;
    const char *precision = "fp32";
    tnrec_input_shape in = { 4, 120, 240, 12 };
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--frames")) in.frames = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--height")) in.height = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--width")) in.width = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--channels")) in.channels = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--precision")) precision = argv[i + 1];
        else if (!strcmp(argv[i], "--train")) train = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (batch < 1 || steps < 1 || steps > 1000) {
        fprintf(stderr, "bad --batch or --steps\n");
        return 2;
    }
    tnrec_model *m = NULL;
    tnrec_net *net = NULL;
    tnrec_optim *opt = NULL;
    tnrec_optim_config oc;
    tnrec_optim_config_default(&oc, TNREC_OPT_ADAM);
    int bf16 = 0;
    if (tnrec_model_create(&m, model, &in, 1) || tnrec_net_create(&net, m, batch) || tnrec_optim_create(&opt, &oc, m) ||
        (train ? tnrec_net_set_train_precision(net, precision, &bf16) : tnrec_net_set_precision(net, precision, &bf16))) {
        fprintf(stderr, "bench_train: %s\n", tnrec_error_last());
        return 1;
    }
    size_t nx = (size_t)batch * in.frames * in.height * in.width * in.channels;
    float *x = malloc(nx * sizeof *x), *label = malloc((size_t)batch * 4), *weight = malloc((size_t)batch * 4);
    float *logits = malloc((size_t)batch * 4);
    uint64_t s = 1;
    for (size_t i = 0; i < nx; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(s >> 11) * 0x1.0p-53 * 2 - 1);
    }
    for (int i = 0; i < batch; i++) {
        label[i] = (float)(i % 2);
        weight[i] = 1.0f;
    }
    double *tt = malloc((size_t)(steps + 1) * sizeof *tt), *ti = malloc((size_t)(steps + 1) * sizeof *ti);
    double *ct = malloc((size_t)(steps + 1) * sizeof *ct), *ci = malloc((size_t)(steps + 1) * sizeof *ci);
    for (int k = 0; k <= steps; k++) { /* step 0 warms up */
        double t0 = bench_now(), c0 = cpu_now(), loss;
        if (train && (tnrec_net_train_step(net, x, label, weight, batch, (uint64_t)k, logits, &loss) ||
                      tnrec_optim_step(opt, m, 1e-4))) {
            fprintf(stderr, "bench_train: %s\n", tnrec_error_last());
            return 1;
        }
        tt[k] = bench_now() - t0;
        ct[k] = cpu_now() - c0;
        t0 = bench_now();
        c0 = cpu_now();
        if (tnrec_net_predict(net, x, batch, logits)) {
            fprintf(stderr, "bench_train: %s\n", tnrec_error_last());
            return 1;
        }
        ti[k] = bench_now() - t0;
        ci[k] = cpu_now() - c0;
    }
    qsort(tt + 1, (size_t)steps, sizeof *tt, bench_cmp_double);
    qsort(ti + 1, (size_t)steps, sizeof *ti, bench_cmp_double);
    double mt = tt[1 + steps / 2], mi = ti[1 + steps / 2];
    double mct = bench_median(ct + 1, steps), mci = bench_median(ci + 1, steps);
    const char *thr = getenv("OMP_NUM_THREADS");
    printf("{\"impl\": \"tnrec\", \"model\": \"%s\", \"batch\": %d, \"steps\": %d, \"conv\": \"%s\", \"precision\": \"%s\", \"threads\": \"%s\", ",
           model, batch, steps, "direct", bf16 ? "bf16" : "fp32", thr ? thr : "default");
    if (train)
        printf("\"train_step_s\": %.4f, \"train_samples_per_s\": %.3f, \"train_cpu_s\": %.4f, ", mt, batch / mt, mct);
    printf("\"infer_batch_s\": %.4f, \"infer_samples_per_s\": %.3f, \"infer_cpu_s\": %.4f}\n", mi, batch / mi, mci);
    free(x); free(label); free(weight); free(logits); free(tt); free(ti); free(ct); free(ci);
    tnrec_optim_free(opt);
    tnrec_net_free(net);
    tnrec_model_free(m);
    return 0;
}
