/* train/gpu/kernels.cu: the GPU trainer's own kernels: casts and filter
 * packing, BN moving statistics, LeakyReLU, max pooling, dropout, global
 * max pooling, conv and dense bias (and their gradients), the loss, L2,
 * clipping and Adam.
 *
 * Each kernel mirrors a function of the CPU reference (train/reference.c)
 * so the two paths agree: pooling keeps the first maximum, dropout masks
 * come from the same counter-based generator (common/splitmix64.h, one
 * definition for both), Adam follows Keras' update.
 * No atomics: every sum has a fixed order, so runs are deterministic.
 * CoordConv2D's concatenation and 'same' pooling serve inference only.
 * Not here: convolutions and batch norm (cuDNN, cudnn_ops.c) and dense
 * matrix products (cuBLAS, gpu_net.c). Activation kernels are templates
 * over float, __half and __nv_bfloat16; the C launchers pick by dt. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>

#include "gpu_kernels.h"
#include "splitmix64.h"

namespace {

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

const int THREADS = 256;

unsigned grid_for(size_t n)
{
    size_t b = (n + THREADS - 1) / THREADS;
    if (b < 1)
        b = 1;
    return b > 65535u * 16u ? 65535u * 16u : (unsigned)b;
}

#define GRID_STRIDE(i, n) for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

template <typename T>
__global__ void cast_input_k(T *dst, const float *src, size_t positions, int ci, int ci_pad)
{
    size_t total = positions * (size_t)ci_pad;
    GRID_STRIDE(i, total)
    {
        size_t p = i / (size_t)ci_pad;
        int c = (int)(i % (size_t)ci_pad);
        dst[i] = from_f<T>(c < ci ? src[p * ci + c] : 0.0f);
    }
}

template <typename T>
__global__ void pack_filter_k(T *dst, const float *src, int taps, int ci, int ci_pad, int co)
{
    size_t total = (size_t)co * taps * ci_pad;
    GRID_STRIDE(i, total)
    {
        int c = (int)(i % (size_t)ci_pad);
        size_t r = i / (size_t)ci_pad;
        int k = (int)(r % (size_t)taps), o = (int)(r / (size_t)taps);
        dst[i] = from_f<T>(c < ci ? src[((size_t)k * ci + c) * co + o] : 0.0f);
    }
}

/* CoordConv2D's input: y[p][c] = x[p][c] (c < ci, x of xs channels), then
 * the two coordinates of p's sample and range position, then zeros to
 * cc. coords: n x ncoords floats, the layer's w x 2 at c_off. */
template <typename T>
__global__ void coord_concat_k(T *y, const T *x, const float *coords, int n, size_t rows_per_sample, int w, int ci,
                               int xs, int cc, size_t ncoords, size_t c_off)
{
    size_t total = (size_t)n * rows_per_sample * w * cc;
    GRID_STRIDE(i, total)
    {
        int c = (int)(i % (size_t)cc);
        size_t p = i / (size_t)cc;
        int q = (int)(p % (size_t)w);
        size_t sample = p / (size_t)w / rows_per_sample;
        if (c < ci)
            y[i] = x[p * xs + c];
        else if (c < ci + 2)
            y[i] = from_f<T>(coords[sample * ncoords + c_off + (size_t)q * 2 + (c - ci)]);
        else
            y[i] = from_f<T>(0.0f);
    }
}

/* Window [lo, hi) of output o of a 'same' pooling of size p over in
 * (train/reference.c's same_window). */
__device__ __forceinline__ void same_window(int *lo, int *hi, int o, int p, int in)
{
    int out = (in + p - 1) / p;
    *lo = o * p - (out * p - in) / 2;
    *hi = *lo + p;
    *lo = *lo < 0 ? 0 : *lo;
    *hi = *hi > in ? in : *hi;
}

