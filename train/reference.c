/* train/reference.c: the clean, minimal reference of every layer.
 *
 * Forward and backward of each layer of the detector as plain loops over
 * NDHWC arrays, written to be read and to be the ground truth: the gradient
 * checks test these in double precision, and the fast path
 * (train/conv_fast.c) is tested against them. Nothing here is tuned.
 *
 * The file is compiled twice: as is, it defines the double-precision
 * tnrec_ref_* functions (exported for the tests, tnrec/testing.h); train/reference_float.c includes it with
 * REF_REAL = float to give the float versions (trn_ref32_*) that the
 * trainer uses for the cheap layers.
 *
 * Invariants: backward functions overwrite their outputs (never
 * accumulate); NULL outputs are skipped; Keras semantics throughout
 * (BatchNormalization normalises with the biased batch variance;
 * LeakyReLU's slope at exactly 0 is alpha; 'valid' pooling floors). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "splitmix64.h"

#ifndef REF_REAL
#define REF_REAL double
#define REF_FN(name) tnrec_ref_##name
#define TNREC_TESTING 1 /* tnrec_ref_* are declared for the tests only */
#include "tnrec/testing.h"
#else
#include "nn.h"
#endif

typedef REF_REAL real;

/* Index of element (i, z, y, x, ch) in an n x d x h x w x c array. */
#define AT(i, z, y, x, ch, d, h, w, c) \
    (((((size_t)(i) * (d) + (z)) * (h) + (y)) * (w) + (x)) * (size_t)(c) + (ch))

void REF_FN(conv3d_forward)(real *y, const real *x, const real *k, const real *b, int n, int d,
                            int h, int w, int ci, int co)
{
    for (int i = 0; i < n; i++)
        for (int z = 0; z < d; z++)
            for (int r = 0; r < h; r++)
                for (int q = 0; q < w; q++)
                    for (int o = 0; o < co; o++) {
                        real acc = b ? b[o] : 0;
                        for (int kz = 0; kz < 3; kz++)
                            for (int ky = 0; ky < 3; ky++)
                                for (int kx = 0; kx < 3; kx++) {
                                    int zz = z + kz - 1, yy = r + ky - 1, xx = q + kx - 1;
                                    if (zz < 0 || zz >= d || yy < 0 || yy >= h || xx < 0 || xx >= w)
                                        continue; /* 'same' zero padding */
                                    const real *xp = x + AT(i, zz, yy, xx, 0, d, h, w, ci);
                                    const real *kp = k + (((size_t)kz * 3 + ky) * 3 + kx) * ci * co;
                                    for (int c = 0; c < ci; c++)
                                        acc += xp[c] * kp[(size_t)c * co + o];
                                }
                        y[AT(i, z, r, q, o, d, h, w, co)] = acc;
                    }
}

void REF_FN(conv3d_backward)(real *dx, real *dk, real *db, const real *x, const real *k,
                             const real *dy, int n, int d, int h, int w, int ci, int co)
{
    size_t xlen = (size_t)n * d * h * w * ci;
    if (dx)
        memset(dx, 0, xlen * sizeof *dx);
    if (dk)
        memset(dk, 0, (size_t)27 * ci * co * sizeof *dk);
    if (db)
        memset(db, 0, (size_t)co * sizeof *db);
    for (int i = 0; i < n; i++)
        for (int z = 0; z < d; z++)
            for (int r = 0; r < h; r++)
                for (int q = 0; q < w; q++)
                    for (int o = 0; o < co; o++) {
                        real g = dy[AT(i, z, r, q, o, d, h, w, co)];
                        if (db)
                            db[o] += g;
                        for (int kz = 0; kz < 3; kz++)
                            for (int ky = 0; ky < 3; ky++)
                                for (int kx = 0; kx < 3; kx++) {
                                    int zz = z + kz - 1, yy = r + ky - 1, xx = q + kx - 1;
                                    if (zz < 0 || zz >= d || yy < 0 || yy >= h || xx < 0 || xx >= w)
                                        continue;
                                    size_t xo = AT(i, zz, yy, xx, 0, d, h, w, ci);
                                    size_t ko = (((size_t)kz * 3 + ky) * 3 + kx) * ci * co;
                                    for (int c = 0; c < ci; c++) {
                                        if (dx)
                                            dx[xo + c] += g * k[ko + (size_t)c * co + o];
                                        if (dk)
                                            dk[ko + (size_t)c * co + o] += g * x[xo + c];
                                    }
                                }
                    }
}

