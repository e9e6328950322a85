/* tests/train/test_train_init.c: the weight initialisers (--init).
 *
 * On layers large enough for the statistics to be tight (a Conv3D of
 * 27 x 32 x 64 = 55,296 weights, a Dense of 64 x 256 = 16,384), the
 * empirical mean, variance and range of each tensor match the formula of
 * its initialiser: glorot U(-l, l) with l = sqrt(6 / (fan_in + fan_out)),
 * he N(0, 2 / fan_in), torch U(-b, b) with b = 1 / sqrt(fan_in) for
 * weights and biases; biases are zero for glorot and he; BN starts at
 * gamma 1, beta 0, moving mean 0, variance 1. The same seed gives the same
 * weights, another seed others; tnrec_model_create equals glorot. */
#include <math.h>
#include <string.h>

#include "tnrec_test.h"

#define SPEC "c64,g,d256,o"
#define CHANNELS 32

typedef struct stats { double mean, var, maxabs; } stats;

static stats stats_of(const float *v, size_t n)
{
    stats s = { 0, 0, 0 };
    for (size_t i = 0; i < n; i++) {
        s.mean += v[i];
        if (fabs(v[i]) > s.maxabs)
            s.maxabs = fabs(v[i]);
    }
    s.mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        s.var += (v[i] - s.mean) * (v[i] - s.mean);
    s.var /= (double)(n - 1);
    return s;
}

static tnrec_model *make(tnrec_init init, uint64_t seed)
{
    tnrec_input_shape in = { 2, 6, 6, CHANNELS };
    tnrec_model *m = NULL;
    CHECK_OK(tnrec_model_create(&m, SPEC, &in, seed));
    if (m)
        CHECK_OK(tnrec_model_init_weights(m, init, seed));
    return m;
}

/* Checks one kernel against its initialiser; n is large. */
static void check_kernel(tnrec_init init, const stats *s, double fan_in, double fan_out, const char *what)
{
    double expect_var, bound;
    switch (init) {
    case TNREC_INIT_GLOROT:
        bound = sqrt(6.0 / (fan_in + fan_out));
        expect_var = bound * bound / 3;
        break;
    case TNREC_INIT_HE:
        bound = INFINITY;
        expect_var = 2.0 / fan_in;
        break;
    default:
        bound = 1.0 / sqrt(fan_in);
        expect_var = bound * bound / 3;
        break;
    }
    int ok_var = fabs(s->var / expect_var - 1) < 0.04;
    int ok_mean = fabs(s->mean) < 4 * sqrt(expect_var / 16384);
    int ok_bound = s->maxabs <= bound && (isinf(bound) || s->maxabs > 0.99 * bound);
    if (!ok_var || !ok_mean || !ok_bound)
        fprintf(stderr, "%s %s: mean %g var %g (expected %g) max|w| %g (bound %g)\n", tnrec_init_name(init), what,
                s->mean, s->var, expect_var, s->maxabs, bound);
    CHECK(ok_var);
    CHECK(ok_mean);
    CHECK(ok_bound);
    if (init == TNREC_INIT_HE) /* a normal: about 4.6 % beyond 2 sigma */
        CHECK(s->maxabs > 3 * sqrt(expect_var));
}

static void check_init(tnrec_init init)
{
    tnrec_model *m = make(init, 7);
    if (!m)
        return;
    const float *p = tnrec_model_params(m);
    for (size_t i = 0; i < tnrec_model_tensor_count(m); i++) {
        tnrec_param_tensor t;
        CHECK_OK(tnrec_model_tensor(&t, m, i));
        stats s = stats_of(p + t.off, t.len);
        if (strcmp(t.layer_type, "BatchNormalization") == 0) {
            float want = strcmp(t.role, "gamma") == 0 ? 1.0f : 0.0f;
            for (size_t j = 0; j < t.len; j++)
                CHECK(p[t.off + j] == want);
            continue;
        }
        int conv = strcmp(t.layer_type, "Conv3D") == 0;
        /* the Dense 256 (kernel 64 x 256, bias 256) or the output (256 x 1, bias 1) */
        int first_dense = t.len == 64 * 256 || (strcmp(t.role, "bias") == 0 && t.len == 256);
        double fan_in = conv ? 27.0 * CHANNELS : first_dense ? 64 : 256;
        double fan_out = conv ? 27.0 * 64 : first_dense ? 256 : 1;
        if (strcmp(t.role, "kernel") == 0) {
            if (t.len >= 16384)
                check_kernel(init, &s, fan_in, fan_out, t.layer_type);
            continue;
        }
        /* biases */
        if (init == TNREC_INIT_TORCH) {
            CHECK(s.maxabs <= 1.0 / sqrt(fan_in) && s.maxabs > 0);
        } else {
            CHECK(s.maxabs == 0);
        }
    }
    const float *st = tnrec_model_state(m);
    size_t ns = tnrec_model_state_count(m);
    CHECK(ns == 128);
    for (size_t j = 0; j < ns; j++)
        CHECK(st[j] == (j < 64 ? 0.0f : 1.0f));

    /* deterministic in the seed */
    tnrec_model *same = make(init, 7), *other = make(init, 8);
    size_t n = tnrec_model_trainable_count(m);
    if (same && other) {
        CHECK(memcmp(tnrec_model_params(same), p, n * sizeof *p) == 0);
        CHECK(memcmp(tnrec_model_params(other), p, n * sizeof *p) != 0);
    }
    tnrec_model_free(same);
    tnrec_model_free(other);
    tnrec_model_free(m);
}

int main(void)
{
    check_init(TNREC_INIT_GLOROT);
    check_init(TNREC_INIT_HE);
    check_init(TNREC_INIT_TORCH);

    /* tnrec_model_create is glorot */
    tnrec_input_shape in = { 2, 6, 6, CHANNELS };
    tnrec_model *a = NULL, *b = make(TNREC_INIT_GLOROT, 3);
    CHECK_OK(tnrec_model_create(&a, SPEC, &in, 3));
    if (a && b)
        CHECK(memcmp(tnrec_model_params(a), tnrec_model_params(b),
                     tnrec_model_trainable_count(a) * sizeof(float)) == 0);
    /* re-initialising overwrites everything: torch then glorot is glorot */
    if (a && b) {
        CHECK_OK(tnrec_model_init_weights(b, TNREC_INIT_TORCH, 3));
        CHECK_OK(tnrec_model_init_weights(b, TNREC_INIT_GLOROT, 3));
        CHECK(memcmp(tnrec_model_params(a), tnrec_model_params(b),
                     tnrec_model_trainable_count(a) * sizeof(float)) == 0);
    }
    tnrec_model_free(a);
    tnrec_model_free(b);

    /* names */
    tnrec_init init;
    CHECK_OK(tnrec_init_parse(&init, NULL));
    CHECK(init == TNREC_INIT_GLOROT);
    CHECK_OK(tnrec_init_parse(&init, "torch"));
    CHECK(init == TNREC_INIT_TORCH && strcmp(tnrec_init_name(init), "torch") == 0);
    CHECK_OK(tnrec_init_parse(&init, "he"));
    CHECK(init == TNREC_INIT_HE);
    CHECK(tnrec_init_parse(&init, "xavier") == TNREC_EINVAL);
    CHECK(strstr(tnrec_error_last(), "glorot, he or torch") != NULL);
    return tnrec_test_result("test_train_init");
}