/* 'same' max pooling (outputs ceil(in / p)), the first maximum. */
template <typename T>
__global__ void maxpool_same_fwd_k(T *y, const T *x, int n, int d, int h, int w, int c, int pd, int ph, int pw)
{
    int od = (d + pd - 1) / pd, oh = (h + ph - 1) / ph, ow = (w + pw - 1) / pw;
    size_t total = (size_t)n * od * oh * ow * c;
    GRID_STRIDE(o, total)
    {
        int ch = (int)(o % c);
        size_t r = o / c;
        int q = (int)(r % ow); r /= ow;
        int rr = (int)(r % oh); r /= oh;
        int z = (int)(r % od);
        int i = (int)(r / od);
        int z0, z1, y0, y1, x0, x1;
        same_window(&z0, &z1, z, pd, d);
        same_window(&y0, &y1, rr, ph, h);
        same_window(&x0, &x1, q, pw, w);
        size_t best = ((((size_t)i * d + z0) * h + y0) * w + x0) * c + ch;
        float bv = to_f(x[best]);
        for (int a = z0; a < z1; a++)
            for (int b = y0; b < y1; b++)
                for (int e = x0; e < x1; e++) {
                    size_t at = ((((size_t)i * d + a) * h + b) * w + e) * c + ch;
                    float v = to_f(x[at]);
                    if (v > bv) {
                        best = at;
                        bv = v;
                    }
                }
        y[o] = x[best];
    }
}

template <typename T>
__global__ void unpack_filter_k(float *dst, const T *src, int ci, int ci_pad, int co)
{
    size_t total = (size_t)27 * ci * co;
    GRID_STRIDE(i, total)
    {
        int o = (int)(i % (size_t)co);
        size_t r = i / (size_t)co;
        int c = (int)(r % (size_t)ci), k = (int)(r / (size_t)ci);
        dst[i] = to_f(src[((size_t)o * 27 + k) * ci_pad + c]);
    }
}

template <typename T> __global__ void to_dt_k(T *dst, const float *src, size_t n)
{
    GRID_STRIDE(i, n) dst[i] = from_f<T>(src[i]);
}
template <typename T> __global__ void from_dt_k(float *dst, const T *src, size_t n)
{
    GRID_STRIDE(i, n) dst[i] = to_f(src[i]);
}
__global__ void scale_k(float *x, size_t n, float s)
{
    GRID_STRIDE(i, n) x[i] *= s;
}

__global__ void bn_moving_k(float *mm, float *mv, const float *mean, const float *inv, int c, double mom, double eps)
{
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c)
        return;
    double iv = inv[ch];
    double var = 1.0 / (iv * iv) - eps;
    if (var < 0)
        var = 0;
    mm[ch] = (float)(mom * mm[ch] + (1 - mom) * (double)mean[ch]);
    mv[ch] = (float)(mom * mv[ch] + (1 - mom) * var);
}

template <typename T> __global__ void lrelu_fwd_k(T *y, const T *x, size_t n, float alpha)
{
    GRID_STRIDE(i, n)
    {
        float v = to_f(x[i]);
        y[i] = from_f<T>(v > 0 ? v : alpha * v);
    }
}
template <typename T> __global__ void lrelu_bwd_k(T *dx, const T *y, const T *dy, size_t n, float alpha)
{
    GRID_STRIDE(i, n)
    {
        float g = to_f(dy[i]);
        dx[i] = from_f<T>(to_f(y[i]) > 0 ? g : alpha * g);
    }
}

/* Offset of the first maximum of the window of output (i, z, r, q, ch). */
template <typename T>
__device__ size_t pool_argmax(const T *x, int i, int z, int r, int q, int ch, int d, int h, int w, int c, int pd, int ph,
                              int pw)
{
    size_t best = 0;
    float bv = 0;
    bool first = true;
    for (int a = 0; a < pd; a++)
        for (int b = 0; b < ph; b++)
            for (int e = 0; e < pw; e++) {
                size_t at = ((((size_t)i * d + z * pd + a) * h + r * ph + b) * w + q * pw + e) * c + ch;
                float v = to_f(x[at]);
                if (first || v > bv) {
                    best = at;
                    bv = v;
                    first = false;
                }
            }
    return best;
}