void REF_FN(batchnorm_forward_train)(real *y, real *mean, real *var, const real *x,
                                     const real *gamma, const real *beta, size_t m, int c,
                                     real eps)
{
    for (int ch = 0; ch < c; ch++) {
        double s = 0, ss = 0;
        for (size_t p = 0; p < m; p++)
            s += x[p * c + ch];
        double mu = s / (double)m;
        for (size_t p = 0; p < m; p++) {
            double t = x[p * c + ch] - mu;
            ss += t * t;
        }
        double v = ss / (double)m; /* biased, as Keras normalises */
        mean[ch] = (real)mu;
        var[ch] = (real)v;
        real inv = (real)(1.0 / sqrt(v + eps));
        for (size_t p = 0; p < m; p++)
            y[p * c + ch] = gamma[ch] * ((x[p * c + ch] - (real)mu) * inv) + beta[ch];
    }
}

void REF_FN(batchnorm_forward_infer)(real *y, const real *x, const real *gamma, const real *beta,
                                     const real *moving_mean, const real *moving_var, size_t m,
                                     int c, real eps)
{
    for (size_t p = 0; p < m; p++)
        for (int ch = 0; ch < c; ch++) {
            real inv = (real)(1.0 / sqrt((double)moving_var[ch] + eps));
            y[p * c + ch] = gamma[ch] * (x[p * c + ch] - moving_mean[ch]) * inv + beta[ch];
        }
}

void REF_FN(batchnorm_backward)(real *dx, real *dgamma, real *dbeta, const real *x,
                                const real *gamma, const real *mean, const real *var,
                                const real *dy, size_t m, int c, real eps)
{
    for (int ch = 0; ch < c; ch++) {
        double inv = 1.0 / sqrt((double)var[ch] + eps);
        double sdy = 0, sdyx = 0;
        for (size_t p = 0; p < m; p++) {
            double xh = (x[p * c + ch] - mean[ch]) * inv;
            sdy += dy[p * c + ch];
            sdyx += dy[p * c + ch] * xh;
        }
        if (dgamma)
            dgamma[ch] = (real)sdyx;
        if (dbeta)
            dbeta[ch] = (real)sdy;
        if (dx) {
            /* d/dx of gamma * (x - mean) / sqrt(var + eps) with mean and var
             * taken over the same m positions. */
            double f = gamma[ch] * inv / (double)m;
            for (size_t p = 0; p < m; p++) {
                double xh = (x[p * c + ch] - mean[ch]) * inv;
                dx[p * c + ch] = (real)(f * ((double)m * dy[p * c + ch] - sdy - xh * sdyx));
            }
        }
    }
}

void REF_FN(leaky_relu_forward)(real *y, const real *x, size_t len, real alpha)
{
    for (size_t i = 0; i < len; i++)
        y[i] = x[i] > 0 ? x[i] : alpha * x[i];
}

void REF_FN(leaky_relu_backward)(real *dx, const real *x, const real *dy, size_t len, real alpha)
{
    for (size_t i = 0; i < len; i++)
        dx[i] = x[i] > 0 ? dy[i] : alpha * dy[i];
}

/* Position of the maximum of one pooling window (the first one on ties). */
static size_t REF_FN(pool_argmax)(const real *x, int i, int z, int r, int q, int ch, int d,
                                  int h, int w, int c, int pd, int ph, int pw)
{
    size_t best = AT(i, z * pd, r * ph, q * pw, ch, d, h, w, c);
    for (int a = 0; a < pd; a++)
        for (int bb = 0; bb < ph; bb++)
            for (int e = 0; e < pw; e++) {
                size_t at = AT(i, z * pd + a, r * ph + bb, q * pw + e, ch, d, h, w, c);
                if (x[at] > x[best])
                    best = at;
            }
    return best;
}

