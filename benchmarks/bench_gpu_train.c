/* benchmarks/bench_gpu_train.c: training and inference samples/s of a
 * model on one GPU (no data loading: a fixed random batch is copied in
 * from host memory every step, as the trainer does).
 *
 * usage: bench_gpu_train [--model seed3d] [--batch 32,64,128] [--steps 20]
 *                        [--warmup 3] [--precision fp16] [--deterministic]
 *                        [--frames 4] [--height 120] [--width 240] [--channels 12]
 * Prints one JSON object per batch size: device, model, precision, batch,
 * median seconds per training step (forward, backward, Adam) and per
 * inference batch, samples/s, and the time of one 171,666-sample epoch at
 * that rate. Exit 77 without a CUDA device (nothing measured). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "tnrec/tnrec.h"

static int run_batch(const char *model, tnrec_input_shape in, int batch, int steps, int warmup,
                     const tnrec_gpu_options *o)
{
    tnrec_model *m = NULL;
    tnrec_gpu_net *g = NULL;
    tnrec_optim *opt = NULL;
    tnrec_optim_config oc;
    tnrec_optim_config_default(&oc, TNREC_OPT_ADAM);
    oc.clipvalue = 1.0;
    size_t elems = (size_t)in.frames * in.height * in.width * in.channels * batch;
    float *x = malloc(elems * sizeof *x), *label = malloc(batch * sizeof *label), *w = malloc(batch * sizeof *w);
    float *logits = malloc(batch * sizeof *logits);
    double *ts = malloc((size_t)steps * sizeof *ts), *ti = malloc((size_t)steps * sizeof *ti);
    int rc = 1;
    if (!x || !label || !w || !logits || !ts || !ti) {
        fprintf(stderr, "bench_gpu_train: out of memory\n");
        goto done;
    }
    uint64_t s = 12345;
    for (size_t i = 0; i < elems; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(s >> 11) * 0x1.0p-53 * 2 - 1);
    }
    for (int i = 0; i < batch; i++) {
        label[i] = (float)(i % 7 == 0);
        w[i] = label[i] > 0 ? 7.33f : 0.537f;
    }
    tnrec_err err = tnrec_model_create(&m, model, &in, 1);
    if (!err)
        err = tnrec_optim_create(&opt, &oc, m);
    if (!err)
        err = tnrec_gpu_net_create(&g, m, batch, o);
    for (int i = 0; i < warmup + steps && !err; i++) {
        double loss, t0 = bench_now();
        err = tnrec_gpu_net_train_step(g, x, label, w, batch, (uint64_t)i, logits, &loss);
        if (!err)
            err = tnrec_gpu_net_optim_step(g, opt, 5e-4, NULL);
        /* The step ends with the loss on the host, so the GPU is done. */
        if (i >= warmup)
            ts[i - warmup] = bench_now() - t0;
    }
    for (int i = 0; i < warmup + steps && !err; i++) {
        double t0 = bench_now();
        err = tnrec_gpu_net_predict(g, x, batch, logits);
        if (i >= warmup)
            ti[i - warmup] = bench_now() - t0;
    }
    if (err) {
        fprintf(stderr, "bench_gpu_train: batch %d: %s\n", batch, tnrec_error_last());
        goto done;
    }
    double st = bench_median(ts, steps), si = bench_median(ti, steps);
    printf("{\"device\": \"%s\", \"model\": \"%s\", \"precision\": \"%s\", \"batch\": %d, \"steps\": %d, "
           "\"train_step_s\": %.5f, \"train_samples_per_s\": %.1f, \"infer_batch_s\": %.5f, "
           "\"infer_samples_per_s\": %.1f, \"epoch_171666_s\": %.1f}\n",
           tnrec_gpu_net_describe(g), model, tnrec_precision_name(o->precision), batch, steps, st, batch / st, si,
           batch / si, 171666.0 / (batch / st));
    fflush(stdout);
    rc = 0;
done:
    tnrec_gpu_net_free(g);
    tnrec_optim_free(opt);
    tnrec_model_free(m);
    free(x); free(label); free(w); free(logits); free(ts); free(ti);
    return rc;
}

int main(int argc, char **argv)
{
    const char *model = "seed3d", *batches = "32,64,128", *prec = "fp16";
    int steps = 20, warmup = 3;
    tnrec_input_shape in = { 4, 120, 240, 12 };
    tnrec_gpu_options o;
    tnrec_gpu_options_default(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--deterministic")) { o.deterministic = 1; continue; }
        if (!v) { fprintf(stderr, "bench_gpu_train: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--batch")) batches = v;
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--precision")) prec = v;
        else if (!strcmp(a, "--frames")) in.frames = atoi(v);
        else if (!strcmp(a, "--height")) in.height = atoi(v);
        else if (!strcmp(a, "--width")) in.width = atoi(v);
        else if (!strcmp(a, "--channels")) in.channels = atoi(v);
        else { fprintf(stderr, "bench_gpu_train: unknown option %s\n", a); return 2; }
        i++;
    }
    if (steps < 1 || warmup < 0 || tnrec_precision_parse(&o.precision, prec)) {
        fprintf(stderr, "bench_gpu_train: bad --steps, --warmup or --precision (%s)\n", tnrec_error_last());
        return 2;
    }
    if (tnrec_gpu_check()) {
        fprintf(stderr, "bench_gpu_train: skipped: %s\n", tnrec_error_last());
        return 77;
    }
    int rc = 0;
    char *list = strdup(batches), *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
        rc |= run_batch(model, in, atoi(t), steps, warmup, &o);
    free(list);
    return rc;
}
