/* train/network.c: running a model on batches in float: the training step
 * (forward, loss, backward, gradient all-reduce, L2) and inference.
 *
 * Convolutions go to the fast kernels (conv_fast.c; in inference
 * conv_infer.c with batch norm and activation fused; in bf16 training
 * conv_infer.c's bfloat16 kernel with the fusion off and
 * conv_wgrad_bf16.c); the other layers use
 * the float reference layers, except BatchNorm, which is written here
 * because its statistics are summed over ranks (synchronised batch norm):
 * a 2-process run then computes exactly what a 1-process run with the same
 * global batch computes, up to the order of float sums.
 *
 * CoordConv2D runs on the same fast Conv3D: its input and coordinates are
 * copied into one buffer and its 3x3 kernel into the middle frame plane of
 * a 3x3x3 kernel whose other planes are zero, so each frame is convolved
 * on its own. 1x1 convolutions are the Dense layer at every position.
 *
 * Buffers: one output buffer per layer, except (Leaky)ReLU and dropout,
 * which work in place on their input (their backward needs only their
 * output or their mask); two gradient buffers used in turn; for
 * CoordConv2D, a concatenated input, its gradient and the 3x3x3 kernel and
 * its gradient, shared by the layers. All sized once for max_batch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TNREC_TESTING 1 /* tnrec_test_conv3d_bf16 (tnrec/testing.h) */
#include "common.h"
#include "conv_infer.h"
#include "conv_wgrad_bf16.h"
#include "nn.h"
#include "tnrec/config.h"
#include "tnrec/testing.h"

#if TNREC_HAVE_OPENMP
#include <omp.h>
#endif

struct tnrec_net {
    tnrec_model *m;
    int max_batch;
    float **out;           /* out[i]: output buffer of layer i (may alias) */
    int *owned;            /* out[i] was allocated for layer i */
    float *gbuf[2];
    float *bn_mean, *bn_var; /* batch statistics, indexed like the model state */
    float *masks;
    size_t *mask_off;
    float *dlogits;
    float *coords;           /* CoordConv coordinates of each sample: max_batch x ncoords */
    double *cscratch, *cwork; /* one chip's coordinates while computing them */
    float *xcat, *dxcat;     /* CoordConv2D: input and coordinates, and their gradient */
    float *k27, *dk27;       /* CoordConv2D: its kernel as a 3x3x3 one, and the gradient */
    int infer_fast;          /* inference convolutions through conv_infer.c (AVX-512) */
    int bf16;                /* ... with bfloat16 products (trn_net_set_precision) */
    void *xpad;              /* inference: a convolution's input, rows padded (float or bf16) */
    uint16_t *kbf;           /* inference: a kernel packed as bfloat16 pairs */
    float *ep;               /* inference: batch norm's per-channel values (4 x c) */
    int bf16_train;          /* training convolutions in bfloat16 products (trn_net_set_train_precision) */
    float *kflip;            /* bf16 training: a kernel flipped for the input gradient */
    float *zeros;            /* bf16 training: a zero bias for the input gradient */
    trn_wgrad_ws wws;        /* bf16 training: the kernel gradient's packed operands */
};

void tnrec_net_free(tnrec_net *net)
{
    if (!net)
        return;
    if (net->out)
        for (int i = 0; i < net->m->nlayers; i++)
            if (net->owned[i])
                free(net->out[i]);
    free(net->out);
    free(net->owned);
    free(net->gbuf[0]);
    free(net->gbuf[1]);
    free(net->bn_mean);
    free(net->bn_var);
    free(net->masks);
    free(net->mask_off);
    free(net->dlogits);
    free(net->coords);
    free(net->cscratch);
    free(net->cwork);
    free(net->xcat);
    free(net->dxcat);
    free(net->k27);
    free(net->dk27);
    free(net->xpad);
    free(net->kbf);
    free(net->ep);
    free(net->kflip);
    free(net->zeros);
    trn_wgrad_ws_free(&net->wws);
    free(net);
}

/* Channels of a convolution's input as the inference kernels store it:
 * even, for bfloat16 pairs. */
static int infer_channels(int ci)
{
    return ci + (ci & 1);
}

/* A convolution conv_infer.c can run: 16k output channels. */
static int infer_conv_ok(const trn_layer *L)
{
    return L->kind == TRN_CONV && L->c % 16 == 0;
}

/* The inference convolutions' scratch, sized for the largest layer;
 * 1 when out of memory. */
static int infer_alloc(tnrec_net *net)
{
    const tnrec_model *m = net->m;
    size_t xp = 0, kb = 0, ep = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const trn_layer *L = &m->layers[i];
        if (!infer_conv_ok(L))
            continue;
        size_t cp = (size_t)infer_channels(L->in_c);
        size_t e = (size_t)net->max_batch * L->d * L->h * (L->w + 2) * cp;
        xp = e > xp ? e : xp;
        kb = 27 * cp * L->c > kb ? 27 * cp * L->c : kb;
        ep = 4 * (size_t)L->c > ep ? 4 * (size_t)L->c : ep;
    }
    if (!xp)
        return 0;
    net->xpad = malloc(xp * sizeof(float));
    net->kbf = malloc(kb * sizeof *net->kbf);
    net->ep = malloc(ep * sizeof *net->ep);
    if (!net->xpad || !net->kbf || !net->ep)
        return 1;
    net->infer_fast = 1;
    return 0;
}

