/* tests/train/test_train_layers.c: gradient checks of every reference layer
 * and of a whole small network (double precision, central differences),
 * the fast float path against the reference, the model presets' parameter
 * counts, spec errors and one Adam step. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TNREC_TESTING 1 /* the reference layers (tnrec/testing.h) */
#include "tnrec/testing.h"
#include "tnrec_test.h"

static uint64_t rng_state = 12345;
static double urand(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * 0x1.0p-53 * 2 - 1;
}
static double *rand_array(size_t n)
{
    double *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = urand();
    return a;
}
static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Relative error with an absolute floor: gradients that are zero in
 * exact arithmetic (a conv bias followed by BN) differ from their finite
 * difference only by rounding noise. */
static double rel_floor = 1e-4;
static double rel_err(double a, double b) { return fabs(a - b) / fmax(rel_floor, fmax(fabs(a), fabs(b))); }

static double worst;
static void expect_close(const char *what, double analytic, double numeric, double tol)
{
    double e = rel_err(analytic, numeric);
    if (e > worst)
        worst = e;
    if (e > tol) {
        fprintf(stderr, "%s: analytic %.10g numeric %.10g (rel err %.3g)\n", what, analytic, numeric, e);
        tnrec_test_failures++;
    }
}

/* Layer under test: y = f(x; params); loss = <y, r>. */
typedef struct layer_case {
    const char *name;
    size_t nx, ny, np;          /* np: parameters (kernel+bias etc.) */
    void (*fwd)(struct layer_case *c, double *y, const double *x, const double *p);
    void (*bwd)(struct layer_case *c, double *dx, double *dp, const double *x, const double *p, const double *dy);
    int dims[8];
} layer_case;

static void check_layer(layer_case *c)
{
    double *x = rand_array(c->nx), *p = rand_array(c->np ? c->np : 1), *r = rand_array(c->ny);
    double *y = malloc(c->ny * sizeof *y), *dx = malloc(c->nx * sizeof *dx);
    double *dp = malloc((c->np ? c->np : 1) * sizeof *dp);
    c->bwd(c, dx, dp, x, p, r);
    const double h = 1e-5;
    worst = 0;
    for (size_t i = 0; i < c->nx; i++) {
        double keep = x[i];
        x[i] = keep + h;
        c->fwd(c, y, x, p);
        double up = dot(y, r, c->ny);
        x[i] = keep - h;
        c->fwd(c, y, x, p);
        double dn = dot(y, r, c->ny);
        x[i] = keep;
        expect_close(c->name, dx[i], (up - dn) / (2 * h), 1e-5);
    }
    for (size_t i = 0; i < c->np; i++) {
        double keep = p[i];
        p[i] = keep + h;
        c->fwd(c, y, x, p);
        double up = dot(y, r, c->ny);
        p[i] = keep - h;
        c->fwd(c, y, x, p);
        double dn = dot(y, r, c->ny);
        p[i] = keep;
        expect_close(c->name, dp[i], (up - dn) / (2 * h), 1e-5);
    }
    printf("gradcheck %-18s worst relative error %.2e\n", c->name, worst);
    free(x); free(p); free(r); free(y); free(dx); free(dp);
}