template <typename T>
__global__ void maxpool_fwd_k(T *y, const T *x, int n, int d, int h, int w, int c, int pd, int ph, int pw)
{
    int od = d / pd, oh = h / ph, ow = w / pw;
    size_t total = (size_t)n * od * oh * ow * c;
    GRID_STRIDE(o, total)
    {
        int ch = (int)(o % c);
        size_t r = o / c;
        int q = (int)(r % ow); r /= ow;
        int rr = (int)(r % oh); r /= oh;
        int z = (int)(r % od);
        int i = (int)(r / od);
        y[o] = x[pool_argmax(x, i, z, rr, q, ch, d, h, w, c, pd, ph, pw)];
    }
}

/* Windows do not overlap (stride = pool size), so each output owns its
 * window: it writes the gradient to its maximum and zero elsewhere.
 * Positions past the last whole window are zeroed by the caller's memset. */
template <typename T>
__global__ void maxpool_bwd_k(T *dx, const T *x, const T *dy, int n, int d, int h, int w, int c, int pd, int ph, int pw)
{
    int od = d / pd, oh = h / ph, ow = w / pw;
    size_t total = (size_t)n * od * oh * ow * c;
    GRID_STRIDE(o, total)
    {
        int ch = (int)(o % c);
        size_t r = o / c;
        int q = (int)(r % ow); r /= ow;
        int rr = (int)(r % oh); r /= oh;
        int z = (int)(r % od);
        int i = (int)(r / od);
        size_t best = pool_argmax(x, i, z, rr, q, ch, d, h, w, c, pd, ph, pw);
        for (int a = 0; a < pd; a++)
            for (int b = 0; b < ph; b++)
                for (int e = 0; e < pw; e++) {
                    size_t at = ((((size_t)i * d + z * pd + a) * h + rr * ph + b) * w + q * pw + e) * c + ch;
                    dx[at] = at == best ? dy[o] : from_f<T>(0.0f);
                }
    }
}

__global__ void dropout_mask_k(float *scale, size_t count, double rate, uint64_t base, uint64_t first)
{
    float keep = (float)(1.0 / (1.0 - rate));
    GRID_STRIDE(j, count)
    {
        double u = (double)(tnrec__splitmix64(base + first + j) >> 11) * 0x1.0p-53;
        scale[j] = u < rate ? 0.0f : keep;
    }
}

template <typename T>
__global__ void channel_scale_k(T *y, const T *x, const float *scale, int n, size_t s, int c)
{
    size_t total = (size_t)n * s * c;
    GRID_STRIDE(i, total)
    {
        int ch = (int)(i % c);
        size_t smp = i / ((size_t)s * c);
        y[i] = from_f<T>(to_f(x[i]) * scale[smp * c + ch]);
    }
}

template <typename T> __global__ void gmax_fwd_k(float *y, const T *x, int n, size_t s, int c)
{
    size_t total = (size_t)n * c;
    GRID_STRIDE(o, total)
    {
        size_t i = o / c, ch = o % c;
        float m = to_f(x[i * s * c + ch]);
        for (size_t p = 1; p < s; p++) {
            float v = to_f(x[(i * s + p) * c + ch]);
            if (v > m)
                m = v;
        }
        y[o] = m;
    }
}