tnrec_err tnrec_net_create(tnrec_net **out, tnrec_model *m, int max_batch)
{
    *out = NULL;
    if (max_batch < 1)
        return tnrec__fail(TNREC_EINVAL, "batch size must be at least 1");
    tnrec_net *net = calloc(1, sizeof *net);
    if (!net)
        goto oom;
    net->m = m;
    net->max_batch = max_batch;
    int nl = m->nlayers;
    net->out = calloc((size_t)nl, sizeof *net->out);
    net->owned = calloc((size_t)nl, sizeof *net->owned);
    net->mask_off = calloc((size_t)nl, sizeof *net->mask_off);
    if (!net->out || !net->owned || !net->mask_off)
        goto oom;
    size_t maxe = (size_t)m->in.frames * m->in.height * m->in.width * m->in.channels, nmask = 0;
    size_t maxcat = 0, maxk = 0;
    for (int i = 0; i < nl; i++) {
        const trn_layer *L = &m->layers[i];
        size_t e = trn_layer_out_elems(L);
        if (e > maxe)
            maxe = e;
        if (L->inplace && i > 0) {
            net->out[i] = net->out[i - 1];
        } else {
            if (!(net->out[i] = malloc((size_t)max_batch * e * sizeof(float))))
                goto oom;
            net->owned[i] = 1;
        }
        if (L->kind == TRN_SDROP || L->kind == TRN_DROP) {
            net->mask_off[i] = nmask;
            nmask += (size_t)max_batch * L->c;
        } else if (L->kind == TRN_EDROP) {
            net->mask_off[i] = nmask;
            nmask += (size_t)max_batch * e;
        } else if (L->kind == TRN_CCONV) {
            size_t cat = (size_t)max_batch * L->d * L->h * L->w * (L->in_c + TRN_NCOORD);
            size_t k = (size_t)27 * (L->in_c + TRN_NCOORD) * L->c;
            maxcat = cat > maxcat ? cat : maxcat;
            maxk = k > maxk ? k : maxk;
        }
    }
    if (maxcat) {
        net->xcat = malloc(maxcat * sizeof(float));
        net->dxcat = malloc(maxcat * sizeof(float));
        net->k27 = malloc(maxk * sizeof(float));
        net->dk27 = malloc(maxk * sizeof(float));
        net->coords = malloc((size_t)max_batch * m->ncoords * sizeof(float));
        net->cscratch = malloc((size_t)m->in.width * TRN_NCOORD * sizeof(double));
        net->cwork = malloc(m->ncoords * sizeof(double));
        if (!net->xcat || !net->dxcat || !net->k27 || !net->dk27 || !net->coords || !net->cscratch || !net->cwork)
            goto oom;
    }
    if (trn_infer_fast_ok() && infer_alloc(net))
        goto oom;
    net->gbuf[0] = malloc((size_t)max_batch * maxe * sizeof(float));
    net->gbuf[1] = malloc((size_t)max_batch * maxe * sizeof(float));
    net->bn_mean = calloc(m->nstate + 1, sizeof(float));
    net->bn_var = calloc(m->nstate + 1, sizeof(float));
    net->masks = malloc((nmask + 1) * sizeof(float));
    net->dlogits = malloc((size_t)max_batch * sizeof(float));
    if (!net->gbuf[0] || !net->gbuf[1] || !net->bn_mean || !net->bn_var || !net->masks || !net->dlogits)
        goto oom;
    *out = net;
    return TNREC_OK;
oom:
    tnrec_net_free(net);
    return tnrec__fail(TNREC_ENOMEM, "out of memory for a batch of %d on model '%s'\nhint: use a smaller --batch",
                       max_batch, m->spec);
}

/* Threads for an elementwise pass over `work` values: one below a size
 * where waking threads costs more than it saves. */
static int n_threads(size_t work)
{
#if TNREC_HAVE_OPENMP
    return work > ((size_t)1 << 18) ? omp_get_max_threads() : 1;
#else
    (void)work;
    return 1;
#endif
}

/* [lo, hi) of `len` items for thread tid of nt. */
static void share(size_t *lo, size_t *hi, size_t len, int tid, int nt)
{
    *lo = len * (size_t)tid / (size_t)nt;
    *hi = len * (size_t)(tid + 1) / (size_t)nt;
}

/* The reference LeakyReLU, forward and backward, split across threads:
 * each value is computed on its own, so the split changes nothing. */
static void leaky_forward(float *y, const float *x, size_t len, float alpha)
{
    int nt = n_threads(len);
#if TNREC_HAVE_OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
        int tid = 0, th = 1;
#if TNREC_HAVE_OPENMP
        tid = omp_get_thread_num();
        th = omp_get_num_threads();
#endif
        size_t lo, hi;
        share(&lo, &hi, len, tid, th);
        trn_ref32_leaky_relu_forward(y + lo, x + lo, hi - lo, alpha);
    }
    (void)nt;
}

static void leaky_backward(float *dx, const float *y, const float *dy, size_t len, float alpha)
{
    int nt = n_threads(len);
#if TNREC_HAVE_OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
        int tid = 0, th = 1;
#if TNREC_HAVE_OPENMP
        tid = omp_get_thread_num();
        th = omp_get_num_threads();
#endif
        size_t lo, hi;
        share(&lo, &hi, len, tid, th);
        trn_ref32_leaky_relu_backward(dx + lo, y + lo, dy + lo, hi - lo, alpha);
    }
    (void)nt;
}