/* dims: n d h w ci co */
static void conv_f(layer_case *c, double *y, const double *x, const double *p)
{
    int *d = c->dims;
    tnrec_ref_conv3d_forward(y, x, p, p + 27 * d[4] * d[5], d[0], d[1], d[2], d[3], d[4], d[5]);
}
static void conv_b(layer_case *c, double *dx, double *dp, const double *x, const double *p, const double *dy)
{
    int *d = c->dims;
    tnrec_ref_conv3d_backward(dx, dp, dp + 27 * d[4] * d[5], x, p, dy, d[0], d[1], d[2], d[3], d[4], d[5]);
}
/* dims: m c */
static void bn_f(layer_case *c, double *y, const double *x, const double *p)
{
    double mean[16], var[16];
    tnrec_ref_batchnorm_forward_train(y, mean, var, x, p, p + c->dims[1], (size_t)c->dims[0], c->dims[1], 1e-3);
}
static void bn_b(layer_case *c, double *dx, double *dp, const double *x, const double *p, const double *dy)
{
    double mean[16], var[16], *y = malloc(c->ny * sizeof *y);
    tnrec_ref_batchnorm_forward_train(y, mean, var, x, p, p + c->dims[1], (size_t)c->dims[0], c->dims[1], 1e-3);
    tnrec_ref_batchnorm_backward(dx, dp, dp + c->dims[1], x, p, mean, var, dy, (size_t)c->dims[0], c->dims[1], 1e-3);
    free(y);
}
static void lrelu_f(layer_case *c, double *y, const double *x, const double *p)
{
    tnrec_ref_leaky_relu_forward(y, x, c->nx, 0.1);
}
static void lrelu_b(layer_case *c, double *dx, double *dp, const double *x, const double *p, const double *dy)
{
    tnrec_ref_leaky_relu_backward(dx, x, dy, c->nx, 0.1);
}
/* dims: n d h w c pd ph pw */
static void pool_f(layer_case *c, double *y, const double *x, const double *p)
{
    int *d = c->dims;
    tnrec_ref_maxpool3d_forward(y, x, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]);
}
static void pool_b(layer_case *c, double *dx, double *dp, const double *x, const double *p, const double *dy)
{
    int *d = c->dims;
    tnrec_ref_maxpool3d_backward(dx, x, dy, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]);
}
/* dims: n s c; mask drawn with rate 0.4 */
static double drop_mask[64];
static void drop_f(layer_case *c, double *y, const double *x, const double *p)
{
    tnrec_ref_channel_scale_forward(y, x, drop_mask, c->dims[0], (size_t)c->dims[1], c->dims[2]);
}
static void drop_b(layer_case *c, double *dx, double *dp, const double *x, const double *p, const double *dy)
{
    tnrec_ref_channel_scale_backward(dx, dy, drop_mask, c->dims[0], (size_t)c->dims[1], c->dims[2]);
}
static void gpool_f(layer_case *c, double *y, const double *x, const double *p)
{
    tnrec_ref_global_maxpool_forward(y, x, c->dims[0], (size_t)c->dims[1], c->dims[2]);
}
static void gpool_b(layer_case *c, double *dx, double *dp, const double *x, const double *p, const double *dy)
{
    tnrec_ref_global_maxpool_backward(dx, x, dy, c->dims[0], (size_t)c->dims[1], c->dims[2]);
}
/* dims: n in out */
static void dense_f(layer_case *c, double *y, const double *x, const double *p)
{
    int *d = c->dims;
    tnrec_ref_dense_forward(y, x, p, p + d[1] * d[2], d[0], d[1], d[2]);
}
static void dense_b(layer_case *c, double *dx, double *dp, const double *x, const double *p, const double *dy)
{
    int *d = c->dims;
    tnrec_ref_dense_backward(dx, dp, dp + d[1] * d[2], x, p, dy, d[0], d[1], d[2]);
}

/* dims: n d h w ci co; coordinates: w x 2 */
static double cc_coord[2 * 7];
static void cconv_f(layer_case *c, double *y, const double *x, const double *p)
{
    int *d = c->dims;
    tnrec_ref_coordconv2d_forward(y, x, cc_coord, p, p + 9 * (d[4] + 2) * d[5], d[0], d[1], d[2], d[3], d[4], d[5]);
}
static void cconv_b(layer_case *c, double *dx, double *dp, const double *x, const double *p, const double *dy)
{
    int *d = c->dims;
    tnrec_ref_coordconv2d_backward(dx, dp, dp + 9 * (d[4] + 2) * d[5], x, cc_coord, p, dy, d[0], d[1], d[2], d[3], d[4],
                                   d[5]);
}
static void relu_f(layer_case *c, double *y, const double *x, const double *p)
{
    tnrec_ref_relu_forward(y, x, c->nx);
}
static void relu_b(layer_case *c, double *dx, double *dp, const double *x, const double *p, const double *dy)
{
    tnrec_ref_relu_backward(dx, x, dy, c->nx);
}
static void spool_f(layer_case *c, double *y, const double *x, const double *p)
{
    int *d = c->dims;
    tnrec_ref_maxpool3d_same_forward(y, x, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]);
}
static void spool_b(layer_case *c, double *dx, double *dp, const double *x, const double *p, const double *dy)
{
    int *d = c->dims;
    tnrec_ref_maxpool3d_same_backward(dx, x, dy, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]);
}

/* The CoordConv2D reference against the Conv3D reference on the input
 * with the coordinates appended and the kernel in the middle frame plane:
 * the construction the float path (train/network.c) runs. */
