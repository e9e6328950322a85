/* tests/train/test_gpu_net.c: the GPU path against the CPU path.
 *
 * Always (any machine): precision names, default options, the answer of
 * a build or machine without a GPU (a clear error, never a crash), and the
 * walk over the parameter tensors that the gradient comparison uses.
 * With a CUDA device: for the tiny and seed3d presets on a fixed batch,
 * the logits, the loss, every parameter tensor's gradient and the BN
 * moving statistics of one training step, and inference logits, against
 * the CPU path (train/network.c, itself checked against the double
 * reference); a few Adam steps follow the CPU loss curve; checkpoints
 * written on the GPU resume on the CPU and back; training runs with the
 * input pipeline (batch k+1 copied while step k runs, validation alike)
 * against the same runs with it off (TNREC_GPU_STAGE=0): bit-identical
 * weights, BN state and losses in deterministic float32, and in float16
 * within 1e-6 (expected 0); eval with --precision fp32/fp16/bf16 against
 * the CPU's eval of the same checkpoint; the TorNet baseline's layers
 * (CoordConv2D, 1x1 convolutions, 'same' pooling), which the GPU runs for
 * inference only, against the CPU's logits with per-chip range windows.
 * --deterministic may be unavailable with a cuDNN release (no
 * deterministic algorithm for a direction; docs/gpu.md): the checks that
 * need it are then not made, and the test ends SKIPPED (77) naming it.
 * Without a device the GPU part reports SKIPPED (exit 77), never passes;
 * the argument checks of eval's precision run everywhere.
 *
 * Tolerances (relative; tensors compared by L2 norm of the difference
 * over the norm of the CPU tensor, floored at 1e-3 of the whole
 * gradient's norm because conv biases ahead of batch norm have a zero
 * gradient up to rounding):
 *   fp32 (TF32 off): logits and loss 1e-4, gradients and BN state 2e-3,
 *                    five steps 1e-3, weights after them 5e-3;
 *   fp16:            logits and loss 2e-2, gradients 6e-2, steps 3e-2;
 *   bf16:            logits and loss 6e-2, gradients 2e-1, steps 1e-1.
 * Half precision can move a max-pooling choice, which reroutes a little
 * gradient; the looser bounds allow for that.
 * Eval on the GPU against eval on the CPU (per-sample probabilities, max
 * absolute difference; loss, absolute difference over 1 + the CPU loss):
 *   fp32 1e-4 and 1e-4, fp16 1e-2 and 2e-2, bf16 3e-2 and 6e-2. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tnrec_test.h"
#include "train_fixture.h"

typedef struct tol { double logits, grad, steps, weights; } tol;

static const tol TOL[3] = {
    { 1e-4, 2e-3, 1e-3, 5e-3 },  /* fp32 */
    { 2e-2, 6e-2, 3e-2, 1e-1 },  /* fp16 */
    { 6e-2, 2e-1, 1e-1, 2e-1 },  /* bf16 */
};