/* dx must be zeroed first; one thread per (sample, channel). */
template <typename T> __global__ void gmax_bwd_k(T *dx, const T *x, const float *dy, int n, size_t s, int c)
{
    size_t total = (size_t)n * c;
    GRID_STRIDE(o, total)
    {
        size_t i = o / c, ch = o % c;
        size_t best = i * s * c + ch;
        float m = to_f(x[best]);
        for (size_t p = 1; p < s; p++) {
            size_t at = (i * s + p) * c + ch;
            float v = to_f(x[at]);
            if (v > m) {
                m = v;
                best = at;
            }
        }
        dx[best] = from_f<T>(dy[o]);
    }
}

__global__ void bias_add_k(float *y, const float *b, int n, int out)
{
    GRID_STRIDE(i, (size_t)n * out) y[i] += b[i % out];
}
__global__ void bias_grad_k(float *db, const float *dy, int n, int out)
{
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= out)
        return;
    float acc = 0;
    for (int i = 0; i < n; i++)
        acc += dy[(size_t)i * out + o];
    db[o] = acc;
}

/* Conv bias: y[p][k] += b[k] over positions x c (y of type T, b float). */
template <typename T> __global__ void conv_bias_add_k(T *y, const float *b, size_t positions, int c)
{
    GRID_STRIDE(i, positions * (size_t)c) y[i] = from_f<T>(to_f(y[i]) + b[i % (size_t)c]);
}

/* Conv bias gradient, pass 1: block (tile, slab) sums, for the channels
 * [tile*BG_TILE, +BG_TILE), the positions p = slab*BG_ROWS + row + k *
 * BG_SLABS*BG_ROWS (row: the thread's row in the block), then the rows in
 * order; part[slab][channel]. Pass 2 sums the slabs in order. Float sums
 * of the (loss-scaled) gradient, whatever T. */
const int BG_TILE = 32, BG_ROWS = THREADS / BG_TILE, BG_SLABS = 1024;

template <typename T> __global__ void conv_bias_part_k(float *part, const T *dy, size_t positions, int c)
{
    __shared__ float sh[BG_ROWS][BG_TILE];
    int tx = threadIdx.x % BG_TILE, row = threadIdx.x / BG_TILE;
    int ch = blockIdx.x * BG_TILE + tx;
    size_t step = (size_t)BG_SLABS * BG_ROWS;
    float acc = 0;
    if (ch < c)
        for (size_t p = (size_t)blockIdx.y * BG_ROWS + row; p < positions; p += step)
            acc += to_f(dy[p * (size_t)c + ch]);
    sh[row][tx] = acc;
    __syncthreads();
    if (row == 0 && ch < c) {
        float sum = 0;
        for (int r = 0; r < BG_ROWS; r++)
            sum += sh[r][tx];
        part[(size_t)blockIdx.y * c + ch] = sum;
    }
}

__global__ void conv_bias_sum_k(float *db, const float *part, int c)
{
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c)
        return;
    float sum = 0;
    for (int s = 0; s < BG_SLABS; s++)
        sum += part[(size_t)s * c + ch];
    db[ch] = sum;
}

__global__ void bce_k(double *loss, float *dz, const float *z, const float *label, const float *weight, int n,
                      double denom, float scale)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    double zi = z[i], yi = label[i], wi = weight ? weight[i] : 1.0;
    loss[i] = wi * ((zi > 0 ? zi : 0) - zi * yi + log1p(exp(-fabs(zi))));
    double p = zi >= 0 ? 1.0 / (1.0 + exp(-zi)) : exp(zi) / (1.0 + exp(zi));
    dz[i] = (float)(wi * (p - yi) / denom) * scale;
}

/* Block-wide sum in a fixed order (tree over shared memory). */
__device__ double block_sum(double v, double *sh)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s)
            sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

const int L2_BLOCKS_MAX = 256;

__global__ void l2_k(float *g, const float *w, size_t len, float l2, double *partial)
{
    __shared__ double sh[THREADS];
    double acc = 0;
    GRID_STRIDE(i, len)
    {
        float wv = w[i];
        acc += (double)wv * wv;
        g[i] += 2.0f * l2 * wv;
    }
    double s = block_sum(acc, sh);
    if (threadIdx.x == 0)
        partial[blockIdx.x] = s;
}