static void test_coordconv_as_conv3d(void)
{
    int n = 2, d = 3, h = 4, w = 7, ci = 3, co = 5, cc = ci + 2;
    size_t pos = (size_t)n * d * h * w;
    for (int q = 0; q < w; q++) {
        cc_coord[2 * q] = 0.5 + 0.01 * q;
        cc_coord[2 * q + 1] = 1 / cc_coord[2 * q];
    }
    double *x = rand_array(pos * ci), *k = rand_array((size_t)9 * cc * co), *b = rand_array((size_t)co);
    double *xc = malloc(pos * cc * sizeof *xc), *k27 = calloc((size_t)27 * cc * co, sizeof *k27);
    double *y = malloc(pos * co * sizeof *y), *y3 = malloc(pos * co * sizeof *y3);
    for (size_t p = 0; p < pos; p++) {
        memcpy(xc + p * cc, x + p * ci, (size_t)ci * sizeof *xc);
        xc[p * cc + ci] = cc_coord[2 * (p % w)];
        xc[p * cc + ci + 1] = cc_coord[2 * (p % w) + 1];
    }
    memcpy(k27 + (size_t)9 * cc * co, k, (size_t)9 * cc * co * sizeof *k27);
    tnrec_ref_coordconv2d_forward(y, x, cc_coord, k, b, n, d, h, w, ci, co);
    tnrec_ref_conv3d_forward(y3, xc, k27, b, n, d, h, w, cc, co);
    double e = 0;
    for (size_t i = 0; i < pos * co; i++)
        e = fmax(e, fabs(y[i] - y3[i]));
    printf("coordconv2d vs conv3d with coordinates appended: max difference %.1e\n", e);
    CHECK(e < 1e-12);
    free(x); free(k); free(b); free(xc); free(k27); free(y); free(y3);
}

static void test_layers(void)
{
    layer_case conv = { "conv3d", 2 * 3 * 4 * 5 * 3, 2 * 3 * 4 * 5 * 4, 27 * 3 * 4 + 4, conv_f, conv_b, { 2, 3, 4, 5, 3, 4 } };
    check_layer(&conv);
    layer_case bn = { "batchnorm", 24 * 3, 24 * 3, 6, bn_f, bn_b, { 24, 3 } };
    check_layer(&bn);
    layer_case lr = { "leaky_relu", 200, 200, 0, lrelu_f, lrelu_b, { 0 } };
    check_layer(&lr);
    layer_case p122 = { "maxpool(1,2,2)", 2 * 3 * 5 * 4 * 2, 2 * 3 * 2 * 2 * 2, 0, pool_f, pool_b, { 2, 3, 5, 4, 2, 1, 2, 2 } };
    check_layer(&p122);
    layer_case p222 = { "maxpool(2,2,2)", 1 * 5 * 4 * 6 * 3, 1 * 2 * 2 * 3 * 3, 0, pool_f, pool_b, { 1, 5, 4, 6, 3, 2, 2, 2 } };
    check_layer(&p222);
    tnrec_ref_dropout_mask(drop_mask, 3 * 4, 0.4, 99, 1, 0);
    int dropped = 0;
    for (int i = 0; i < 12; i++) {
        CHECK(drop_mask[i] == 0 || fabs(drop_mask[i] - 1 / 0.6) < 1e-12);
        dropped += drop_mask[i] == 0;
    }
    CHECK(dropped > 0 && dropped < 12);
    layer_case sd = { "spatial_dropout", 3 * 10 * 4, 3 * 10 * 4, 0, drop_f, drop_b, { 3, 10, 4 } };
    check_layer(&sd);
    layer_case gp = { "global_maxpool", 2 * 30 * 5, 2 * 5, 0, gpool_f, gpool_b, { 2, 30, 5 } };
    check_layer(&gp);
    layer_case de = { "dense", 3 * 7, 3 * 5, 7 * 5 + 5, dense_f, dense_b, { 3, 7, 5 } };
    check_layer(&de);
    for (int q = 0; q < 7; q++) {
        cc_coord[2 * q] = 0.3 + 0.05 * urand();
        cc_coord[2 * q + 1] = 1 / cc_coord[2 * q];
    }
    layer_case cc = { "coordconv2d", 2 * 2 * 4 * 5 * 3, 2 * 2 * 4 * 5 * 4, 9 * 5 * 4 + 4, cconv_f, cconv_b,
                      { 2, 2, 4, 5, 3, 4 } };
    check_layer(&cc);
    layer_case re = { "relu", 200, 200, 0, relu_f, relu_b, { 0 } };
    check_layer(&re);
    /* odd extents: the last window is cut (Keras padding='same') */
    layer_case sp1 = { "maxpool(1,2,2)same", 2 * 3 * 5 * 7 * 2, 2 * 3 * 3 * 4 * 2, 0, spool_f, spool_b,
                       { 2, 3, 5, 7, 2, 1, 2, 2 } };
    check_layer(&sp1);
    layer_case sp3 = { "maxpool(2,3,3)same", 1 * 3 * 7 * 5 * 2, 1 * 2 * 3 * 2 * 2, 0, spool_f, spool_b,
                       { 1, 3, 7, 5, 2, 2, 3, 3 } };
    check_layer(&sp3);
    /* 'same' of (2,2) on 3x5: windows {0,1},{2} and {0,1},{2,3},{4} */
    double px[15], py[6];
    for (int i = 0; i < 15; i++)
        px[i] = i == 14 ? 100 : i;
    tnrec_ref_maxpool3d_same_forward(py, px, 1, 1, 3, 5, 1, 1, 2, 2);
    CHECK(py[0] == 6 && py[1] == 8 && py[2] == 9 && py[3] == 11 && py[4] == 13 && py[5] == 100);
    /* pool 3 on 7: out 3, one padding position before: {0,1}, {2,3,4}, {5,6} */
    tnrec_ref_maxpool3d_same_forward(py, px, 1, 1, 1, 7, 1, 1, 1, 3);
    CHECK(py[0] == 1 && py[1] == 4 && py[2] == 6);
    test_coordconv_as_conv3d();

    /* Dropout masks: same element, same value, whoever draws it. */
    double a[10], b[4];
    tnrec_ref_dropout_mask(a, 10, 0.5, 7, 3, 0);
    tnrec_ref_dropout_mask(b, 4, 0.5, 7, 3, 6);
    CHECK(memcmp(a + 6, b, sizeof b) == 0);

    /* BCE from logits: value, stability, gradient. */
    double z[4] = { -3.0, 0.5, 800.0, -800.0 }, y[4] = { 0, 1, 1, 0 }, w[4] = { 0.5, 7.0, 1.0, 2.0 }, dz[4];
    double loss = tnrec_ref_bce_logits(dz, z, y, w, 4, 4.0);
    double expect = (0.5 * log1p(exp(-3.0)) + 7.0 * log1p(exp(-0.5))) / 4.0;
    CHECK(fabs(loss - expect) < 1e-12);
    CHECK(isfinite(loss) && dz[2] == 0 && dz[3] == 0);
    worst = 0;
    for (int i = 0; i < 2; i++) {
        double keep = z[i], h = 1e-6;
        z[i] = keep + h;
        double up = tnrec_ref_bce_logits(NULL, z, y, w, 4, 4.0);
        z[i] = keep - h;
        double dn = tnrec_ref_bce_logits(NULL, z, y, w, 4, 4.0);
        z[i] = keep;
        expect_close("bce_logits", dz[i], (up - dn) / (2 * h), 1e-6);
    }
    printf("gradcheck %-18s worst relative error %.2e\n", "bce_logits", worst);
}

