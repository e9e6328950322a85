/* tests/train/test_train_infer.c: CPU inference (train/conv_infer.c).
 *
 * float32: a convolution with batch norm (random moving statistics) and
 * LeakyReLU, the scene's maximum and a dense output against the double
 * reference layers, for each register blocking (16, 32, 64, 128 output
 * channels), an odd number of input channels and a row width that leaves
 * a remainder. bfloat16: logits within BF16_TOL of float32 on small
 * models with pooling; TNREC_CPU_BF16=off gives float32's bits; fp16 is
 * refused. Where the CPU lacks avx512_bf16, bf16 must fall back to float32
 * bits too.
 *
 * bfloat16 training convolutions (tnrec_test_conv3d_bf16): forward,
 * input gradient and kernel gradient against the double reference on the
 * same bfloat16-rounded operands, within float32 summation error, for
 * each register blocking, odd and even row widths and input channels in
 * blocks of 8 and one at a time.
 *
 * bfloat16 training steps (tnrec_net_set_train_precision): the loss and
 * every parameter gradient against float32's from the same weights and
 * batch, on models whose convolutions take each bf16 path (forward; input
 * gradient with 16k input channels and the float32 one without; kernel
 * gradient with 16 and 32k outputs, input channels in blocks of 8 and
 * one at a time, odd and even row widths); TNREC_CPU_BF16=off, and fp32
 * set after bf16, give float32's bits. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TNREC_TESTING 1
#include "tnrec/testing.h"
#include "tnrec_test.h"

/* |bf16 - fp32| <= BF16_TOL * (1 + |fp32|) for every logit. bfloat16
 * keeps 8 significant bits (relative rounding 2^-9 per operand); the
 * models below show at most 1.3e-3 (the test prints each). */
#define BF16_TOL 1e-2

static uint64_t rng_state = 1;

static double uniform(double lo, double hi)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (double)(rng_state >> 11) * 0x1.0p-53;
}

/* Random batch norm parameters and moving statistics, so that the
 * inference epilogue has something to get wrong. */
static void randomise_bn(tnrec_model *m)
{
    float *p = tnrec_model_params(m), *st = tnrec_model_state(m);
    size_t so = 0;
    for (size_t i = 0; i < tnrec_model_tensor_count(m); i++) {
        tnrec_param_tensor t;
        if (tnrec_model_tensor(&t, m, i) || strcmp(t.layer_type, "BatchNormalization") != 0)
            continue;
        int beta = strcmp(t.role, "beta") == 0;
        for (size_t j = 0; j < t.len; j++)
            p[t.off + j] = (float)(beta ? uniform(-0.2, 0.2) : uniform(0.5, 1.5));
        if (beta) { /* after gamma: this layer's moving mean and variance */
            for (size_t j = 0; j < t.len; j++) {
                st[so + j] = (float)uniform(-0.3, 0.3);
                st[so + t.len + j] = (float)uniform(0.3, 2.0);
            }
            so += 2 * t.len;
        }
    }
}

static float *random_input(const tnrec_input_shape *in, int n)
{
    size_t len = (size_t)n * in->frames * in->height * in->width * in->channels;
    float *x = malloc(len * sizeof *x);
    for (size_t i = 0; x && i < len; i++)
        x[i] = (float)uniform(-1, 1);
    return x;
}