/* The reference max pooling, forward (dx NULL) or backward, split across
 * threads by blocks of output frames: with 'valid' pooling and a frame
 * count that pd divides, each block of pd input frames is a sample of its
 * own; otherwise the split is by samples. Each output (and each input
 * gradient) is computed as the reference computes it. */
static void pool_run(float *dx, float *y, const float *x, const float *dy, const trn_layer *L, int n)
{
    int pd = L->pool[0], ph = L->pool[1], pw = L->pool[2];
    int slab = !L->same && L->in_d % pd == 0;
    int units = slab ? n * (L->in_d / pd) : n, ud = slab ? pd : L->in_d;
    size_t in_sz = (size_t)ud * L->in_h * L->in_w * L->c, out_sz = (size_t)(slab ? 1 : L->d) * L->h * L->w * L->c;
    int nt = n_threads((size_t)units * in_sz);
#if TNREC_HAVE_OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
        int tid = 0, th = 1;
#if TNREC_HAVE_OPENMP
        tid = omp_get_thread_num();
        th = omp_get_num_threads();
#endif
        size_t lo, hi;
        share(&lo, &hi, (size_t)units, tid, th);
        int k = (int)(hi - lo);
        const float *xs = x + lo * in_sz;
        if (k > 0 && !dx && L->same)
            trn_ref32_maxpool3d_same_forward(y + lo * out_sz, xs, k, ud, L->in_h, L->in_w, L->c, pd, ph, pw);
        else if (k > 0 && !dx)
            trn_ref32_maxpool3d_forward(y + lo * out_sz, xs, k, ud, L->in_h, L->in_w, L->c, pd, ph, pw);
        else if (k > 0 && L->same)
            trn_ref32_maxpool3d_same_backward(dx + lo * in_sz, xs, dy + lo * out_sz, k, ud, L->in_h, L->in_w, L->c, pd,
                                              ph, pw);
        else if (k > 0)
            trn_ref32_maxpool3d_backward(dx + lo * in_sz, xs, dy + lo * out_sz, k, ud, L->in_h, L->in_w, L->c, pd, ph,
                                         pw);
    }
    (void)nt;
}

/* Per-channel sums over this rank's m positions, in double:
 * tot[ch] = sum of a, tot[c + ch] = sum of a * (b - mu[ch]) (mu NULL: 0).
 * Each of the nt threads sums its own slice into part (nt * 2c zeroed
 * doubles); the slices are added in thread order, so the result does not
 * depend on scheduling. tot must be zeroed. */
static void channel_sums(double *tot, double *part, int nt, const float *a, const float *b,
                         const float *mu, size_t m, int c)
{
#if TNREC_HAVE_OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
        int tid = 0, th = 1;
#if TNREC_HAVE_OPENMP
        tid = omp_get_thread_num();
        th = omp_get_num_threads();
#endif
        double *s = part + (size_t)tid * 2 * c, *s2 = s + c;
        size_t lo = m * (size_t)tid / (size_t)th, hi = m * (size_t)(tid + 1) / (size_t)th;
        for (size_t p = lo; p < hi; p++)
            for (int ch = 0; ch < c; ch++) {
                double v = a[p * c + ch];
                s[ch] += v;
                s2[ch] += v * (mu ? b[p * c + ch] - mu[ch] : b[p * c + ch]);
            }
    }
    for (int t = 0; t < nt; t++)
        for (int j = 0; j < 2 * c; j++)
            tot[j] += part[(size_t)t * 2 * c + j];
}

/* Batch-norm forward in training mode: sums over this rank's m positions,
 * summed over ranks, normalised with the global count. */
static tnrec_err bn_forward_train(float *y, const float *x, size_t m, size_t m_global, int c,
                                  const float *gamma, const float *beta, float *mean_out,
                                  float *var_out, float *moving, trn_allreduce *ar)
{
    int nt = n_threads(m * (size_t)c);
    double *part = calloc((size_t)nt * 2 * c + 2 * (size_t)c, sizeof *part);
    float *scale = malloc(2 * (size_t)c * sizeof *scale);
    if (!part || !scale) {
        free(part);
        free(scale);
        return tnrec__fail(TNREC_ENOMEM, "out of memory in batch norm");
    }
    double *tot = part + (size_t)nt * 2 * c;
    channel_sums(tot, part, nt, x, x, NULL, m, c);
    tnrec_err err = trn_allreduce_sum_double(ar, tot, 2 * (size_t)c);
    if (err) {
        free(part);
        free(scale);
        return err;
    }
    for (int ch = 0; ch < c; ch++) {
        double mu = tot[ch] / (double)m_global;
        double var = tot[c + ch] / (double)m_global - mu * mu;
        if (var < 0)
            var = 0;
        mean_out[ch] = (float)mu;
        var_out[ch] = (float)var;
        double inv = 1.0 / sqrt(var + TRN_BN_EPSILON);
        scale[ch] = (float)(gamma[ch] * inv);
        scale[c + ch] = (float)(beta[ch] - mu * gamma[ch] * inv);
        moving[ch] = (float)(TRN_BN_MOMENTUM * moving[ch] + (1 - TRN_BN_MOMENTUM) * mu);
        moving[c + ch] = (float)(TRN_BN_MOMENTUM * moving[c + ch] + (1 - TRN_BN_MOMENTUM) * var);
    }
#if TNREC_HAVE_OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (size_t p = 0; p < m; p++)
        for (int ch = 0; ch < c; ch++)
            y[p * c + ch] = x[p * c + ch] * scale[ch] + scale[c + ch];
    free(part);
    free(scale);
    return TNREC_OK;
}