static void test_cpu_side(void)
{
    tnrec_precision p;
    CHECK_OK(tnrec_precision_parse(&p, "fp32"));
    CHECK(p == TNREC_PRECISION_FP32);
    CHECK_OK(tnrec_precision_parse(&p, "mixed"));
    CHECK(p == TNREC_PRECISION_FP16);
    CHECK_OK(tnrec_precision_parse(&p, "bf16"));
    CHECK(p == TNREC_PRECISION_BF16);
    CHECK(tnrec_precision_parse(&p, "fp8") == TNREC_EINVAL);
    CHECK(strstr(tnrec_error_last(), "fp8") && strstr(tnrec_error_last(), "hint:"));
    CHECK(tnrec_precision_parse(&p, NULL) == TNREC_EINVAL);
    CHECK(strcmp(tnrec_precision_name(TNREC_PRECISION_FP16), "fp16") == 0);
    tnrec_gpu_options o;
    tnrec_gpu_options_default(&o);
    CHECK(o.device == -1 && o.precision == TNREC_PRECISION_FP32 && !o.deterministic && o.loss_scale > 1);
    int count = tnrec_gpu_device_count();
    CHECK(count >= 0);
    if (count == 0) {
        /* No GPU (or no CUDA in this build): every entry point says so. */
        tnrec_err err = tnrec_gpu_check();
        CHECK(err == TNREC_EUNSUPPORTED || err == TNREC_ENOTFOUND);
        CHECK(strstr(tnrec_error_last(), "hint:") != NULL);
        if (!TNREC_HAVE_CUDA)
            CHECK(err == TNREC_EUNSUPPORTED && strstr(tnrec_error_last(), "cuDNN"));
        tnrec_input_shape in = { 2, 8, 8, 3 };
        tnrec_model *m = NULL;
        CHECK_OK(tnrec_model_create(&m, "c4,g,o", &in, 1));
        static char sentinel;
        tnrec_gpu_net *g = (tnrec_gpu_net *)(void *)&sentinel; /* must be reset to NULL */
        CHECK(m && tnrec_gpu_net_create(&g, m, 4, &o) != TNREC_OK && g == NULL);
        tnrec_gpu_net_free(NULL);
        /* Layers the GPU has no kernels for are refused by name even
         * here, where the module loads but finds no device. */
        tnrec_input_shape cin = { 1, 16, 16, 14 };
        tnrec_model *mc = NULL;
        CHECK_OK(tnrec_model_create(&mc, "tornet-cnn", &cin, 1));
        g = (tnrec_gpu_net *)(void *)&sentinel;
        CHECK(mc && tnrec_gpu_net_create(&g, mc, 2, &o) != TNREC_OK && g == NULL);
        if (TNREC_HAVE_CUDA && !strstr(tnrec_error_last(), "CUDA module"))
            CHECK(strstr(tnrec_error_last(), "layer 0 (CoordConv2D) has no GPU training implementation") &&
                  strstr(tnrec_error_last(), "--device cpu"));
        tnrec_model_free(mc);
        /* A training run asked for the GPU stops before touching data. */
        tnrec_train_config c;
        tnrec_train_config_default(&c);
        CHECK(strcmp(c.device, "cpu") == 0 && c.gpu == -1);
        c.device = "cuda";
        c.train_path = "/nonexistent/dataset";
        c.run_dir = "/nonexistent/run";
        CHECK(tnrec_train_run(&c, NULL, NULL) == err);
        c.device = "tpu";
        CHECK(tnrec_train_run(&c, NULL, NULL) == TNREC_EINVAL && strstr(tnrec_error_last(), "tpu"));
        tnrec_model_free(m);
    }
    /* eval's precision: checked before anything is read. */
    tnrec_metrics em;
    CHECK(tnrec_eval_run_precision(&em, "/nonexistent/run", "/nonexistent/data", NULL, 4, 1, "cpu", "fp16") ==
          TNREC_EINVAL);
    CHECK(strstr(tnrec_error_last(), "fp16") && strstr(tnrec_error_last(), "--device cuda"));
    CHECK(tnrec_eval_run_precision(&em, "/nonexistent/run", "/nonexistent/data", NULL, 4, 1, "cuda", "fp8") ==
          TNREC_EINVAL);
    CHECK(strstr(tnrec_error_last(), "fp8") != NULL);
    /* fp32 on the CPU is the CPU path: it gets as far as the checkpoint. */
    CHECK(tnrec_eval_run_precision(&em, "/nonexistent/run", "/nonexistent/data", NULL, 4, 1, "cpu", "fp32") ==
          TNREC_ENOTFOUND);
}

/* ---- GPU part ---- */

static uint64_t rng_state;
static float unif(void) { return fixture_unif(&rng_state) * 2.0f - 1.0f; }

static void fill_batch(float *x, float *label, float *weight, size_t elems, int n, uint64_t seed)
{
    rng_state = seed;
    for (size_t i = 0; i < elems * (size_t)n; i++)
        x[i] = unif();
    for (int i = 0; i < n; i++) {
        label[i] = (float)(i % 3 == 0);
        weight[i] = label[i] > 0 ? 2.0f : 0.6f;
    }
}

/* Parameter tensors (offset, length, name) from the model's own layer
 * table (tnrec_model_tensor), checked to cover the flat array in order. */
typedef struct tensor { size_t off, len; char name[48]; } tensor;

static int list_tensors(tensor *t, int max, const tnrec_model *m)
{
    size_t off = 0, count = tnrec_model_tensor_count(m);
    int nt = 0;
    CHECK(count <= (size_t)max);
    for (size_t i = 0; i < count && nt < max; i++) {
        tnrec_param_tensor pt;
        CHECK_OK(tnrec_model_tensor(&pt, m, i));
        CHECK(pt.off == off && pt.len > 0);
        t[nt].off = pt.off;
        t[nt].len = pt.len;
        snprintf(t[nt].name, sizeof t[nt].name, "%d:%s-%s", pt.layer, pt.layer_type ? pt.layer_type : "?",
                 pt.role ? pt.role : "?");
        off += pt.len;
        nt++;
    }
    CHECK(off == tnrec_model_trainable_count(m));
    return nt;
}

/* The tensor walk against layouts worked out by hand (no GPU needed):
 * conv kernels 27 * cin * cout, conv without batch norm (kN) as well as
 * with it (cN, then gamma and beta), dense in * out. */