/* "cCO,g,o" in double with the reference layers. */
static void reference_logits(double *out, const tnrec_model *mc, const float *x, int n)
{
    tnrec_model *m = (tnrec_model *)mc;
    const tnrec_input_shape *in = tnrec_model_input(m);
    const float *p = tnrec_model_params(m), *st = tnrec_model_state(m);
    size_t np = tnrec_model_trainable_count(m);
    int d = in->frames, h = in->height, w = in->width, ci = in->channels;
    tnrec_param_tensor kt;
    tnrec_model_tensor(&kt, m, 1); /* the conv's bias: co values */
    int co = (int)kt.len;
    size_t pos = (size_t)n * d * h * w;
    double *pd = malloc(np * sizeof *pd), *xd = malloc(pos * ci * sizeof *xd), *y = malloc(pos * co * sizeof *y);
    double *sd = malloc(2 * (size_t)co * sizeof *sd), *g = malloc((size_t)n * co * sizeof *g);
    for (size_t i = 0; i < np; i++)
        pd[i] = p[i];
    for (size_t i = 0; i < pos * ci; i++)
        xd[i] = x[i];
    for (int i = 0; i < 2 * co; i++)
        sd[i] = st[i];
    size_t k = (size_t)27 * ci * co;
    tnrec_ref_conv3d_forward(y, xd, pd, pd + k, n, d, h, w, ci, co);
    tnrec_ref_batchnorm_forward_infer(y, y, pd + k + co, pd + k + 2 * co, sd, sd + co, pos, co, (double)1e-3f);
    tnrec_ref_leaky_relu_forward(y, y, pos * co, 0.1);
    tnrec_ref_global_maxpool_forward(g, y, n, (size_t)d * h * w, co);
    tnrec_ref_dense_forward(out, g, pd + k + 3 * co, pd + k + 4 * co, n, co, 1);
    free(pd);
    free(xd);
    free(y);
    free(sd);
    free(g);
}

static void test_fp32_against_reference(void)
{
    static const char *const specs[] = { "c16,g,o", "c32,g,o", "c64,g,o", "c128,g,o" };
    tnrec_input_shape in = { 3, 5, 29, 13 };
    int n = 2;
    for (int s = 0; s < 4; s++) {
        tnrec_model *m = NULL;
        tnrec_net *net = NULL;
        CHECK_OK(tnrec_model_create(&m, specs[s], &in, 7));
        if (!m)
            continue;
        randomise_bn(m);
        CHECK_OK(tnrec_net_create(&net, m, n));
        float *x = random_input(&in, n), got[2];
        double want[2];
        CHECK_OK(tnrec_net_predict(net, x, n, got));
        reference_logits(want, m, x, n);
        for (int i = 0; i < n; i++) {
            if (!(fabs(got[i] - want[i]) <= 1e-5 * (1 + fabs(want[i]))))
                fprintf(stderr, "%s: sample %d: %.9g, reference %.9g\n", specs[s], i, (double)got[i], want[i]);
            CHECK(fabs(got[i] - want[i]) <= 1e-5 * (1 + fabs(want[i])));
        }
        free(x);
        tnrec_net_free(net);
        tnrec_model_free(m);
    }
}

/* Logits of spec on n random samples in precision (NULL: the default). */
static void logits_of(float *out, int *bf16, const char *spec, const tnrec_input_shape *in, int n,
                      const char *precision)
{
    tnrec_model *m = NULL;
    tnrec_net *net = NULL;
    rng_state = 99;
    CHECK_OK(tnrec_model_create(&m, spec, in, 3));
    if (!m)
        return;
    randomise_bn(m);
    float *x = random_input(in, n);
    CHECK_OK(tnrec_net_create(&net, m, n));
    if (net && precision)
        CHECK_OK(tnrec_net_set_precision(net, precision, bf16));
    if (net && x)
        CHECK_OK(tnrec_net_predict(net, x, n, out));
    free(x);
    tnrec_net_free(net);
    tnrec_model_free(m);
}