static tnrec_err bn_backward(float *dx, float *dgamma, float *dbeta, const float *x,
                             const float *dy, size_t m, size_t m_global, int c,
                             const float *gamma, const float *mean, const float *var,
                             trn_allreduce *ar)
{
    int nt = n_threads(m * (size_t)c);
    double *part = calloc((size_t)nt * 2 * c + 2 * (size_t)c, sizeof *part);
    float *coef = malloc(3 * (size_t)c * sizeof *coef);
    if (!part || !coef) {
        free(part);
        free(coef);
        return tnrec__fail(TNREC_ENOMEM, "out of memory in batch norm");
    }
    double *tot = part + (size_t)nt * 2 * c;
    channel_sums(tot, part, nt, dy, x, mean, m, c);
    for (int ch = 0; ch < c; ch++) {
        double inv = 1.0 / sqrt((double)var[ch] + TRN_BN_EPSILON);
        tot[c + ch] *= inv; /* sum dy * xhat */
        /* This rank's share; the gradient all-reduce sums the shares. */
        dgamma[ch] = (float)tot[c + ch];
        dbeta[ch] = (float)tot[ch];
    }
    tnrec_err err = trn_allreduce_sum_double(ar, tot, 2 * (size_t)c);
    if (err) {
        free(part);
        free(coef);
        return err;
    }
    if (dx) {
        for (int ch = 0; ch < c; ch++) {
            double inv = 1.0 / sqrt((double)var[ch] + TRN_BN_EPSILON);
            double f = gamma[ch] * inv;
            /* dx = f * (dy - sdy/M - xhat * sdyx/M), xhat = (x - mean) * inv */
            coef[ch] = (float)f;
            coef[c + ch] = (float)(f * tot[ch] / (double)m_global);
            coef[2 * c + ch] = (float)(f * inv * tot[c + ch] / (double)m_global);
        }
#if TNREC_HAVE_OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
        for (size_t p = 0; p < m; p++)
            for (int ch = 0; ch < c; ch++)
                dx[p * c + ch] = coef[ch] * dy[p * c + ch] - coef[c + ch] -
                                 coef[2 * c + ch] * (x[p * c + ch] - mean[ch]);
    }
    free(part);
    free(coef);
    return TNREC_OK;
}

/* Each sample's CoordConv coordinates from its range window (NULL: the
 * model's fixed one); a pair that is no window is refused. */
static tnrec_err set_coords(tnrec_net *net, const float *range_limits, int n)
{
    const tnrec_model *m = net->m;
    size_t nc = m->ncoords;
    for (int s = 0; s < n; s++) {
        float *dst = net->coords + (size_t)s * nc;
        const double *src = m->coords;
        if (range_limits) {
            const float *lim = range_limits + 2 * (size_t)s;
            if (!trn_coords_window_ok(lim))
                return tnrec__fail(TNREC_EINVAL, "sample %d of the batch has range limits [%g, %g] m, which are no range window", s,
                                   (double)lim[0], (double)lim[1]);
            trn_model_coords(m, lim, net->cscratch, net->cwork);
            src = net->cwork;
        }
        for (size_t j = 0; j < nc; j++)
            dst[j] = (float)src[j];
    }
    return TNREC_OK;
}

/* CoordConv2D: x and each sample's coordinates into one buffer (ci + 2
 * channels), the 3x3 kernel into the middle plane of a 3x3x3 one. */
static void coordconv_prepare(tnrec_net *net, const trn_layer *L, const float *x, const float *k9, int n)
{
    int ci = L->in_c, cc = ci + TRN_NCOORD;
    size_t rows = (size_t)n * L->d * L->h, rows_per_sample = (size_t)L->d * L->h;
#if TNREC_HAVE_OPENMP
#pragma omp parallel for schedule(static) num_threads(n_threads(rows * L->w * cc))
#endif
    for (size_t r = 0; r < rows; r++) {
        const float *coord = net->coords + (r / rows_per_sample) * net->m->ncoords + L->c_off;
        for (int q = 0; q < L->w; q++) {
            float *dst = net->xcat + (r * L->w + q) * cc;
            memcpy(dst, x + (r * L->w + q) * ci, (size_t)ci * sizeof *dst);
            for (int j = 0; j < TRN_NCOORD; j++)
                dst[ci + j] = coord[(size_t)q * TRN_NCOORD + j];
        }
    }
    size_t plane = (size_t)9 * cc * L->c;
    memset(net->k27, 0, 3 * plane * sizeof *net->k27);
    memcpy(net->k27 + plane, k9, plane * sizeof *net->k27);
}

/* The last layer of the inference group that starts with convolution i:
 * the convolution, then a batch norm, then a (Leaky)ReLU, each optional
 * after the convolution; *act as trn_infer_conv's. */
static int infer_group(const tnrec_model *m, int i, int *act, float *alpha)
{
    int j = i;
    *act = 0;
    *alpha = 1.0f;
    if (j + 1 < m->nlayers && m->layers[j + 1].kind == TRN_BN)
        j++;
    if (j + 1 < m->nlayers && m->layers[j + 1].kind == TRN_LRELU) {
        j++;
        *act = 1;
        *alpha = (float)m->layers[j].alpha;
    } else if (j + 1 < m->nlayers && m->layers[j + 1].kind == TRN_RELU) {
        j++;
        *act = 2;
    }
    return j;
}

/* Inference of convolution i and the layers infer_group adds, into the
 * last one's output; returns that layer's index. */