static void check_walk(const char *spec, tnrec_input_shape in, const size_t *want, int nwant, size_t total)
{
    tnrec_model *m = NULL;
    CHECK_OK(tnrec_model_create(&m, spec, &in, 1));
    if (!m)
        return;
    tensor ts[64];
    int nt = list_tensors(ts, 64, m);
    CHECK(nt == nwant);
    CHECK(tnrec_model_trainable_count(m) == total);
    size_t sum = 0;
    for (int i = 0; i < nt && i < nwant; i++) {
        if (ts[i].len != want[i])
            fprintf(stderr, "  %s: tensor %d (%s) has %zu values, expected %zu\n", spec, i, ts[i].name, ts[i].len,
                    want[i]);
        CHECK(ts[i].len == want[i]);
        sum += ts[i].len;
    }
    CHECK(sum == total);
    tnrec_param_tensor pt;
    CHECK(tnrec_model_tensor(&pt, m, (size_t)nt) == TNREC_EINVAL);
    tnrec_model_free(m);
}

static void test_tensor_walk(void)
{
    tnrec_input_shape small = { 4, 12, 16, 12 };
    /* tiny = p122,c16,p122,c16,p222,c32,g,d16,o: 26,657 trainable
     * parameters (kernel, bias, BN gamma and beta per convolution). */
    static const size_t tiny[] = { 27 * 12 * 16, 16, 16, 16, 27 * 16 * 16, 16, 16, 16,
                                   27 * 16 * 32, 32, 32, 32, 32 * 16, 16, 16, 1 };
    check_walk("tiny", small, tiny, 16, 26657);
    /* seed3d: six conv + BN blocks, d128, o. */
    size_t seed[28];
    int k = 0, cin = 12;
    static const int co[6] = { 32, 32, 64, 64, 128, 128 };
    size_t total = 0;
    for (int i = 0; i < 6; i++) {
        seed[k++] = (size_t)27 * cin * co[i];
        seed[k++] = (size_t)co[i];
        seed[k++] = (size_t)co[i];
        seed[k++] = (size_t)co[i];
        cin = co[i];
    }
    seed[k++] = 128 * 128;
    seed[k++] = 128;
    seed[k++] = 128;
    seed[k++] = 1;
    for (int i = 0; i < k; i++)
        total += seed[i];
    check_walk("seed3d", small, seed, k, total);
    static const size_t mixed[] = { 27 * 12 * 4, 4, 4, 4, 27 * 4 * 8, 8, 8 * 3, 3, 3, 1 };
    check_walk("c4,k8,g,d3,o", small, mixed, 10, 27 * 12 * 4 + 12 + 27 * 4 * 8 + 8 + 8 * 3 + 3 + 3 + 1);
}

static double norm(const float *a, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * a[i];
    return sqrt(s);
}

static double rel_err(const float *got, const float *want, size_t n, double floor)
{
    double d = 0;
    for (size_t i = 0; i < n; i++)
        d += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
    double w = norm(want, n);
    return sqrt(d) / (w > floor ? w : floor > 0 ? floor : 1e-30);
}