/* A whole small network: gradient of the double-precision loss. */
static tnrec_input_shape net_in = { 4, 6, 8, 3 };
static void test_network_gradcheck(const char *spec, int has_bn)
{
    tnrec_input_shape in = net_in;
    tnrec_model *m = NULL;
    CHECK_OK(tnrec_model_create(&m, spec, &in, 5));
    if (!m)
        return;
    int n = 3;
    size_t np = tnrec_model_trainable_count(m), nx = (size_t)n * in.frames * in.height * in.width * in.channels;
    double *params = malloc(np * sizeof *params), *grad = malloc(np * sizeof *grad);
    const float *fp = tnrec_model_params(m);
    for (size_t i = 0; i < np; i++)
        params[i] = fp[i] + 0.05 * urand(); /* BN gamma/beta away from 1/0 too */
    double *x = rand_array(nx);
    double label[3] = { 1, 0, 1 }, weight[3] = { 2.0, 0.5, 2.0 };
    double loss = 0;
    CHECK_OK(tnrec_model_ref_loss(&loss, grad, m, params, x, label, weight, n, 42));
    CHECK(isfinite(loss) && loss > 0);
    worst = 0;
    const double h = 1e-6;
    int checked = 0;
    for (size_t i = 0; i < np; i += 3) {
        double keep = params[i], up = 0, dn = 0;
        params[i] = keep + h;
        CHECK_OK(tnrec_model_ref_loss(&up, NULL, m, params, x, label, weight, n, 42));
        params[i] = keep - h;
        CHECK_OK(tnrec_model_ref_loss(&dn, NULL, m, params, x, label, weight, n, 42));
        params[i] = keep;
        expect_close("network", grad[i], (up - dn) / (2 * h), 1e-4);
        checked++;
    }
    printf("gradcheck %-18s %d of %zu parameters, worst relative error %.2e (%s)\n", "whole network", checked, np, worst,
           spec);

    /* The float training step (fast conv, float layers) against it. */
    float *xf = malloc(nx * sizeof *xf), lf[3], wf[3], logits[3];
    for (size_t i = 0; i < nx; i++)
        xf[i] = (float)x[i];
    for (int i = 0; i < 3; i++) {
        lf[i] = (float)label[i];
        wf[i] = (float)weight[i];
    }
    float *pw = tnrec_model_params(m);
    for (size_t i = 0; i < np; i++)
        pw[i] = (float)params[i];
    tnrec_net *net = NULL;
    CHECK_OK(tnrec_net_create(&net, m, 3));
    double floss = 0;
    CHECK_OK(tnrec_net_train_step(net, xf, lf, wf, n, 42, logits, &floss));
    CHECK(fabs(floss - loss) < 1e-5 * fabs(loss) + 1e-6);
    const float *g = tnrec_model_grads(m);
    double num = 0, den = 0;
    for (size_t i = 0; i < np; i++) {
        num += (g[i] - grad[i]) * (g[i] - grad[i]);
        den += grad[i] * grad[i];
    }
    printf("float step vs reference: loss %.9g vs %.9g, gradient relative L2 error %.2e\n", floss, loss, sqrt(num / den));
    CHECK(sqrt(num / den) < 1e-4);
    /* BN moving statistics moved towards the batch statistics. */
    const float *st = tnrec_model_state(m);
    if (has_bn)
        CHECK(st[0] != 0.0f && st[4] != 1.0f);
    else
        CHECK(tnrec_model_param_count(m) == np); /* no BN: nothing but trainable weights */
    tnrec_net_free(net);
    tnrec_model_free(m);
    free(params); free(grad); free(x); free(xf);
}