static int infer_conv(tnrec_net *net, int i, const float *in, int n)
{
    const tnrec_model *m = net->m;
    const trn_layer *L = &m->layers[i];
    trn_infer_conv c = { .n = n, .d = L->d, .h = L->h, .w = L->w, .ci = infer_channels(L->in_c), .co = L->c,
                         .bf16 = net->bf16 };
    int last = infer_group(m, i, &c.act, &c.alpha);
    const trn_layer *bn = m->layers[i + 1].kind == TRN_BN && last > i ? &m->layers[i + 1] : NULL;
    if (bn)
        trn_infer_epilogue(net->ep, m->params + bn->w_off, m->params + bn->b_off, m->state + bn->s_off,
                           m->state + bn->s_off + bn->c, L->c);
    else
        trn_infer_epilogue(net->ep, NULL, NULL, NULL, NULL, L->c);
    const float *k = m->params + L->w_off;
    int rows = n * L->d * L->h;
    if (c.bf16) {
        trn_infer_pad_bf16(net->xpad, in, rows, L->w, L->in_c, c.ci);
        trn_infer_pack_bf16(net->kbf, k, L->in_c, c.ci, L->c);
        trn_conv3d_infer(net->out[last], net->xpad, net->kbf, m->params + L->b_off, net->ep, &c);
    } else {
        c.ci = L->in_c; /* the kernel's own layout: no pairs to fill */
        trn_infer_pad_f32(net->xpad, in, rows, L->w, L->in_c, c.ci);
        trn_conv3d_infer(net->out[last], net->xpad, k, m->params + L->b_off, net->ep, &c);
    }
    return last;
}

tnrec_err trn_net_set_precision(tnrec_net *net, tnrec_precision p)
{
    if (p == TNREC_PRECISION_FP16)
        return tnrec__fail(TNREC_EINVAL, "precision 'fp16' is for the GPU only\nhint: add --device cuda, or use "
                           "--precision bf16 or fp32 on the CPU");
    net->bf16 = p == TNREC_PRECISION_BF16 && net->infer_fast && trn_infer_bf16_ok();
    return TNREC_OK;
}

int trn_net_bf16(const tnrec_net *net)
{
    return net->bf16;
}

/* A precision by name (NULL: fp32) for inference, or (train) for training
 * steps too; *out_bf16 (may be NULL): whether bfloat16 is in effect. */
static tnrec_err set_precision_named(tnrec_net *net, const char *precision, int train, int *out_bf16)
{
    tnrec_precision p;
    tnrec_err err = tnrec_precision_parse(&p, precision ? precision : "fp32");
    if (!err)
        err = train ? trn_net_set_train_precision(net, p) : trn_net_set_precision(net, p);
    if (out_bf16)
        *out_bf16 = train ? net->bf16_train : net->bf16;
    return err;
}

tnrec_err tnrec_net_set_precision(tnrec_net *net, const char *precision, int *out_bf16)
{
    return set_precision_named(net, precision, 0, out_bf16);
}

tnrec_err tnrec_net_set_train_precision(tnrec_net *net, const char *precision, int *out_bf16)
{
    return set_precision_named(net, precision, 1, out_bf16);
}

/* The bfloat16 training step's scratch: xpad and the packed kernel wide
 * enough for a convolution's input or output gradient, the flipped
 * kernel, a zero bias. 1 when out of memory. */
static int train_bf16_alloc(tnrec_net *net)
{
    const tnrec_model *m = net->m;
    size_t xp = 0, kb = 0, ch = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const trn_layer *L = &m->layers[i];
        if ((L->kind != TRN_CONV && L->kind != TRN_CCONV) || L->c % 16 != 0)
            continue;
        size_t ci = (size_t)L->in_c + (L->kind == TRN_CCONV ? TRN_NCOORD : 0);
        size_t cp = (size_t)infer_channels((int)ci), wide = cp > (size_t)L->c ? cp : (size_t)L->c;
        size_t e = (size_t)net->max_batch * L->d * L->h * (L->w + 2) * wide;
        xp = e > xp ? e : xp;
        kb = 27 * wide * L->c > kb ? 27 * wide * L->c : kb;
        ch = wide > ch ? wide : ch;
    }
    if (!xp)
        return 0;
    free(net->xpad);
    free(net->kbf);
    free(net->ep);
    net->xpad = malloc(xp * sizeof(float));
    net->kbf = malloc(kb * sizeof *net->kbf);
    net->ep = malloc(4 * ch * sizeof *net->ep);
    net->kflip = malloc(kb * sizeof *net->kflip);
    net->zeros = calloc(ch, sizeof *net->zeros);
    return !net->xpad || !net->kbf || !net->ep || !net->kflip || !net->zeros;
}

tnrec_err trn_net_set_train_precision(tnrec_net *net, tnrec_precision p)
{
    tnrec_err err = trn_net_set_precision(net, p);
    if (err)
        return err;
    if (!net->bf16)
        net->bf16_train = 0;
    if (!net->bf16 || net->bf16_train)
        return TNREC_OK;
    if (train_bf16_alloc(net)) {
        net->bf16 = 0;
        net->infer_fast = 0; /* its scratch may be gone: the float32 layers take over */
        return tnrec__fail(TNREC_ENOMEM, "out of memory for bfloat16 training at a batch of %d\nhint: use a smaller "
                           "--batch or --precision fp32", net->max_batch);
    }
    net->bf16_train = 1;
    return TNREC_OK;
}