static void compare_step(const char *spec, tnrec_input_shape in, int n, tnrec_precision prec)
{
    const tol *t = &TOL[prec];
    size_t elems = (size_t)in.frames * in.height * in.width * in.channels;
    tnrec_model *m = NULL;
    CHECK_OK(tnrec_model_create(&m, spec, &in, 3));
    if (!m)
        return;
    size_t np = tnrec_model_trainable_count(m), ns = tnrec_model_state_count(m);
    float *x = malloc(elems * n * sizeof *x), *label = malloc(n * sizeof *label), *weight = malloc(n * sizeof *weight);
    float *p0 = malloc(np * sizeof *p0), *s0 = malloc((ns + 1) * sizeof *s0);
    float *gc = malloc(np * sizeof *gc), *sc = malloc((ns + 1) * sizeof *sc);
    float *lc = malloc(n * sizeof *lc), *lg = malloc(n * sizeof *lg), *pc = malloc(n * sizeof *pc), *pg = malloc(n * sizeof *pg);
    fill_batch(x, label, weight, elems, n, 42);
    memcpy(p0, tnrec_model_params(m), np * sizeof *p0);
    memcpy(s0, tnrec_model_state(m), ns * sizeof *s0);

    tnrec_net *net = NULL;
    double loss_c = 0, loss_g = 0;
    CHECK_OK(tnrec_net_create(&net, m, n));
    CHECK_OK(tnrec_net_train_step(net, x, label, weight, n, 11, lc, &loss_c));
    memcpy(gc, tnrec_model_grads(m), np * sizeof *gc);
    memcpy(sc, tnrec_model_state(m), ns * sizeof *sc);
    CHECK_OK(tnrec_net_predict(net, x, n, pc));

    memcpy(tnrec_model_params(m), p0, np * sizeof *p0);
    memcpy(tnrec_model_state(m), s0, ns * sizeof *s0);
    memset(tnrec_model_grads(m), 0, np * sizeof(float));
    tnrec_gpu_options o;
    tnrec_gpu_options_default(&o);
    o.precision = prec;
    o.loss_scale = 1024;
    tnrec_gpu_net *g = NULL;
    CHECK_OK(tnrec_gpu_net_create(&g, m, n, &o));
    if (g) {
        printf("  %s\n", tnrec_gpu_net_describe(g));
        CHECK_OK(tnrec_gpu_net_train_step(g, x, label, weight, n, 11, lg, &loss_g));
        CHECK_OK(tnrec_gpu_net_download(g));
        CHECK_OK(tnrec_gpu_net_predict(g, x, n, pg));
        double lmax = 0, dmax = 0, pmax = 0;
        for (int i = 0; i < n; i++) {
            lmax = fmax(lmax, fabs(lc[i]));
            dmax = fmax(dmax, fabs(lg[i] - lc[i]));
            pmax = fmax(pmax, fabs(pg[i] - pc[i]));
        }
        double lerr = dmax / (1 + lmax), perr = pmax / (1 + lmax), losserr = fabs(loss_g - loss_c) / fabs(loss_c);
        printf("  %s %s n=%d: loss cpu %.6f gpu %.6f (rel %.2e), logits %.2e, predict %.2e\n", spec,
               tnrec_precision_name(prec), n, loss_c, loss_g, losserr, lerr, perr);
        CHECK(lerr <= t->logits);
        CHECK(perr <= t->logits);
        CHECK(losserr <= t->logits);
        tensor ts[128];
        int nt = list_tensors(ts, 128, m);
        double gall = norm(gc, np), worst = 0;
        const char *worst_name = "";
        for (int k = 0; k < nt; k++) {
            double e = rel_err(tnrec_model_grads(m) + ts[k].off, gc + ts[k].off, ts[k].len, 1e-3 * gall);
            if (e > worst) {
                worst = e;
                worst_name = ts[k].name;
            }
            if (e > t->grad)
                fprintf(stderr, "  gradient of %s: relative error %.3e > %.1e\n", ts[k].name, e, t->grad);
            CHECK(e <= t->grad);
        }
        double serr = rel_err(tnrec_model_state(m), sc, ns, 0);
        printf("  gradients: %d tensors, worst %s %.2e; BN moving statistics %.2e\n", nt, worst_name, worst, serr);
        CHECK(serr <= t->grad);
    }
    tnrec_gpu_net_free(g);
    tnrec_net_free(net);
    tnrec_model_free(m);
    free(x); free(label); free(weight); free(p0); free(s0); free(gc); free(sc);
    free(lc); free(lg); free(pc); free(pg);
}

/* A few Adam steps on the same batches: the loss curves and the weights. */
static void compare_training(const char *spec, tnrec_input_shape in, int n, tnrec_precision prec, int steps)
{
    const tol *t = &TOL[prec];
    size_t elems = (size_t)in.frames * in.height * in.width * in.channels;
    tnrec_model *mc = NULL, *mg = NULL;
    CHECK_OK(tnrec_model_create(&mc, spec, &in, 5));
    CHECK_OK(tnrec_model_create(&mg, spec, &in, 5));
    tnrec_optim_config oc;
    tnrec_optim_config_default(&oc, TNREC_OPT_ADAM);
    oc.clipvalue = 1.0;
    tnrec_optim *optc = NULL, *optg = NULL;
    tnrec_net *net = NULL;
    tnrec_gpu_net *g = NULL;
    tnrec_gpu_options o;
    tnrec_gpu_options_default(&o);
    o.precision = prec;
    o.loss_scale = 1024;
    if (mc && mg) {
        CHECK_OK(tnrec_optim_create(&optc, &oc, mc));
        CHECK_OK(tnrec_optim_create(&optg, &oc, mg));
        CHECK_OK(tnrec_net_create(&net, mc, n));
        CHECK_OK(tnrec_gpu_net_create(&g, mg, n, &o));
    }
    float *x = malloc(elems * n * sizeof *x), *label = malloc(n * sizeof *label), *weight = malloc(n * sizeof *weight);
    if (g && net && optc && optg) {
        printf("  %s %s: loss curve", spec, tnrec_precision_name(prec));
        for (int s = 0; s < steps; s++) {
            double a = 0, b = 0;
            int applied = 0;
            fill_batch(x, label, weight, elems, n, 100 + (uint64_t)s);
            CHECK_OK(tnrec_net_train_step(net, x, label, weight, n, 7 + (uint64_t)s, NULL, &a));
            CHECK_OK(tnrec_optim_step(optc, mc, 1e-3));
            CHECK_OK(tnrec_gpu_net_train_step(g, x, label, weight, n, 7 + (uint64_t)s, NULL, &b));
            CHECK_OK(tnrec_gpu_net_optim_step(g, optg, 1e-3, &applied));
            CHECK(applied == 1);
            printf("  %.5f/%.5f", a, b);
            CHECK(fabs(a - b) <= t->steps * fabs(a));
        }
        printf("\n");
        CHECK_OK(tnrec_gpu_net_download(g));
        CHECK(tnrec_optim_iterations(optg) == (uint64_t)steps);
        double e = rel_err(tnrec_model_params(mg), tnrec_model_params(mc), tnrec_model_trainable_count(mc), 0);
        printf("  weights after %d steps: relative difference %.2e\n", steps, e);
        CHECK(e <= t->weights);
    }
    free(x); free(label); free(weight);
    tnrec_gpu_net_free(g);
    tnrec_net_free(net);
    tnrec_optim_free(optc);
    tnrec_optim_free(optg);
    tnrec_model_free(mc);
    tnrec_model_free(mg);
}