static void test_bf16(void)
{
    static const char *const specs[] = { "p122,c16,p122,c16,p222,c32,g,d16,o", "c32,c32,p122,k64,p122,c128,g,o",
                                         "c16,c64,g,o" };
    tnrec_input_shape in = { 4, 16, 36, 12 };
    enum { N = 3 };
    const char *env = getenv("TNREC_CPU_BF16");
    int forced_off = env && strcmp(env, "off") == 0;
    for (int s = 0; s < 3; s++) {
        float f32[N], b16[N], off[N];
        int on = -1, on_off = -1;
        logits_of(f32, NULL, specs[s], &in, N, NULL);
        logits_of(b16, &on, specs[s], &in, N, "bf16");
        setenv("TNREC_CPU_BF16", "off", 1);
        logits_of(off, &on_off, specs[s], &in, N, "bf16");
        if (forced_off)
            setenv("TNREC_CPU_BF16", "off", 1);
        else
            unsetenv("TNREC_CPU_BF16");
        CHECK(on_off == 0);
        CHECK(memcmp(off, f32, sizeof f32) == 0);
        if (forced_off)
            CHECK(on == 0);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            double e = fabs((double)b16[i] - f32[i]) / (1 + fabs(f32[i]));
            worst = e > worst ? e : worst;
        }
        printf("%s: bf16 %s, worst |bf16 - fp32| / (1 + |fp32|) = %.2e\n", specs[s], on ? "on" : "off (fp32)", worst);
        CHECK(worst <= BF16_TOL);
        if (!on)
            CHECK(memcmp(b16, f32, sizeof f32) == 0);
    }
    tnrec_model *m = NULL;
    tnrec_net *net = NULL;
    CHECK_OK(tnrec_model_create(&m, specs[0], &in, 3));
    CHECK_OK(tnrec_net_create(&net, m, 1));
    CHECK(net && tnrec_net_set_precision(net, "fp16", NULL) == TNREC_EINVAL);
    CHECK(net && tnrec_net_set_precision(net, "bf17", NULL) == TNREC_EINVAL);
    CHECK(net && tnrec_net_set_precision(net, "fp32", NULL) == TNREC_OK);
    tnrec_net_free(net);
    tnrec_model_free(m);
}

/* float -> bfloat16 -> double, nearest even (the test's own rounding). */
static double bf16_round(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7fffu + ((u >> 16) & 1);
    u &= 0xffff0000u;
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
}

static double *fill(size_t len, int round, int absolute, const float *src)
{
    double *a = malloc((len + 1) * sizeof *a);
    for (size_t i = 0; a && i < len; i++) {
        double v = round ? bf16_round(src[i]) : src[i];
        a[i] = absolute ? fabs(v) : v;
    }
    return a;
}

/* |got - want| <= 2e-5 x bound everywhere (bound: the sum of |terms|). */
static double worst_of(const float *got, const double *want, const double *bound, size_t len)
{
    double worst = 0;
    for (size_t i = 0; i < len; i++) {
        double e = fabs(got[i] - want[i]) / (bound[i] + 1e-30);
        worst = e > worst ? e : worst;
    }
    return worst;
}