__global__ void nonfinite_k(int *flag, const float *g, size_t n)
{
    GRID_STRIDE(i, n) if (!isfinite(g[i])) *flag = 1;
}

/* One block per tensor: norm in a fixed order, then scaling. */
__global__ void clipnorm_k(float *g, const size_t *off, const size_t *len, float clip)
{
    __shared__ double sh[THREADS];
    float *t = g + off[blockIdx.x];
    size_t n = len[blockIdx.x];
    double acc = 0;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x)
        acc += (double)t[i] * t[i];
    double norm = sqrt(block_sum(acc, sh));
    if (norm > clip) {
        float f = (float)(clip / norm);
        for (size_t i = threadIdx.x; i < n; i += blockDim.x)
            t[i] *= f;
    }
}

__global__ void adam_k(float *w, float *m, float *v, float *g, size_t n, float lr_t, float b1, float b2, float eps,
                       float clipvalue, float decay)
{
    GRID_STRIDE(j, n)
    {
        float gj = g[j];
        if (clipvalue > 0)
            gj = gj > clipvalue ? clipvalue : gj < -clipvalue ? -clipvalue : gj;
        g[j] = gj;
        float wj = w[j] * decay;
        float mj = b1 * m[j] + (1 - b1) * gj;
        float vj = b2 * v[j] + (1 - b2) * gj * gj;
        m[j] = mj;
        v[j] = vj;
        w[j] = wj - lr_t * mj / (sqrtf(vj) + eps);
    }
}

int launched() { return (int)cudaGetLastError(); }