/* The bfloat16 convolutions' scratch, for a layer of ci inputs and co
 * outputs: xpad (rows x (w + 2) x max(even ci, co) bfloat16 values), kbf
 * and kflip (27 x max(even ci, co) x co), ep (4 x max), zeros (max). */
typedef struct bf16_scratch {
    uint16_t *xpad, *kbf;
    float *kflip, *ep, *zeros;
} bf16_scratch;

/* A convolution's output (3x3x3, 'same'), in bfloat16 products with
 * float32 sums: conv_infer.c's kernel with batch norm and activation off. */
static void conv_forward_bf16(const bf16_scratch *s, float *y, const float *x, const float *k, const float *b, int n,
                              int d, int h, int w, int ci, int co)
{
    int cp = infer_channels(ci);
    trn_infer_conv c = { .n = n, .d = d, .h = h, .w = w, .ci = cp, .co = co, .bf16 = 1 };
    trn_infer_pad_bf16(s->xpad, x, n * d * h, w, ci, cp);
    trn_infer_pack_bf16(s->kbf, k, ci, cp, co);
    trn_infer_epilogue(s->ep, NULL, NULL, NULL, NULL, co);
    trn_conv3d_infer(y, s->xpad, s->kbf, b, s->ep, &c);
}

/* dx = conv(dy, K') with K'[26 - t][o][c] = K[t][c][o], as conv_fast.c
 * computes it, in bfloat16 products: ci a multiple of 16. */
static void conv_dgrad_bf16(const bf16_scratch *s, float *dx, const float *k, const float *dy, int n, int d, int h,
                            int w, int ci, int co)
{
    trn_conv3d_flip_kernel(s->kflip, k, ci, co);
    trn_infer_conv c = { .n = n, .d = d, .h = h, .w = w, .ci = co, .co = ci, .bf16 = 1 };
    trn_infer_pad_bf16(s->xpad, dy, n * d * h, w, co, co);
    trn_infer_pack_bf16(s->kbf, s->kflip, co, co, ci);
    trn_infer_epilogue(s->ep, NULL, NULL, NULL, NULL, ci);
    trn_conv3d_infer(dx, s->xpad, s->kbf, s->zeros, s->ep, &c);
}

/* The net's scratch as a bf16_scratch. */
static bf16_scratch net_scratch(const tnrec_net *net)
{
    return (bf16_scratch){ .xpad = net->xpad, .kbf = net->kbf, .kflip = net->kflip, .ep = net->ep, .zeros = net->zeros };
}

/* A training step's convolution forward: bfloat16 products where
 * trn_net_set_train_precision asked for them and the layer fits the
 * kernels (16k outputs), float32 (conv_fast.c) otherwise. */
static tnrec_err conv_forward(tnrec_net *net, float *y, const float *x, const float *k, const float *b, int n, int d,
                              int h, int w, int ci, int co)
{
    if (!net->bf16_train || co % 16 != 0)
        return tnrec_conv3d_forward(y, x, k, b, n, d, h, w, ci, co);
    bf16_scratch sc = net_scratch(net);
    conv_forward_bf16(&sc, y, x, k, b, n, d, h, w, ci, co);
    return TNREC_OK;
}

/* Its backward: input gradient (where dx), kernel and bias gradients. In
 * bfloat16 the input gradient needs ci a multiple of 16 too; the bias
 * gradient is always summed in double from dy. */
static tnrec_err conv_backward(tnrec_net *net, float *dx, float *dk, float *db, const float *x, const float *k,
                               const float *dy, int n, int d, int h, int w, int ci, int co)
{
    if (!net->bf16_train || co % 16 != 0)
        return tnrec_conv3d_backward(dx, dk, db, x, k, dy, n, d, h, w, ci, co);
    tnrec_err err = TNREC_OK;
    bf16_scratch sc = net_scratch(net);
    if (dx && ci % 16 == 0)
        conv_dgrad_bf16(&sc, dx, k, dy, n, d, h, w, ci, co);
    else if (dx)
        err = tnrec_conv3d_backward(dx, NULL, NULL, x, k, dy, n, d, h, w, ci, co);
    if (!err)
        err = tnrec_conv3d_backward(NULL, NULL, db, x, k, dy, n, d, h, w, ci, co);
    if (!err)
        err = trn_conv3d_wgrad_bf16(dk, x, dy, n, d, h, w, ci, co, &net->wws);
    return err;
}

tnrec_err tnrec_test_conv3d_bf16(float *y, float *dx, float *dk, const float *x, const float *k, const float *b,
                                 const float *dy, int n, int d, int h, int w, int ci, int co)
{
    if (!trn_infer_bf16_ok() || co % 16 != 0 || (dx && ci % 16 != 0))
        return tnrec__fail(TNREC_EUNSUPPORTED, "bfloat16 convolutions need avx512_bf16 and 16k channels");
    size_t wide = (size_t)(ci + 1 > co ? ci + 1 : co);
    bf16_scratch sc = { .xpad = malloc((size_t)n * d * h * (w + 2) * wide * sizeof *sc.xpad),
                        .kbf = malloc(27 * wide * wide * sizeof *sc.kbf),
                        .kflip = malloc(27 * wide * wide * sizeof *sc.kflip),
                        .ep = malloc(4 * wide * sizeof *sc.ep),
                        .zeros = calloc(wide, sizeof *sc.zeros) };
    tnrec_err err = TNREC_OK;
    if (!sc.xpad || !sc.kbf || !sc.kflip || !sc.ep || !sc.zeros)
        err = tnrec__fail(TNREC_ENOMEM, "out of memory");
    if (!err) {
        conv_forward_bf16(&sc, y, x, k, b, n, d, h, w, ci, co);
        if (dx)
            conv_dgrad_bf16(&sc, dx, k, dy, n, d, h, w, ci, co);
        trn_wgrad_ws ws = { 0 };
        err = trn_conv3d_wgrad_bf16(dk, x, dy, n, d, h, w, ci, co, &ws);
        trn_wgrad_ws_free(&ws);
    }
    free(sc.xpad);
    free(sc.kbf);
    free(sc.kflip);
    free(sc.ep);
    free(sc.zeros);
    return err;
}