static void compare_conv(int n, int d, int h, int w, int ci, int co)
{
    size_t nx = (size_t)n * d * h * w * ci, ny = (size_t)n * d * h * w * co, nk = (size_t)27 * ci * co;
    double *x = rand_array(nx), *k = rand_array(nk), *b = rand_array((size_t)co), *dy = rand_array(ny);
    double *y = malloc(ny * sizeof *y), *dx = malloc(nx * sizeof *dx), *dk = malloc(nk * sizeof *dk), *db = malloc((size_t)co * sizeof *db);
    float *xf = malloc(nx * 4), *kf = malloc(nk * 4), *bf = malloc((size_t)co * 4), *dyf = malloc(ny * 4);
    float *yf = malloc(ny * 4), *dxf = malloc(nx * 4), *dkf = malloc(nk * 4), *dbf = malloc((size_t)co * 4);
    for (size_t i = 0; i < nx; i++) xf[i] = (float)x[i];
    for (size_t i = 0; i < nk; i++) kf[i] = (float)k[i];
    for (int i = 0; i < co; i++) bf[i] = (float)b[i];
    for (size_t i = 0; i < ny; i++) dyf[i] = (float)dy[i];
    tnrec_ref_conv3d_forward(y, x, k, b, n, d, h, w, ci, co);
    tnrec_ref_conv3d_backward(dx, dk, db, x, k, dy, n, d, h, w, ci, co);
    CHECK_OK(tnrec_conv3d_forward(yf, xf, kf, bf, n, d, h, w, ci, co));
    CHECK_OK(tnrec_conv3d_backward(dxf, dkf, dbf, xf, kf, dyf, n, d, h, w, ci, co));
    double ey = 0, ex = 0, ek = 0, eb = 0;
    /* Each output sums up to 27*ci terms of size ~1: scale errors by that. */
    double scale_x = sqrt(27.0 * co), scale_y = sqrt(27.0 * ci), scale_k = sqrt((double)n * d * h * w);
    for (size_t i = 0; i < ny; i++) ey = fmax(ey, fabs(yf[i] - y[i]) / scale_y);
    for (size_t i = 0; i < nx; i++) ex = fmax(ex, fabs(dxf[i] - dx[i]) / scale_x);
    for (size_t i = 0; i < nk; i++) ek = fmax(ek, fabs(dkf[i] - dk[i]) / scale_k);
    for (int i = 0; i < co; i++) eb = fmax(eb, fabs(dbf[i] - db[i]) / scale_k);
    printf("fast conv3d n%d %dx%dx%d %d->%d (%s): max scaled error y %.1e dx %.1e dk %.1e db %.1e\n", n, d, h, w, ci, co,
           "direct", ey, ex, ek, eb);
    CHECK(ey < 1e-5 && ex < 1e-5 && ek < 1e-5 && eb < 1e-5);
    free(x); free(k); free(b); free(dy); free(y); free(dx); free(dk); free(db);
    free(xf); free(kf); free(bf); free(dyf); free(yf); free(dxf); free(dkf); free(dbf);
}