/* ---- checkpoints across devices ---- */

/* The TorNet baseline's layers on the GPU (inference only): a small
 * CoordConv spec with 'same' pooling on odd extents, element dropout, 1x1
 * convolutions and the heatmap maximum, He-scaled random weights, each
 * chip its own range window (one below the 2 km floor): GPU logits
 * against the CPU's (tnrec_net_predict_at, itself checked against Keras by
 * train_tornet_cnn_keras), within the fp32/fp16/bf16 logit tolerances
 * over 1 + |logit|. A training net of the same model is refused. */
static void compare_coordconv(tnrec_precision prec)
{
    const char *spec = "a8/0.001,a8,p122s,e0.1,a16,a16,p122s,e0.1,h32,h16,m";
    tnrec_input_shape in = { 1, 15, 22, 14 };
    const int n = 4;
    tnrec_model *m = NULL;
    CHECK_OK(tnrec_model_create(&m, spec, &in, 3));
    if (!m)
        return;
    CHECK_OK(tnrec_model_init_weights(m, TNREC_INIT_HE, 5));
    size_t elems = (size_t)in.frames * in.height * in.width * in.channels;
    float *x = malloc((size_t)n * elems * sizeof *x), *label = malloc(n * sizeof *label);
    float *weight = malloc(n * sizeof *weight), cpu[4], gpu[4];
    float limits[8] = { 0.0f, 5500.0f, 30000.0f, 35500.0f, 120000.0f, 125500.0f, 10000.0f, 54000.0f };
    tnrec_net *net = NULL;
    tnrec_gpu_net *g = NULL;
    tnrec_gpu_options o;
    tnrec_gpu_options_default(&o);
    o.precision = prec;
    if (x && label && weight) {
        fill_batch(x, label, weight, elems, n, 11);
        CHECK_OK(tnrec_net_create(&net, m, n));
        CHECK(tnrec_gpu_net_create(&g, m, n, &o) == TNREC_EUNSUPPORTED && !g);
        o.inference_only = 1;
        CHECK_OK(tnrec_gpu_net_create(&g, m, n, &o));
    }
    if (net && g) {
        CHECK_OK(tnrec_net_predict_at(net, x, limits, n, cpu));
        CHECK_OK(tnrec_gpu_net_predict_at(g, x, limits, n, gpu));
        double worst = 0;
        for (int i = 0; i < n; i++) {
            double e = fabs((double)gpu[i] - cpu[i]) / (1 + fabs((double)cpu[i]));
            worst = e > worst ? e : worst;
        }
        printf("CoordConv inference %s: max |gpu - cpu| / (1 + |cpu|) = %.2e (bound %.0e)\n",
               tnrec_precision_name(prec), worst, TOL[prec].logits);
        CHECK(worst <= TOL[prec].logits);
        double loss = 0;
        CHECK(tnrec_gpu_net_train_step(g, x, label, weight, n, 1, NULL, &loss) == TNREC_EINVAL);
    }
    tnrec_gpu_net_free(g);
    tnrec_net_free(net);
    tnrec_model_free(m);
    free(x);
    free(label);
    free(weight);
}

static char data_dir[4096], runs_dir[4096];