void REF_FN(maxpool3d_forward)(real *y, const real *x, int n, int d, int h, int w, int c, int pd,
                               int ph, int pw)
{
    int od = d / pd, oh = h / ph, ow = w / pw;
    for (int i = 0; i < n; i++)
        for (int z = 0; z < od; z++)
            for (int r = 0; r < oh; r++)
                for (int q = 0; q < ow; q++)
                    for (int ch = 0; ch < c; ch++)
                        y[AT(i, z, r, q, ch, od, oh, ow, c)] =
                            x[REF_FN(pool_argmax)(x, i, z, r, q, ch, d, h, w, c, pd, ph, pw)];
}

void REF_FN(maxpool3d_backward)(real *dx, const real *x, const real *dy, int n, int d, int h,
                                int w, int c, int pd, int ph, int pw)
{
    int od = d / pd, oh = h / ph, ow = w / pw;
    memset(dx, 0, (size_t)n * d * h * w * c * sizeof *dx);
    for (int i = 0; i < n; i++)
        for (int z = 0; z < od; z++)
            for (int r = 0; r < oh; r++)
                for (int q = 0; q < ow; q++)
                    for (int ch = 0; ch < c; ch++)
                        dx[REF_FN(pool_argmax)(x, i, z, r, q, ch, d, h, w, c, pd, ph, pw)] +=
                            dy[AT(i, z, r, q, ch, od, oh, ow, c)];
}

void REF_FN(channel_scale_forward)(real *y, const real *x, const real *scale, int n, size_t s,
                                   int c)
{
    for (int i = 0; i < n; i++)
        for (size_t p = 0; p < s; p++)
            for (int ch = 0; ch < c; ch++)
                y[((size_t)i * s + p) * c + ch] = x[((size_t)i * s + p) * c + ch] * scale[(size_t)i * c + ch];
}

void REF_FN(channel_scale_backward)(real *dx, const real *dy, const real *scale, int n, size_t s,
                                    int c)
{
    REF_FN(channel_scale_forward)(dx, dy, scale, n, s, c);
}

/* Counter-based (common/splitmix64.h): mask element `first + j` of stream
 * `stream` is the same whoever draws it, the GPU kernels included. */
void REF_FN(dropout_mask)(real *scale, size_t count, double rate, uint64_t seed, uint64_t stream,
                          uint64_t first)
{
    uint64_t base = tnrec__splitmix64(seed ^ tnrec__splitmix64(stream));
    real keep = (real)(1.0 / (1.0 - rate));
    for (size_t j = 0; j < count; j++) {
        double u = (double)(tnrec__splitmix64(base + first + j) >> 11) * 0x1.0p-53;
        scale[j] = u < rate ? 0 : keep;
    }
}

void REF_FN(global_maxpool_forward)(real *y, const real *x, int n, size_t s, int c)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            real m = x[(size_t)i * s * c + ch];
            for (size_t p = 1; p < s; p++)
                if (x[((size_t)i * s + p) * c + ch] > m)
                    m = x[((size_t)i * s + p) * c + ch];
            y[(size_t)i * c + ch] = m;
        }
}

void REF_FN(global_maxpool_backward)(real *dx, const real *x, const real *dy, int n, size_t s,
                                     int c)
{
    memset(dx, 0, (size_t)n * s * c * sizeof *dx);
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            size_t best = (size_t)i * s * c + ch;
            for (size_t p = 1; p < s; p++)
                if (x[((size_t)i * s + p) * c + ch] > x[best])
                    best = ((size_t)i * s + p) * c + ch;
            dx[best] = dy[(size_t)i * c + ch];
        }
}