/* The kernel gradient where the inputs have a large mean (no-data -3 with
 * small variations) and dy sums to zero per channel, as under batch norm:
 * the sum over positions cancels, so a long running float sum loses
 * digits. The error is scaled by pos * E|x| * E|dy| * 2^-24 (one float
 * rounding of the sum of |terms|); summing each row apart keeps it near
 * 0.1 on every path; one running sum per weight gave 0.5 to 1.2 on the
 * plain path (channel counts not multiples of 16). */
static void compare_conv_offset(int n, int d, int h, int w, int ci, int co)
{
    size_t pos = (size_t)n * d * h * w, nx = pos * ci, ny = pos * co, nk = (size_t)27 * ci * co;
    double *x = rand_array(nx), *dy = rand_array(ny), *dk = malloc(nk * sizeof *dk), *k = calloc(nk, sizeof *k);
    double *mean = calloc((size_t)co, sizeof *mean);
    float *xf = malloc(nx * 4), *dyf = malloc(ny * 4), *dkf = malloc(nk * 4), *kf = calloc(nk, 4);
    for (size_t i = 0; i < nx; i++)
        x[i] = (double)(xf[i] = (float)(-3 + 0.5 * x[i]));
    for (size_t i = 0; i < ny; i++)
        mean[i % co] += dy[i] / (double)pos;
    for (size_t i = 0; i < ny; i++)
        dy[i] = (double)(dyf[i] = (float)(dy[i] - mean[i % co]));
    tnrec_ref_conv3d_backward(NULL, dk, NULL, x, k, dy, n, d, h, w, ci, co);
    CHECK_OK(tnrec_conv3d_backward(NULL, dkf, NULL, xf, kf, dyf, n, d, h, w, ci, co));
    double e = 0;
    for (size_t i = 0; i < nk; i++)
        e = fmax(e, fabs(dkf[i] - dk[i]));
    e /= (double)pos * 1.5 * 0x1p-24;
    printf("fast conv3d kernel gradient, inputs of mean -3, n%d %dx%dx%d %d->%d: scaled error %.2f\n", n, d, h, w, ci,
           co, e);
    CHECK(e < 0.3);
    free(x); free(dy); free(dk); free(k); free(mean); free(xf); free(dyf); free(dkf); free(kf);
}