/* --deterministic needs a deterministic cuDNN algorithm for every
 * convolution direction, which some cuDNN releases lack at some shapes
 * and precisions (docs/gpu.md, known limits): the net's creation then
 * fails with TNREC_EUNSUPPORTED and "no deterministic" in the message.
 * The runs that ask for it then go on without it, the checks that need
 * it (bit-identical repeats) are not made, and the test ends SKIPPED
 * (77) instead of passed, naming the limit. use_det: runs ask for it. */
static int use_det = 1;
static char det_limit[1024];

static int det_unavailable(tnrec_err err)
{
    if (err != TNREC_EUNSUPPORTED || !strstr(tnrec_error_last(), "no deterministic"))
        return 0;
    if (!det_limit[0])
        snprintf(det_limit, sizeof det_limit, "%s", tnrec_error_last());
    return 1;
}

static void run_config(tnrec_train_config *c, const char *name, const char *device)
{
    static char paths[8][8192];
    static int k;
    char *p = paths[k++ % 8];
    snprintf(p, 8192, "%s/%s", runs_dir, name);
    tnrec_train_config_default(c);
    c->train_path = data_dir;
    c->run_dir = p;
    c->model = "c8,p122,s0.1,c8,p222,g,d8,x0.1,o";
    c->epochs = 2;
    c->batch = 8;
    c->lr = 0.01;
    c->seed = 5;
    c->threads = 2;
    c->device = device;
    c->deterministic = use_det;
}

/* Relative L2 difference of two runs' last.tnck: the weights, or with
 * state set the BN moving statistics (0 when the model has none). */
static double ckpt_compare(const char *a, const char *b, int state)
{
    char pa[4200], pb[4200];
    snprintf(pa, sizeof pa, "%s/%s/last.tnck", runs_dir, a);
    snprintf(pb, sizeof pb, "%s/%s/last.tnck", runs_dir, b);
    tnrec_model *ma = NULL, *mb = NULL;
    CHECK_OK(tnrec_checkpoint_load_model(&ma, pa));
    CHECK_OK(tnrec_checkpoint_load_model(&mb, pb));
    double e = 1e30;
    if (ma && mb) {
        size_t na = state ? tnrec_model_state_count(ma) : tnrec_model_trainable_count(ma);
        size_t nb = state ? tnrec_model_state_count(mb) : tnrec_model_trainable_count(mb);
        if (na == nb)
            e = state ? rel_err(tnrec_model_state(ma), tnrec_model_state(mb), na, 0)
                      : rel_err(tnrec_model_params(ma), tnrec_model_params(mb), na, 0);
    }
    tnrec_model_free(ma);
    tnrec_model_free(mb);
    return e;
}

static double ckpt_diff(const char *a, const char *b) { return ckpt_compare(a, b, 0); }
static double ckpt_state_diff(const char *a, const char *b) { return ckpt_compare(a, b, 1); }

/* Runs `first` for 9 steps (mid epoch 2), then resumes on `second`. */
static void split_run(const char *name, const char *first, const char *second)
{
    tnrec_train_config c;
    run_config(&c, name, first);
    c.max_steps = 9;
    CHECK_OK(tnrec_train_run(&c, NULL, NULL));
    tnrec_train_config r;
    tnrec_train_config_default(&r);
    r.run_dir = c.run_dir;
    r.resume = 1;
    r.epochs = 2;
    r.device = second;
    r.deterministic = use_det;
    r.threads = 2;
    CHECK_OK(tnrec_train_run(&r, NULL, NULL));
}

static void test_checkpoints(const char *dir)
{
    snprintf(data_dir, sizeof data_dir, "%s/data", dir);
    snprintf(runs_dir, sizeof runs_dir, "%s/runs", dir);
    CHECK_OK(fixture_write(data_dir, 48, 4, 12, 16, 9, 0));
    tnrec_train_config c;
    run_config(&c, "gpu", "cuda");
    tnrec_err err = tnrec_train_run(&c, NULL, NULL);
    if (use_det && det_unavailable(err)) {
        printf("  checkpoints: --deterministic is not available here (documented limit): %s\n"
               "  checkpoints: running without it; the gpu->gpu repeat is held to 1e-3, not 1e-6\n", det_limit);
        use_det = 0;
        run_config(&c, "gpu", "cuda");
        err = tnrec_train_run(&c, NULL, NULL);
    }
    CHECK_OK(err);
    run_config(&c, "cpu", "cpu");
    CHECK_OK(tnrec_train_run(&c, NULL, NULL));
    split_run("gpu_then_cpu", "cuda", "cpu");
    split_run("cpu_then_gpu", "cpu", "cuda");
    split_run("gpu_then_gpu", "cuda", "cuda");
    double whole = ckpt_diff("gpu", "cpu"), gc = ckpt_diff("gpu_then_cpu", "gpu"), cg = ckpt_diff("cpu_then_gpu", "cpu"),
           gg = ckpt_diff("gpu_then_gpu", "gpu");
    printf("  checkpoints: gpu vs cpu %.2e, gpu->cpu vs gpu %.2e, cpu->gpu vs cpu %.2e, gpu->gpu vs gpu %.2e\n", whole,
           gc, cg, gg);
    CHECK(gg <= (use_det ? 1e-6 : 1e-3)); /* deterministic mode: expected 0 */
    CHECK(gc <= 1e-3);
    CHECK(cg <= 1e-3);
    CHECK(whole <= 1e-2);
}