void REF_FN(dense_forward)(real *y, const real *x, const real *wt, const real *b, int n, int in,
                           int out)
{
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            real acc = b ? b[o] : 0;
            for (int j = 0; j < in; j++)
                acc += x[(size_t)i * in + j] * wt[(size_t)j * out + o];
            y[(size_t)i * out + o] = acc;
        }
}

void REF_FN(dense_backward)(real *dx, real *dw, real *db, const real *x, const real *wt,
                            const real *dy, int n, int in, int out)
{
    if (dx)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < in; j++) {
                real acc = 0;
                for (int o = 0; o < out; o++)
                    acc += dy[(size_t)i * out + o] * wt[(size_t)j * out + o];
                dx[(size_t)i * in + j] = acc;
            }
    if (dw)
        for (int j = 0; j < in; j++)
            for (int o = 0; o < out; o++) {
                real acc = 0;
                for (int i = 0; i < n; i++)
                    acc += x[(size_t)i * in + j] * dy[(size_t)i * out + o];
                dw[(size_t)j * out + o] = acc;
            }
    if (db)
        for (int o = 0; o < out; o++) {
            real acc = 0;
            for (int i = 0; i < n; i++)
                acc += dy[(size_t)i * out + o];
            db[o] = acc;
        }
}

/* CoordConv2D: each frame convolved on its own (a 3x3 kernel, no taps
 * across frames) over the channels of x followed by the two coordinate
 * channels of its range gate, as cnn_baseline.py concatenates them. */
void REF_FN(coordconv2d_forward)(real *y, const real *x, const real *coord, const real *k,
                                 const real *b, int n, int d, int h, int w, int ci, int co)
{
    int cc = ci + 2;
    for (int i = 0; i < n; i++)
        for (int z = 0; z < d; z++)
            for (int r = 0; r < h; r++)
                for (int q = 0; q < w; q++)
                    for (int o = 0; o < co; o++) {
                        real acc = b ? b[o] : 0;
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int yy = r + ky - 1, xx = q + kx - 1;
                                if (yy < 0 || yy >= h || xx < 0 || xx >= w)
                                    continue; /* 'same' zero padding */
                                const real *xp = x + AT(i, z, yy, xx, 0, d, h, w, ci);
                                const real *kp = k + ((size_t)ky * 3 + kx) * cc * co;
                                for (int c = 0; c < ci; c++)
                                    acc += xp[c] * kp[(size_t)c * co + o];
                                for (int j = 0; j < 2; j++)
                                    acc += coord[(size_t)xx * 2 + j] * kp[(size_t)(ci + j) * co + o];
                            }
                        y[AT(i, z, r, q, o, d, h, w, co)] = acc;
                    }
}

void REF_FN(coordconv2d_backward)(real *dx, real *dk, real *db, const real *x, const real *coord,
                                  const real *k, const real *dy, int n, int d, int h, int w, int ci,
                                  int co)
{
    int cc = ci + 2;
    if (dx)
        memset(dx, 0, (size_t)n * d * h * w * ci * sizeof *dx);
    if (dk)
        memset(dk, 0, (size_t)9 * cc * co * sizeof *dk);
    if (db)
        memset(db, 0, (size_t)co * sizeof *db);
    for (int i = 0; i < n; i++)
        for (int z = 0; z < d; z++)
            for (int r = 0; r < h; r++)
                for (int q = 0; q < w; q++)
                    for (int o = 0; o < co; o++) {
                        real g = dy[AT(i, z, r, q, o, d, h, w, co)];
                        if (db)
                            db[o] += g;
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int yy = r + ky - 1, xx = q + kx - 1;
                                if (yy < 0 || yy >= h || xx < 0 || xx >= w)
                                    continue;
                                size_t xo = AT(i, z, yy, xx, 0, d, h, w, ci);
                                size_t ko = ((size_t)ky * 3 + kx) * cc * co;
                                for (int c = 0; c < ci; c++) {
                                    if (dx)
                                        dx[xo + c] += g * k[ko + (size_t)c * co + o];
                                    if (dk)
                                        dk[ko + (size_t)c * co + o] += g * x[xo + c];
                                }
                                if (dk)
                                    for (int j = 0; j < 2; j++)
                                        dk[ko + (size_t)(ci + j) * co + o] += g * coord[(size_t)xx * 2 + j];
                            }
                    }
}