static void test_models(void)
{
    tnrec_input_shape in = { 4, 120, 240, 12 };
    tnrec_model *m = NULL;
    CHECK_OK(tnrec_model_create(&m, "seed3d", &in, 1));
    if (m) {
        CHECK(tnrec_model_param_count(m) == 886337);
        CHECK(tnrec_model_trainable_count(m) == 885441);
        char *s = NULL;
        CHECK_OK(tnrec_model_summary(m, &s));
        CHECK(s && strstr(s, "Total params: 886,337"));
        CHECK(s && strstr(s, "(None, 2, 15, 30, 128)"));
        free(s);
        /* Glorot uniform: first kernel within sqrt(6 / (27*12 + 27*32)). */
        const float *p = tnrec_model_params(m);
        double lim = sqrt(6.0 / (27.0 * 12 + 27.0 * 32)), mx = 0;
        for (int i = 0; i < 27 * 12 * 32; i++)
            mx = fmax(mx, fabs(p[i]));
        CHECK(mx <= lim && mx > 0.9 * lim);
        tnrec_model_free(m);
        m = NULL;
    }
    CHECK_OK(tnrec_model_create(&m, "tiny", &in, 1));
    if (m) {
        printf("tiny: %llu parameters\n", (unsigned long long)tnrec_model_param_count(m));
        /* p122,c16,p122,c16,p222,c32,g,d16,o on 12 channels: BN's moving
         * mean and variance (2 x 64) are the untrained part */
        CHECK(tnrec_model_param_count(m) == 26785);
        CHECK(tnrec_model_trainable_count(m) == 26657);
        tnrec_model_free(m);
        m = NULL;
    }
    /* tornet-cnn: cnn_baseline.py's build_model, 14 input channels
     * (6 moments x 2 sweeps, 2 range-folded masks) and 2 coordinates:
     * sum of 9 (ci + 2) co + co over the 10 CoordConv2D layers, then the
     * 1x1 head 512*512+512, 512*256+256, 256+1. */
    uint64_t expect = 0;
    int ci = 14;
    const int filters[4] = { 64, 128, 256, 512 }, convs[4] = { 2, 2, 3, 3 };
    for (int b = 0; b < 4; b++)
        for (int j = 0; j < convs[b]; j++) {
            expect += (uint64_t)9 * (ci + 2) * filters[b] + filters[b];
            ci = filters[b];
        }
    expect += 512 * 512 + 512 + 512 * 256 + 256 + 256 + 1;
    CHECK(expect == 8084225);
    tnrec_input_shape tin = { 1, 120, 240, 14 }, native;
    CHECK(tnrec_model_preset_input(&native, "tornet-cnn") && memcmp(&native, &tin, sizeof tin) == 0);
    CHECK(!tnrec_model_preset_input(&native, "tiny"));
    CHECK_OK(tnrec_model_create(&m, "tornet-cnn", &tin, 1));
    if (m) {
        CHECK(tnrec_model_param_count(m) == 8084225);
        CHECK(tnrec_model_trainable_count(m) == 8084225);
        char *s = NULL;
        CHECK_OK(tnrec_model_summary(m, &s));
        CHECK(s && strstr(s, "Total params: 8,084,225"));
        CHECK(s && strstr(s, "(None, 1, 8, 15, 512)")); /* 15 -> 8: 'same' pooling */
        CHECK(s && strstr(s, "CoordConv2D+L2") && strstr(s, "heatmap"));
        free(s);
        /* Glorot uniform over the 3x3 receptive field with the coordinates. */
        const float *p = tnrec_model_params(m);
        double lim = sqrt(6.0 / (9.0 * 16 + 9.0 * 64)), mx = 0;
        for (int i = 0; i < 9 * 16 * 64; i++)
            mx = fmax(mx, fabs(p[i]));
        CHECK(mx <= lim && mx > 0.9 * lim);
        tnrec_model_free(m);
        m = NULL;
    }
    tin.frames = 4;
    CHECK(tnrec_model_create(&m, "tornet-cnn", &tin, 1) == TNREC_EINVAL && m == NULL);
    CHECK(strstr(tnrec_error_last(), "--frames 1 --mask") != NULL);
    /* The coordinates: r = (50 km + 250 m + q x 250 m) x 1e-5 at gate q
     * and 1/r. A center-tap kernel on one coordinate channel, then the
     * scene's maximum, reads the largest of them. */
    tnrec_input_shape cin = { 1, 3, 240, 1 };
    for (int j = 0; j < 2; j++) {
        CHECK_OK(tnrec_model_create(&m, "a1,m", &cin, 1));
        if (!m)
            break;
        float *p = tnrec_model_params(m), x[3 * 240] = { 0 }, logit = 0;
        memset(p, 0, tnrec_model_trainable_count(m) * sizeof *p);
        p[4 * 3 + 1 + j] = 1.0f; /* tap (1,1), channel 1 + j of [x, r, 1/r] */
        p[28] = 1.0f;            /* the 1x1 head: weight 1, bias 0 */
        tnrec_net *net = NULL;
        CHECK_OK(tnrec_net_create(&net, m, 1));
        CHECK_OK(tnrec_net_predict(net, x, 1, &logit));
        double want = j == 0 ? (50000.0 + 250 * 239) * 1e-5 : 1 / ((50000.0 + 250) * 1e-5);
        CHECK(fabs(logit - want) < 1e-5 * want);
        tnrec_net_free(net);
        tnrec_model_free(m);
        m = NULL;
    }
    const char *bad[] = { "c0,g,o", "c8,p1x2,g,o", "c8,g", "g,c8,o", "c8,q3,g,o", "c8,p999,g,o", "c8,s1.5,g,o",
                          "c8,g,o,d4", "c8/abc,g,o", "d8,o", "a0,m", "a8,g,m", "a8,m,o", "h8", "a8,p122t,m",
                          "a8,e1.5,m", "a8,g,e0.1,o", "a8,mm", "g,h8,o", NULL };
    for (int i = 0; bad[i]; i++) {
        CHECK(tnrec_model_create(&m, bad[i], &in, 1) == TNREC_EINVAL && m == NULL);
        CHECK(strstr(tnrec_error_last(), "model spec") != NULL);
    }
}