/* Typed launchers; BY_DT picks the instance for a run-time dt. */
template <typename T> int cast_input(void *dst, const float *src, size_t positions, int ci, int ci_pad, cudaStream_t st)
{
    cast_input_k<T><<<grid_for(positions * (size_t)ci_pad), THREADS, 0, st>>>((T *)dst, src, positions, ci, ci_pad);
    return launched();
}
template <typename T>
int pack_filter(void *dst, const float *src, int taps, int ci, int ci_pad, int co, cudaStream_t st)
{
    pack_filter_k<T><<<grid_for((size_t)co * taps * ci_pad), THREADS, 0, st>>>((T *)dst, src, taps, ci, ci_pad, co);
    return launched();
}
template <typename T>
int coord_concat(void *y, const void *x, const float *coords, int n, size_t rows_per_sample, int w, int ci, int xs,
                 int cc, size_t ncoords, size_t c_off, cudaStream_t st)
{
    size_t total = (size_t)n * rows_per_sample * w * cc;
    coord_concat_k<T><<<grid_for(total), THREADS, 0, st>>>((T *)y, (const T *)x, coords, n, rows_per_sample, w, ci,
                                                           xs, cc, ncoords, c_off);
    return launched();
}
template <typename T>
int maxpool_same_fwd(void *y, const void *x, int n, int d, int h, int w, int c, int pd, int ph, int pw, cudaStream_t st)
{
    size_t total = (size_t)n * ((d + pd - 1) / pd) * ((h + ph - 1) / ph) * ((w + pw - 1) / pw) * c;
    maxpool_same_fwd_k<T><<<grid_for(total), THREADS, 0, st>>>((T *)y, (const T *)x, n, d, h, w, c, pd, ph, pw);
    return launched();
}
template <typename T> int unpack_filter(float *dst, const void *src, int ci, int ci_pad, int co, cudaStream_t st)
{
    unpack_filter_k<T><<<grid_for((size_t)27 * ci * co), THREADS, 0, st>>>(dst, (const T *)src, ci, ci_pad, co);
    return launched();
}
template <typename T> int to_dt(void *dst, const float *src, size_t n, cudaStream_t st)
{
    to_dt_k<T><<<grid_for(n), THREADS, 0, st>>>((T *)dst, src, n);
    return launched();
}
template <typename T> int from_dt(float *dst, const void *src, size_t n, cudaStream_t st)
{
    from_dt_k<T><<<grid_for(n), THREADS, 0, st>>>(dst, (const T *)src, n);
    return launched();
}
template <typename T> int lrelu_fwd(void *y, const void *x, size_t n, float alpha, cudaStream_t st)
{
    lrelu_fwd_k<T><<<grid_for(n), THREADS, 0, st>>>((T *)y, (const T *)x, n, alpha);
    return launched();
}
template <typename T> int lrelu_bwd(void *dx, const void *y, const void *dy, size_t n, float alpha, cudaStream_t st)
{
    lrelu_bwd_k<T><<<grid_for(n), THREADS, 0, st>>>((T *)dx, (const T *)y, (const T *)dy, n, alpha);
    return launched();
}
template <typename T>
int maxpool_fwd(void *y, const void *x, int n, int d, int h, int w, int c, int pd, int ph, int pw, cudaStream_t st)
{
    size_t total = (size_t)n * (d / pd) * (h / ph) * (w / pw) * c;
    maxpool_fwd_k<T><<<grid_for(total), THREADS, 0, st>>>((T *)y, (const T *)x, n, d, h, w, c, pd, ph, pw);
    return launched();
}
template <typename T>
int maxpool_bwd(void *dx, const void *x, const void *dy, int n, int d, int h, int w, int c, int pd, int ph, int pw,
                cudaStream_t st)
{
    size_t all = (size_t)n * d * h * w * c * sizeof(T);
    cudaError_t e = cudaMemsetAsync(dx, 0, all, st);
    if (e != cudaSuccess)
        return (int)e;
    size_t total = (size_t)n * (d / pd) * (h / ph) * (w / pw) * c;
    maxpool_bwd_k<T><<<grid_for(total), THREADS, 0, st>>>((T *)dx, (const T *)x, (const T *)dy, n, d, h, w, c, pd, ph,
                                                           pw);
    return launched();
}
template <typename T> int channel_scale(void *y, const void *x, const float *scale, int n, size_t s, int c, cudaStream_t st)
{
    channel_scale_k<T><<<grid_for((size_t)n * s * c), THREADS, 0, st>>>((T *)y, (const T *)x, scale, n, s, c);
    return launched();
}
template <typename T> int gmax_fwd(float *y, const void *x, int n, size_t s, int c, cudaStream_t st)
{
    gmax_fwd_k<T><<<grid_for((size_t)n * c), THREADS, 0, st>>>(y, (const T *)x, n, s, c);
    return launched();
}
template <typename T> int gmax_bwd(void *dx, const void *x, const float *dy, int n, size_t s, int c, cudaStream_t st)
{
    cudaError_t e = cudaMemsetAsync(dx, 0, (size_t)n * s * c * sizeof(T), st);
    if (e != cudaSuccess)
        return (int)e;
    gmax_bwd_k<T><<<grid_for((size_t)n * c), THREADS, 0, st>>>((T *)dx, (const T *)x, dy, n, s, c);
    return launched();
}

template <typename T> int conv_bias_add(void *y, const float *b, size_t positions, int c, cudaStream_t st)
{
    conv_bias_add_k<T><<<grid_for(positions * (size_t)c), THREADS, 0, st>>>((T *)y, b, positions, c);
    return launched();
}
template <typename T> int conv_bias_grad(float *db, float *part, const void *dy, size_t positions, int c, cudaStream_t st)
{
    dim3 grid((unsigned)((c + BG_TILE - 1) / BG_TILE), (unsigned)BG_SLABS);
    conv_bias_part_k<T><<<grid, THREADS, 0, st>>>(part, (const T *)dy, positions, c);
    int e = launched();
    if (e)
        return e;
    conv_bias_sum_k<<<(c + THREADS - 1) / THREADS, THREADS, 0, st>>>(db, part, c);
    return launched();
}

} // namespace