static tnrec_err forward(tnrec_net *net, const float *x, const float *range_limits, int n, int global_n,
                         int global_first, int training, uint64_t seed, trn_allreduce *ar)
{
    tnrec_model *m = net->m;
    tnrec_err err = m->ncoords ? set_coords(net, range_limits, n) : TNREC_OK;
    if (err)
        return err;
    for (int i = 0; i < m->nlayers; i++) {
        const trn_layer *L = &m->layers[i];
        const float *in = i ? net->out[i - 1] : x;
        float *y = net->out[i];
        size_t pos = (size_t)n * L->d * L->h * L->w;
        size_t outn = pos * L->c;
        const float *pw = m->params + L->w_off, *pb = m->params + L->b_off;
        if (!training && net->infer_fast && infer_conv_ok(L)) {
            i = infer_conv(net, i, in, n);
            continue;
        }
        switch (L->kind) {
        case TRN_CONV:
            err = training ? conv_forward(net, y, in, pw, pb, n, L->d, L->h, L->w, L->in_c, L->c)
                           : tnrec_conv3d_forward(y, in, pw, pb, n, L->d, L->h, L->w, L->in_c, L->c);
            break;
        case TRN_BN:
            if (training)
                err = bn_forward_train(y, in, pos, (size_t)global_n * L->d * L->h * L->w, L->c, pw, pb,
                                       net->bn_mean + L->s_off, net->bn_var + L->s_off, m->state + L->s_off, ar);
            else
                trn_ref32_batchnorm_forward_infer(y, in, pw, pb, m->state + L->s_off,
                                                    m->state + L->s_off + L->c, pos, L->c, (float)TRN_BN_EPSILON);
            break;
        case TRN_LRELU:
            leaky_forward(y, in, outn, (float)L->alpha);
            break;
        case TRN_POOL:
            pool_run(NULL, y, in, NULL, L, n);
            break;
        case TRN_CCONV:
            coordconv_prepare(net, L, in, pw, n);
            err = training ? conv_forward(net, y, net->xcat, net->k27, pb, n, L->d, L->h, L->w, L->in_c + TRN_NCOORD, L->c)
                           : tnrec_conv3d_forward(y, net->xcat, net->k27, pb, n, L->d, L->h, L->w, L->in_c + TRN_NCOORD,
                                                  L->c);
            break;
        case TRN_CONV1:
            trn_ref32_dense_forward(y, in, pw, pb, (int)pos, L->in_c, L->c);
            break;
        case TRN_RELU:
            trn_ref32_relu_forward(y, in, outn);
            break;
        case TRN_EDROP:
            if (training && L->rate > 0) {
                size_t e = trn_layer_out_elems(L);
                float *mask = net->masks + net->mask_off[i];
                trn_ref32_dropout_mask(mask, (size_t)n * e, L->rate, seed, (uint64_t)i, (uint64_t)global_first * e);
                trn_ref32_channel_scale_forward(y, in, mask, n, 1, (int)e);
            } else if (y != in) {
                memcpy(y, in, outn * sizeof *y);
            }
            break;
        case TRN_SDROP:
        case TRN_DROP:
            if (training && L->rate > 0) {
                float *mask = net->masks + net->mask_off[i];
                trn_ref32_dropout_mask(mask, (size_t)n * L->c, L->rate, seed, (uint64_t)i,
                                         (uint64_t)global_first * L->c);
                trn_ref32_channel_scale_forward(y, in, mask, n, (size_t)L->d * L->h * L->w, L->c);
            } else if (y != in) {
                memcpy(y, in, outn * sizeof *y);
            }
            break;
        case TRN_GPOOL:
            trn_ref32_global_maxpool_forward(y, in, n, (size_t)L->in_d * L->in_h * L->in_w, L->c);
            break;
        case TRN_DENSE:
            trn_ref32_dense_forward(y, in, pw, pb, n, L->in_c, L->c);
            break;
        }
        if (err)
            return err;
    }
    return TNREC_OK;
}