/* ---- the input pipeline: staged and unstaged runs ---- */

typedef struct epoch_log { double loss[4], val_loss[4]; uint64_t staged[4]; int n; } epoch_log;

static void log_epoch(void *ctx, const tnrec_epoch_report *r)
{
    epoch_log *lg = ctx;
    if (lg->n < 4) {
        lg->loss[lg->n] = r->loss;
        lg->val_loss[lg->n] = r->val.loss;
        lg->staged[lg->n] = r->gpu_staged_steps;
        lg->n++;
    }
}


/* The same run with staging on and off: equal weights, BN state and losses
 * (max_diff 0: bit-identical), and in the staged run at least one step of
 * the two epochs found its batch copied during the step before (over the
 * whole run, not per epoch: whether batch k+1 is decoded before step k
 * starts depends on the loader threads and the host's load, and a busy
 * host can leave one short epoch without such a step; none in the whole
 * run means the overlap is broken). A batch of 10 over 48 samples leaves
 * a last batch of 8 (its own plan); validation runs through the staged
 * predict path. */
static void staged_pair(const char *name, const char *precision, double max_diff)
{
    epoch_log on, off;
    memset(&on, 0, sizeof on);
    memset(&off, 0, sizeof off);
    char a[64], b[64];
    snprintf(a, sizeof a, "%s_staged", name);
    snprintf(b, sizeof b, "%s_unstaged", name);
    tnrec_train_config c;
    run_config(&c, a, "cuda");
    c.batch = 10;
    c.val_path = data_dir;
    c.precision = precision;
    int det = c.deterministic;
    tnrec_err err = tnrec_train_run(&c, log_epoch, &on);
    if (det && det_unavailable(err)) {
        printf("  staged vs unstaged %s: --deterministic is not available here (documented limit); runs without it, "
               "bit-identity NOT checked\n", precision);
        /* Fresh run directories: a plan for a new batch size (the last
         * batch) may have failed mid-run. */
        snprintf(a, sizeof a, "%s_nodet_staged", name);
        snprintf(b, sizeof b, "%s_nodet_unstaged", name);
        run_config(&c, a, "cuda");
        c.batch = 10;
        c.val_path = data_dir;
        c.precision = precision;
        det = c.deterministic = 0;
        memset(&on, 0, sizeof on);
        err = tnrec_train_run(&c, log_epoch, &on);
    }
    CHECK_OK(err);
    CHECK(setenv("TNREC_GPU_STAGE", "0", 1) == 0);
    run_config(&c, b, "cuda");
    c.batch = 10;
    c.val_path = data_dir;
    c.precision = precision;
    c.deterministic = det;
    CHECK_OK(tnrec_train_run(&c, log_epoch, &off));
    unsetenv("TNREC_GPU_STAGE");
    double d = ckpt_diff(a, b), ds = ckpt_state_diff(a, b);
    printf("  staged vs unstaged %s: weights %.2e, BN state %.2e, loss %.9g/%.9g, val_loss %.9g/%.9g, staged steps "
           "%llu + %llu (epochs 1 and 2, 5 steps each; off: %llu)\n", precision, d, ds, on.loss[1], off.loss[1], on.val_loss[1], off.val_loss[1],
           (unsigned long long)on.staged[0], (unsigned long long)on.staged[1],
           (unsigned long long)(off.staged[0] + off.staged[1]));
    CHECK(on.n == 2 && off.n == 2);
    /* Bit-identity needs the same algorithms doing the same sums. */
    CHECK(!det || d <= max_diff);
    CHECK(!det || ds <= max_diff);
    for (int e = 0; e < 2; e++) {
        CHECK(!det || fabs(on.loss[e] - off.loss[e]) <= max_diff * fabs(off.loss[e]));
        CHECK(!det || fabs(on.val_loss[e] - off.val_loss[e]) <= max_diff * fabs(off.val_loss[e]));
        CHECK(off.staged[e] == 0);
        /* A per-epoch count of at most the epoch's 5 steps. */
        CHECK(on.staged[e] <= 5);
    }
    /* 5 steps an epoch; the first waits for the loader, the others
     * normally find their batch staged: over both epochs, at least one. */
    CHECK(on.staged[0] + on.staged[1] >= 1);
}