void REF_FN(relu_forward)(real *y, const real *x, size_t len)
{
    for (size_t i = 0; i < len; i++)
        y[i] = x[i] > 0 ? x[i] : 0;
}

void REF_FN(relu_backward)(real *dx, const real *x, const real *dy, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dx[i] = x[i] > 0 ? dy[i] : 0;
}

/* Window [lo, hi) of output o of a 'same' pooling of size p over in. */
static void REF_FN(same_window)(int *lo, int *hi, int o, int p, int in)
{
    int out = (in + p - 1) / p;
    *lo = o * p - (out * p - in) / 2;
    *hi = *lo + p;
    if (*lo < 0)
        *lo = 0;
    if (*hi > in)
        *hi = in;
}

static size_t REF_FN(same_argmax)(const real *x, int i, int z, int r, int q, int ch, int d, int h,
                                  int w, int c, int pd, int ph, int pw)
{
    int z0, z1, y0, y1, x0, x1;
    REF_FN(same_window)(&z0, &z1, z, pd, d);
    REF_FN(same_window)(&y0, &y1, r, ph, h);
    REF_FN(same_window)(&x0, &x1, q, pw, w);
    size_t best = AT(i, z0, y0, x0, ch, d, h, w, c);
    for (int a = z0; a < z1; a++)
        for (int bb = y0; bb < y1; bb++)
            for (int e = x0; e < x1; e++) {
                size_t at = AT(i, a, bb, e, ch, d, h, w, c);
                if (x[at] > x[best])
                    best = at;
            }
    return best;
}

void REF_FN(maxpool3d_same_forward)(real *y, const real *x, int n, int d, int h, int w, int c,
                                    int pd, int ph, int pw)
{
    int od = (d + pd - 1) / pd, oh = (h + ph - 1) / ph, ow = (w + pw - 1) / pw;
    for (int i = 0; i < n; i++)
        for (int z = 0; z < od; z++)
            for (int r = 0; r < oh; r++)
                for (int q = 0; q < ow; q++)
                    for (int ch = 0; ch < c; ch++)
                        y[AT(i, z, r, q, ch, od, oh, ow, c)] =
                            x[REF_FN(same_argmax)(x, i, z, r, q, ch, d, h, w, c, pd, ph, pw)];
}

void REF_FN(maxpool3d_same_backward)(real *dx, const real *x, const real *dy, int n, int d, int h,
                                     int w, int c, int pd, int ph, int pw)
{
    int od = (d + pd - 1) / pd, oh = (h + ph - 1) / ph, ow = (w + pw - 1) / pw;
    memset(dx, 0, (size_t)n * d * h * w * c * sizeof *dx);
    for (int i = 0; i < n; i++)
        for (int z = 0; z < od; z++)
            for (int r = 0; r < oh; r++)
                for (int q = 0; q < ow; q++)
                    for (int ch = 0; ch < c; ch++)
                        dx[REF_FN(same_argmax)(x, i, z, r, q, ch, d, h, w, c, pd, ph, pw)] +=
                            dy[AT(i, z, r, q, ch, od, oh, ow, c)];
}

double REF_FN(bce_logits)(real *dz, const real *z, const real *label, const real *weight, int n,
                          double denom)
{
    double total = 0;
    for (int i = 0; i < n; i++) {
        double zi = z[i], yi = label[i], wi = weight ? weight[i] : 1.0;
        /* log(1 + exp(-|z|)) never overflows; equals -y log p - (1-y) log(1-p). */
        total += wi * ((zi > 0 ? zi : 0) - zi * yi + log1p(exp(-fabs(zi))));
        if (dz) {
            double p = zi >= 0 ? 1.0 / (1.0 + exp(-zi)) : exp(zi) / (1.0 + exp(zi));
            dz[i] = (real)(wi * (p - yi) / denom);
        }
    }
    return total / denom;
}