tnrec_err trn_net_train_step(tnrec_net *net, const float *x, const float *range_limits,
                             const float *label, const float *weight, int n, int global_n, int global_first,
                             uint64_t dropout_seed, trn_allreduce *ar, float *logits,
                             double *out_loss)
{
    tnrec_model *m = net->m;
    if (n < 0 || n > net->max_batch || global_n < 1 || global_n < n)
        return tnrec__fail(TNREC_EINVAL, "batch of %d (global %d) does not fit a workspace of %d", n, global_n, net->max_batch);
    tnrec_err err = forward(net, x, range_limits, n, global_n, global_first, 1, dropout_seed, ar);
    if (err)
        return err;
    int nl = m->nlayers;
    const float *z = net->out[nl - 1];
    if (logits)
        memcpy(logits, z, (size_t)n * sizeof *logits);
    double loss = trn_ref32_bce_logits(net->dlogits, z, label, weight, n, (double)global_n);
    if ((err = trn_allreduce_sum_double(ar, &loss, 1)))
        return err;
    int cur = 0;
    const float *g = net->dlogits;
    /* Gradients flow back only as far as the first layer with parameters. */
    int first = 0;
    while (first < nl - 1 && m->layers[first].w_len == 0)
        first++;
    for (int i = nl - 1; i >= first; i--) {
        const trn_layer *L = &m->layers[i];
        const float *in = i ? net->out[i - 1] : x;
        size_t pos = (size_t)n * L->d * L->h * L->w;
        float *dx = i > first ? net->gbuf[cur] : NULL;
        const float *pw = m->params + L->w_off;
        float *gw = m->grads + L->w_off, *gb = m->grads + L->b_off;
        switch (L->kind) {
        case TRN_CONV:
            err = conv_backward(net, dx, gw, gb, in, pw, g, n, L->d, L->h, L->w, L->in_c, L->c);
            break;
        case TRN_BN:
            err = bn_backward(dx, gw, gb, in, g, pos, (size_t)global_n * L->d * L->h * L->w, L->c, pw,
                              net->bn_mean + L->s_off, net->bn_var + L->s_off, ar);
            break;
        case TRN_LRELU:
            /* In place: the output has the sign of the input (alpha > 0). */
            if (dx)
                leaky_backward(dx, net->out[i], g, pos * L->c, (float)L->alpha);
            break;
        case TRN_RELU:
            /* In place: the output is > 0 exactly where the input is. */
            if (dx)
                trn_ref32_relu_backward(dx, net->out[i], g, pos * L->c);
            break;
        case TRN_POOL:
            if (dx)
                pool_run(dx, NULL, in, g, L, n);
            break;
        case TRN_CCONV: {
            int ci = L->in_c, cc = ci + TRN_NCOORD;
            size_t plane = (size_t)9 * cc * L->c;
            coordconv_prepare(net, L, in, pw, n);
            err = conv_backward(net, dx ? net->dxcat : NULL, net->dk27, gb, net->xcat, net->k27, g, n, L->d, L->h, L->w,
                                cc, L->c);
            if (err)
                break;
            memcpy(gw, net->dk27 + plane, plane * sizeof *gw);
            if (dx)
                for (size_t p = 0; p < pos; p++)
                    memcpy(dx + p * ci, net->dxcat + p * cc, (size_t)ci * sizeof *dx);
            break;
        }
        case TRN_CONV1:
            trn_ref32_dense_backward(dx, gw, gb, in, pw, g, (int)pos, L->in_c, L->c);
            break;
        case TRN_EDROP:
            if (dx) {
                size_t e = trn_layer_out_elems(L);
                if (L->rate > 0)
                    trn_ref32_channel_scale_backward(dx, g, net->masks + net->mask_off[i], n, 1, (int)e);
                else
                    memmove(dx, g, pos * L->c * sizeof *dx);
            }
            break;
        case TRN_SDROP:
        case TRN_DROP:
            if (dx) {
                if (L->rate > 0)
                    trn_ref32_channel_scale_backward(dx, g, net->masks + net->mask_off[i], n,
                                                       (size_t)L->d * L->h * L->w, L->c);
                else
                    memmove(dx, g, pos * L->c * sizeof *dx);
            }
            break;
        case TRN_GPOOL:
            if (dx)
                trn_ref32_global_maxpool_backward(dx, in, g, n, (size_t)L->in_d * L->in_h * L->in_w, L->c);
            break;
        case TRN_DENSE:
            trn_ref32_dense_backward(dx, gw, gb, in, pw, g, n, L->in_c, L->c);
            break;
        }
        if (err)
            return err;
        if (dx) {
            g = dx;
            cur ^= 1;
        }
    }
    if ((err = trn_allreduce_sum(ar, m->grads, m->nparams)))
        return err;
    for (int i = 0; i < nl; i++) {
        const trn_layer *L = &m->layers[i];
        if (L->l2 <= 0)
            continue;
        double s = 0;
        for (size_t j = 0; j < L->w_len; j++) {
            float wv = m->params[L->w_off + j];
            s += (double)wv * wv;
            m->grads[L->w_off + j] += (float)(2 * L->l2) * wv;
        }
        loss += L->l2 * s;
    }
    *out_loss = loss;
    return TNREC_OK;
}

tnrec_err tnrec_net_train_step(tnrec_net *net, const float *x, const float *label,
                               const float *weight, int n, uint64_t dropout_seed,
                               float *logits, double *out_loss)
{
    return trn_net_train_step(net, x, NULL, label, weight, n, n, 0, dropout_seed, NULL, logits, out_loss);
}

tnrec_err tnrec_net_predict_at(tnrec_net *net, const float *x, const float *range_limits, int n, float *logits)
{
    if (n < 0 || n > net->max_batch)
        return tnrec__fail(TNREC_EINVAL, "batch of %d does not fit a workspace of %d", n, net->max_batch);
    if (n == 0)
        return TNREC_OK;
    tnrec_err err = forward(net, x, range_limits, n, n, 0, 0, 0, NULL);
    if (err)
        return err;
    memcpy(logits, net->out[net->m->nlayers - 1], (size_t)n * sizeof *logits);
    return TNREC_OK;
}

tnrec_err tnrec_net_predict(tnrec_net *net, const float *x, int n, float *logits)
{
    return tnrec_net_predict_at(net, x, NULL, n, logits);
}