/* Probabilities from an eval CSV (last column), in order. */
static int read_probs(const char *path, double *out, int max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[1024];
    int n = 0;
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return -1;
    }
    while (n < max && fgets(line, sizeof line, f)) {
        char *comma = strrchr(line, ',');
        if (comma)
            out[n++] = atof(comma + 1);
    }
    fclose(f);
    return n;
}

static void eval_precisions(const char *dir)
{
    static const double ptol[3] = { 1e-4, 1e-2, 3e-2 }, ltol[3] = { 1e-4, 2e-2, 6e-2 };
    char run[4200], csv[4200];
    snprintf(run, sizeof run, "%s/gpu", runs_dir);
    snprintf(csv, sizeof csv, "%s/eval_cpu.csv", dir);
    double pc[64], pg[64];
    tnrec_metrics mc, mg;
    CHECK_OK(tnrec_eval_run_precision(&mc, run, data_dir, csv, 8, 2, "cpu", NULL));
    int nc = read_probs(csv, pc, 64);
    CHECK(nc == 48);
    for (int p = 0; p < 3; p++) {
        const char *name = tnrec_precision_name((tnrec_precision)p);
        snprintf(csv, sizeof csv, "%s/eval_%s.csv", dir, name);
        CHECK_OK(tnrec_eval_run_precision(&mg, run, data_dir, csv, 8, 2, "cuda", name));
        int ng = read_probs(csv, pg, 64);
        CHECK(ng == nc);
        double dmax = 0;
        for (int i = 0; i < ng && i < nc; i++)
            dmax = fmax(dmax, fabs(pg[i] - pc[i]));
        double dl = fabs(mg.loss - mc.loss) / (1 + fabs(mc.loss));
        printf("  eval %s vs cpu: probabilities max diff %.2e (tol %.0e), loss %.6f/%.6f (%.2e, tol %.0e)\n", name, dmax,
               ptol[p], mg.loss, mc.loss, dl, ltol[p]);
        CHECK(dmax <= ptol[p]);
        CHECK(dl <= ltol[p]);
    }
}

int main(void)
{
    test_cpu_side();
    test_tensor_walk();
    int count = tnrec_gpu_device_count();
    if (count == 0) {
        if (tnrec_test_failures)
            return tnrec_test_result("test_gpu_net");
        tnrec_gpu_check();
        printf("test_gpu_net: SKIPPED (CPU-side checks passed; no CUDA device: %s)\n", tnrec_error_last());
        return 77;
    }
    {
        /* tornet-cnn's layers train on the CPU only: a training net is
         * refused by name before anything runs, never approximated. */
        tnrec_input_shape cin = { 1, 16, 16, 14 };
        tnrec_model *m = NULL;
        tnrec_gpu_net *g = NULL;
        tnrec_gpu_options o;
        tnrec_gpu_options_default(&o);
        CHECK_OK(tnrec_model_create(&m, "tornet-cnn", &cin, 1));
        CHECK(m && tnrec_gpu_net_create(&g, m, 2, &o) == TNREC_EUNSUPPORTED && g == NULL);
        CHECK(strstr(tnrec_error_last(), "CoordConv2D") && strstr(tnrec_error_last(), "--device cpu"));
        tnrec_model_free(m);
    }
    for (int p = 0; p < 3; p++)
        compare_coordconv((tnrec_precision)p);
    const char *dir = tnrec_test_dir();
    tnrec_input_shape small = { 4, 12, 16, 12 }, seed_in = { 4, 24, 32, 12 };
    for (int p = 0; p < 3; p++) {
        compare_step("tiny", small, 6, (tnrec_precision)p);
        compare_step("seed3d", seed_in, 4, (tnrec_precision)p);
        compare_training("tiny", small, 6, (tnrec_precision)p, 5);
        compare_training("seed3d", seed_in, 4, (tnrec_precision)p, 5);
    }
    /* The real input size once, in float32. */
    tnrec_input_shape full = { 4, 120, 240, 12 };
    compare_step("seed3d", full, 2, TNREC_PRECISION_FP32);
    test_checkpoints(dir);
    eval_precisions(dir);
    staged_pair("fp32", "fp32", 0);
    staged_pair("fp16", "fp16", 1e-6);
    if (!tnrec_test_failures && det_limit[0]) {
        printf("test_gpu_net: SKIPPED (all other checks passed; the --deterministic checks were not made, a documented "
               "limit of this cuDNN, see docs/gpu.md: %s)\n", det_limit);
        return 77;
    }
    return tnrec_test_result("test_gpu_net");
}