static void test_bf16_conv_kernels(void)
{
    static const int shapes[][6] = { { 2, 3, 4, 17, 16, 32 }, { 2, 2, 3, 10, 32, 16 }, { 1, 3, 5, 13, 12, 48 },
                                     { 2, 2, 4, 9, 16, 64 }, { 1, 2, 3, 1, 5, 16 } };
    for (int s = 0; s < 5; s++) {
        int n = shapes[s][0], d = shapes[s][1], h = shapes[s][2], w = shapes[s][3], ci = shapes[s][4],
            co = shapes[s][5];
        size_t pos = (size_t)n * d * h * w, kl = (size_t)27 * ci * co;
        float *x = malloc(pos * ci * sizeof *x), *k = malloc(kl * sizeof *k), *b = malloc((size_t)co * sizeof *b);
        float *dy = malloc(pos * co * sizeof *dy), *y = malloc(pos * co * sizeof *y);
        float *dx = malloc(pos * ci * sizeof *dx), *dk = malloc(kl * sizeof *dk);
        for (size_t i = 0; i < pos * ci; i++)
            x[i] = (float)uniform(-3, 2);
        for (size_t i = 0; i < kl; i++)
            k[i] = (float)uniform(-0.3, 0.3);
        for (int i = 0; i < co; i++)
            b[i] = (float)uniform(-0.5, 0.5);
        for (size_t i = 0; i < pos * co; i++)
            dy[i] = (float)uniform(-1e-2, 1e-2);
        int want_dx = ci % 16 == 0;
        tnrec_err err = tnrec_test_conv3d_bf16(y, want_dx ? dx : NULL, dk, x, k, b, dy, n, d, h, w, ci, co);
        if (err == TNREC_EUNSUPPORTED) {
            printf("bf16 convolution kernels: not on this CPU (skipped)\n");
            goto next;
        }
        CHECK_OK(err);
        double *xr = fill(pos * ci, 1, 0, x), *kr = fill(kl, 1, 0, k), *gr = fill(pos * co, 1, 0, dy);
        double *xa = fill(pos * ci, 1, 1, x), *ka = fill(kl, 1, 1, k), *ga = fill(pos * co, 1, 1, dy);
        double *bd = fill((size_t)co, 0, 0, b), *ba = fill((size_t)co, 0, 1, b);
        double *yr = malloc(pos * co * sizeof *yr), *ya = malloc(pos * co * sizeof *ya);
        double *dxr = malloc(pos * ci * sizeof *dxr), *dxa = malloc(pos * ci * sizeof *dxa);
        double *dkr = malloc(kl * sizeof *dkr), *dka = malloc(kl * sizeof *dka);
        tnrec_ref_conv3d_forward(yr, xr, kr, bd, n, d, h, w, ci, co);
        tnrec_ref_conv3d_forward(ya, xa, ka, ba, n, d, h, w, ci, co);
        tnrec_ref_conv3d_backward(dxr, dkr, NULL, xr, kr, gr, n, d, h, w, ci, co);
        tnrec_ref_conv3d_backward(dxa, dka, NULL, xa, ka, ga, n, d, h, w, ci, co);
        double ey = worst_of(y, yr, ya, pos * co), edk = worst_of(dk, dkr, dka, kl);
        double edx = want_dx ? worst_of(dx, dxr, dxa, pos * ci) : 0;
        printf("bf16 conv n%d d%d h%d w%d ci%d co%d: worst error / sum |terms|: y %.1e, dx %.1e, dk %.1e\n", n, d, h,
               w, ci, co, ey, edx, edk);
        CHECK(ey <= 2e-5 && edx <= 2e-5 && edk <= 2e-5);
        free(xr), free(kr), free(gr), free(xa), free(ka), free(ga), free(bd), free(ba);
        free(yr), free(ya), free(dxr), free(dxa), free(dkr), free(dka);
    next:
        free(x), free(k), free(b), free(dy), free(y), free(dx), free(dk);
    }
}

/* ||bf16 - fp32|| of a gradient tensor <= GRAD_TOL x ||fp32|| (2-norms):
 * the kernels themselves are checked to float32 rounding above; here
 * bfloat16's rounding of activations moves which input a max pooling
 * picks, which reroutes a gradient, so the tensors differ by more than
 * the rounding (up to 0.2 seen; the test prints each). A wiring fault
 * (a gradient not computed, the wrong buffer) moves a tensor by 1 or more. */
#define GRAD_TOL 0.5

/* One training step of spec on n random samples; the gradients into
 * grads (nparams values), the loss into *loss. */
static void train_step_of(float *grads, double *loss, int *bf16, const char *spec, const tnrec_input_shape *in, int n,
                          const char *precision)
{
    tnrec_model *m = NULL;
    tnrec_net *net = NULL;
    rng_state = 7;
    CHECK_OK(tnrec_model_create(&m, spec, in, 5));
    if (!m)
        return;
    float *x = random_input(in, n), label[4] = { 1, 0, 1, 0 }, weight[4] = { 1, 1, 1, 1 };
    CHECK_OK(tnrec_net_create(&net, m, n));
    /* "bf16,fp32": one after the other (the last one holds). */
    for (const char *p = precision; net && p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        char one[8];
        snprintf(one, sizeof one, "%.*s", (int)strcspn(p, ","), p);
        CHECK_OK(tnrec_net_set_train_precision(net, one, bf16));
    }
    if (net && x)
        CHECK_OK(tnrec_net_train_step(net, x, label, weight, n, 11, NULL, loss));
    memcpy(grads, tnrec_model_grads(m), tnrec_model_trainable_count(m) * sizeof *grads);
    free(x);
    tnrec_net_free(net);
    tnrec_model_free(m);
}