#define BY_DT(dt, fn, ...)                                                                                            \
    ((dt) == TRN_DT_F16 ? fn<__half>(__VA_ARGS__)                                                                  \
                           : (dt) == TRN_DT_BF16 ? fn<__nv_bfloat16>(__VA_ARGS__) : fn<float>(__VA_ARGS__))
#define ST ((cudaStream_t)stream)

extern "C" {

size_t trn_dt_size(int dt) { return dt == TRN_DT_F32 ? 4 : 2; }

int trn_k_cast_input(void *dst, const float *src, size_t positions, int ci, int ci_pad, int dt, void *stream)
{
    return BY_DT(dt, cast_input, dst, src, positions, ci, ci_pad, ST);
}
int trn_k_pack_filter(void *dst, const float *src, int taps, int ci, int ci_pad, int co, int dt, void *stream)
{
    return BY_DT(dt, pack_filter, dst, src, taps, ci, ci_pad, co, ST);
}
int trn_k_coord_concat(void *y, const void *x, const float *coords, int n, size_t rows_per_sample, int w, int ci,
                       int xs, int cc, size_t ncoords, size_t c_off, int dt, void *stream)
{
    return BY_DT(dt, coord_concat, y, x, coords, n, rows_per_sample, w, ci, xs, cc, ncoords, c_off, ST);
}
int trn_k_maxpool_same_fwd(void *y, const void *x, int n, int d, int h, int w, int c, int pd, int ph, int pw, int dt,
                           void *stream)
{
    return BY_DT(dt, maxpool_same_fwd, y, x, n, d, h, w, c, pd, ph, pw, ST);
}
int trn_k_unpack_filter(float *dst, const void *src, int ci, int ci_pad, int co, int dt, void *stream)
{
    return BY_DT(dt, unpack_filter, dst, src, ci, ci_pad, co, ST);
}
int trn_k_to_dt(void *dst, const float *src, size_t n, int dt, void *stream)
{
    return BY_DT(dt, to_dt, dst, src, n, ST);
}
int trn_k_from_dt(float *dst, const void *src, size_t n, int dt, void *stream)
{
    return BY_DT(dt, from_dt, dst, src, n, ST);
}
int trn_k_scale(float *x, size_t n, float s, void *stream)
{
    scale_k<<<grid_for(n), THREADS, 0, ST>>>(x, n, s);
    return launched();
}
int trn_k_bn_moving(float *mm, float *mv, const float *mean, const float *inv, int c, double mom, double eps,
                       void *stream)
{
    bn_moving_k<<<(c + THREADS - 1) / THREADS, THREADS, 0, ST>>>(mm, mv, mean, inv, c, mom, eps);
    return launched();
}
int trn_k_lrelu_fwd(void *y, const void *x, size_t n, float alpha, int dt, void *stream)
{
    return BY_DT(dt, lrelu_fwd, y, x, n, alpha, ST);
}
int trn_k_lrelu_bwd(void *dx, const void *y, const void *dy, size_t n, float alpha, int dt, void *stream)
{
    return BY_DT(dt, lrelu_bwd, dx, y, dy, n, alpha, ST);
}
int trn_k_maxpool_fwd(void *y, const void *x, int n, int d, int h, int w, int c, int pd, int ph, int pw, int dt,
                         void *stream)
{
    return BY_DT(dt, maxpool_fwd, y, x, n, d, h, w, c, pd, ph, pw, ST);
}
int trn_k_maxpool_bwd(void *dx, const void *x, const void *dy, int n, int d, int h, int w, int c, int pd, int ph,
                         int pw, int dt, void *stream)
{
    return BY_DT(dt, maxpool_bwd, dx, x, dy, n, d, h, w, c, pd, ph, pw, ST);
}
int trn_k_dropout_mask(float *scale, size_t count, double rate, uint64_t seed, uint64_t stream_id, uint64_t first,
                          void *stream)
{
    /* base as tnrec_ref_dropout_mask computes it, on the host. */
    uint64_t base = tnrec__splitmix64(seed ^ tnrec__splitmix64(stream_id));
    dropout_mask_k<<<grid_for(count), THREADS, 0, ST>>>(scale, count, rate, base, first);
    return launched();
}
int trn_k_channel_scale(void *y, const void *x, const float *scale, int n, size_t s, int c, int dt, void *stream)
{
    return BY_DT(dt, channel_scale, y, x, scale, n, s, c, ST);
}
int trn_k_gmax_fwd(float *y, const void *x, int n, size_t s, int c, int dt, void *stream)
{
    return BY_DT(dt, gmax_fwd, y, x, n, s, c, ST);
}
int trn_k_gmax_bwd(void *dx, const void *x, const float *dy, int n, size_t s, int c, int dt, void *stream)
{
    return BY_DT(dt, gmax_bwd, dx, x, dy, n, s, c, ST);
}
int trn_k_conv_bias_add(void *y, const float *b, size_t positions, int c, int dt, void *stream)
{
    return BY_DT(dt, conv_bias_add, y, b, positions, c, ST);
}
size_t trn_k_conv_bias_scratch(int c) { return (size_t)BG_SLABS * (size_t)c; }
int trn_k_conv_bias_grad(float *db, float *scratch, const void *dy, size_t positions, int c, int dt, void *stream)
{
    return BY_DT(dt, conv_bias_grad, db, scratch, dy, positions, c, ST);
}
int trn_k_bias_add(float *y, const float *b, int n, int out, void *stream)
{
    bias_add_k<<<grid_for((size_t)n * out), THREADS, 0, ST>>>(y, b, n, out);
    return launched();
}
int trn_k_bias_grad(float *db, const float *dy, int n, int out, void *stream)
{
    bias_grad_k<<<(out + THREADS - 1) / THREADS, THREADS, 0, ST>>>(db, dy, n, out);
    return launched();
}
int trn_k_bce(double *loss, float *dz, const float *z, const float *label, const float *weight, int n,
                 double denom, float scale, void *stream)
{
    if (n <= 0)
        return 0;
    bce_k<<<(n + THREADS - 1) / THREADS, THREADS, 0, ST>>>(loss, dz, z, label, weight, n, denom, scale);
    return launched();
}
int trn_k_l2_blocks(size_t len)
{
    size_t b = (len + THREADS - 1) / THREADS;
    return b < 1 ? 1 : b > (size_t)L2_BLOCKS_MAX ? L2_BLOCKS_MAX : (int)b;
}
int trn_k_l2(float *g, const float *w, size_t len, float l2, double *partial, void *stream)
{
    l2_k<<<trn_k_l2_blocks(len), THREADS, 0, ST>>>(g, w, len, l2, partial);
    return launched();
}
int trn_k_nonfinite(int *flag, const float *g, size_t n, void *stream)
{
    nonfinite_k<<<grid_for(n), THREADS, 0, ST>>>(flag, g, n);
    return launched();
}
int trn_k_clipnorm(float *g, const size_t *off, const size_t *len, int ntensors, float clip, void *stream)
{
    if (ntensors <= 0)
        return 0;
    clipnorm_k<<<ntensors, THREADS, 0, ST>>>(g, off, len, clip);
    return launched();
}
int trn_k_adam(float *w, float *m, float *v, float *g, size_t n, float lr_t, float b1, float b2, float eps,
                  float clipvalue, float decay, void *stream)
{
    adam_k<<<grid_for(n), THREADS, 0, ST>>>(w, m, v, g, n, lr_t, b1, b2, eps, clipvalue, decay);
    return launched();
}

} /* extern "C" */