static void test_adam(void)
{
    tnrec_input_shape in = { 1, 2, 2, 1 };
    tnrec_model *m = NULL;
    CHECK_OK(tnrec_model_create(&m, "g,o", &in, 3));
    if (!m)
        return;
    CHECK(tnrec_model_trainable_count(m) == 2);
    float *p = tnrec_model_params(m), *g = tnrec_model_grads(m);
    p[0] = 0.5f; p[1] = -0.25f;
    tnrec_optim_config cfg;
    tnrec_optim_config_default(&cfg, TNREC_OPT_ADAM);
    CHECK(cfg.beta1 == 0.9 && cfg.beta2 == 0.999 && cfg.epsilon == 1e-7);
    cfg.clipvalue = 1.0;
    tnrec_optim *o = NULL;
    CHECK_OK(tnrec_optim_create(&o, &cfg, m));
    g[0] = 3.0f;  /* clipped to 1 */
    g[1] = -0.2f;
    CHECK_OK(tnrec_optim_step(o, m, 1e-3));
    /* First Adam step moves each weight by lr * sign(g) (up to eps). */
    CHECK(fabs(p[0] - (0.5 - 1e-3)) < 1e-6);
    CHECK(fabs(p[1] - (-0.25 + 1e-3)) < 1e-6);
    CHECK(tnrec_optim_iterations(o) == 1);
    /* Second step by hand. */
    double m0 = 0.1 * 1.0, v0 = 0.001 * 1.0;
    g[0] = 0.5f; g[1] = 0.0f;
    double m1 = 0.9 * m0 + 0.1 * 0.5, v1 = 0.999 * v0 + 0.001 * 0.25;
    double alpha = 1e-3 * sqrt(1 - 0.999 * 0.999) / (1 - 0.9 * 0.9);
    double expect = (0.5 - 1e-3) - alpha * m1 / (sqrt(v1) + 1e-7);
    CHECK_OK(tnrec_optim_step(o, m, 1e-3));
    CHECK(fabs(p[0] - expect) < 1e-6);
    g[0] = NAN;
    CHECK(tnrec_optim_step(o, m, 1e-3) == TNREC_ERANGE);
    tnrec_optim_free(o);
    /* clipnorm rescales each tensor to that norm. */
    cfg.clipvalue = 0;
    cfg.clipnorm = 0.5;
    CHECK_OK(tnrec_optim_create(&o, &cfg, m));
    g[0] = 3.0f; g[1] = 4.0f;
    CHECK_OK(tnrec_optim_step(o, m, 1e-3));
    CHECK(fabs(g[0] - 0.5f) < 1e-6 && fabs(g[1] - 0.5f) < 1e-6); /* two tensors of one element */
    tnrec_optim_free(o);
    tnrec_model_free(m);
}

int main(void)
{
    test_layers();
    test_network_gradcheck("c4/0.01,p122,s0.3,c5,p222,g,d6/0.02,x0.2,o", 1);
    test_network_gradcheck("k4/0.01,p122,s0.3,k5,p222,g,d6/0.02,x0.2,o", 0);
    /* tornet-cnn's layers: odd extents for the 'same' pools, several
     * frames (each convolved on its own), element dropout, 1x1 head. */
    net_in = (tnrec_input_shape){ 2, 7, 9, 3 };
    test_network_gradcheck("a4/0.01,a5,p122s,e0.3,a6/0.01,p222s,e0.2,h5/0.02,h4,m", 0);
    net_in = (tnrec_input_shape){ 1, 5, 11, 3 };
    test_network_gradcheck("a16/0.01,p122s,e0.1,a16,p122s,h8,m", 0);
    compare_conv(2, 3, 4, 21, 5, 16);
    compare_conv(1, 2, 3, 19, 12, 32);
    compare_conv(2, 2, 3, 7, 4, 6);
    compare_conv(1, 2, 3, 9, 3, 13); /* plain path: one 8-wide block and 5 more */
    compare_conv(1, 1, 1, 1, 3, 16);
    /* 2*4*8*32 positions x 8*16 channels x 27 = 7.1e6 operations: above
     * the 4e6 where the backward splits the kernel gradient over threads
     * (ctest runs this with OMP_NUM_THREADS=3). */
    compare_conv(2, 4, 8, 32, 8, 16);
    compare_conv_offset(4, 2, 60, 120, 4, 8);
    compare_conv_offset(2, 2, 30, 60, 12, 6);
    compare_conv_offset(4, 2, 60, 120, 4, 16);
    test_models();
    test_adam();
    return tnrec_test_result("test_train_layers");
}