static void test_bf16_training(void)
{
    static const char *const specs[] = { "c16,c16,p122,c32,g,o", "c12,c16,c32,g,d8,o",
                                         "k32,k16,p222,k48,g,o" };
    static const tnrec_input_shape shapes[] = { { 2, 6, 17, 3 }, { 2, 5, 20, 12 }, { 2, 4, 13, 5 } };
    enum { N = 3 };
    const char *env = getenv("TNREC_CPU_BF16");
    int forced_off = env && strcmp(env, "off") == 0;
    for (int s = 0; s < 3; s++) {
        tnrec_model *m = NULL;
        CHECK_OK(tnrec_model_create(&m, specs[s], &shapes[s], 5));
        if (!m)
            continue;
        size_t np = tnrec_model_trainable_count(m);
        float *g32 = calloc(np, sizeof *g32), *g16 = calloc(np, sizeof *g16), *goff = calloc(np, sizeof *goff);
        double l32 = 0, l16 = 0, loff = 0;
        int on = -1, on_off = -1;
        train_step_of(g32, &l32, NULL, specs[s], &shapes[s], N, NULL);
        train_step_of(g16, &l16, &on, specs[s], &shapes[s], N, "bf16");
        setenv("TNREC_CPU_BF16", "off", 1);
        train_step_of(goff, &loff, &on_off, specs[s], &shapes[s], N, "bf16");
        if (!forced_off)
            unsetenv("TNREC_CPU_BF16");
        CHECK(on_off == 0);
        CHECK(loff == l32 && memcmp(goff, g32, np * sizeof *g32) == 0);
        int back = -1;
        train_step_of(goff, &loff, &back, specs[s], &shapes[s], N, "bf16,fp32");
        CHECK(back == 0);
        CHECK(loff == l32 && memcmp(goff, g32, np * sizeof *g32) == 0);
        if (forced_off)
            CHECK(on == 0);
        printf("%s: bf16 training %s, loss %.6f (fp32 %.6f)\n", specs[s], on ? "on" : "off (fp32)", l16, l32);
        CHECK(fabs(l16 - l32) <= 1e-2 * (1 + fabs(l32)));
        for (size_t i = 0; i < tnrec_model_tensor_count(m); i++) {
            tnrec_param_tensor t;
            CHECK_OK(tnrec_model_tensor(&t, m, i));
            double n32 = 0, nd = 0;
            for (size_t j = 0; j < t.len; j++) {
                n32 += (double)g32[t.off + j] * g32[t.off + j];
                nd += ((double)g16[t.off + j] - g32[t.off + j]) * ((double)g16[t.off + j] - g32[t.off + j]);
            }
            n32 = sqrt(n32), nd = sqrt(nd);
            printf("  %s %s (layer %d): |fp32| %.3e, |bf16 - fp32| / |fp32| %.2e\n", t.layer_type, t.role, t.layer, n32,
                   nd / (n32 + 1e-30));
            /* A convolution's bias before batch norm has no gradient (0 up to rounding). */
            if (n32 > 1e-5)
                CHECK(nd <= GRAD_TOL * n32);
            if (!on)
                CHECK(nd == 0);
        }
        free(g32);
        free(g16);
        free(goff);
        tnrec_model_free(m);
    }
    tnrec_model *m = NULL;
    tnrec_net *net = NULL;
    CHECK_OK(tnrec_model_create(&m, specs[0], &shapes[0], 3));
    CHECK_OK(tnrec_net_create(&net, m, 1));
    CHECK(net && tnrec_net_set_train_precision(net, "fp16", NULL) == TNREC_EINVAL);
    tnrec_net_free(net);
    tnrec_model_free(m);
}

int main(void)
{
    test_fp32_against_reference();
    test_bf16();
    test_bf16_conv_kernels();
    test_bf16_training();
    return tnrec_test_failures ? 1 : 0;
}
