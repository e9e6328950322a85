/* train/conv_infer.c: the inference Conv3D (3x3x3, 'same', stride 1) on
 * NDHWC data with batch norm (moving statistics) and (Leaky)ReLU applied
 * in registers before the output is stored, in float32 (AVX-512) and in
 * bfloat16 products with float32 sums (avx512_bf16's vdpbf16ps).
 *
 * The input comes as rows padded by one zero position at each end of the
 * range axis (trn_infer_pad_*), so a register block of QB positions x CV
 * vectors of 16 output channels runs over every tap without bounds tests:
 * for a fixed (kz, ky) the taps (kx, c) of position q are the 3 * ci
 * consecutive values from padded position q, and the kernel's rows for
 * them are consecutive too. All 27 taps are summed in registers; the
 * output is written once.
 *
 * float32 sums in the order of conv_fast.c's forward (bias, then kz, ky,
 * kx, c, each a fused multiply-add) and applies batch norm and the
 * activation with train/reference.c's arithmetic, so it gives conv_fast.c
 * + the reference layers' values exactly (a padded tap adds 0 * k, which
 * changes no sum). bfloat16 rounds the inputs and the kernel to bfloat16
 * (nearest even) and sums pairs of products in float32: results differ
 * from float32 by about 2^-8 relative per product.
 *
 * Not here: CPUs without AVX-512 (trn_infer_fast_ok() says 0; network.c
 * then uses conv_fast.c), other kernel sizes, training. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv_infer.h"
#include "nn.h"
#include "tnrec/config.h"

#if TNREC_HAVE_OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define TRN_X86 1
#include <immintrin.h>
#endif

int trn_infer_fast_ok(void)
{
#ifdef TRN_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

int trn_infer_bf16_ok(void)
{
    const char *env = getenv("TNREC_CPU_BF16");
    if (env && strcmp(env, "off") == 0)
        return 0;
#ifdef TRN_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

void trn_infer_epilogue(float *out, const float *gamma, const float *beta, const float *mmean,
                        const float *mvar, int co)
{
    /* out: scale-free parts of reference.c's batch norm: gamma, mean, inv, beta. */
    for (int o = 0; o < co; o++) {
        out[o] = gamma ? gamma[o] : 1.0f;
        out[co + o] = gamma ? mmean[o] : 0.0f;
        out[2 * co + o] = gamma ? (float)(1.0 / sqrt((double)mvar[o] + (float)TRN_BN_EPSILON)) : 1.0f;
        out[3 * co + o] = gamma ? beta[o] : 0.0f;
    }
}

/* Rows a thread pass is worth splitting: below this much work the
 * threads cost more to wake than they save. */
static int worth_threads(double macs)
{
    return macs > 4e6;
}

void trn_infer_pad_f32(float *xp, const float *x, int rows, int w, int ci, int cp)
{
    size_t rw = (size_t)(w + 2) * cp;
#if TNREC_HAVE_OPENMP
#pragma omp parallel for schedule(static) if (worth_threads((double)rows * rw * 16))
#endif
    for (int r = 0; r < rows; r++) {
        float *dst = xp + (size_t)r * rw;
        const float *src = x + (size_t)r * w * ci;
        memset(dst, 0, (size_t)cp * sizeof *dst);
        memset(dst + (size_t)(w + 1) * cp, 0, (size_t)cp * sizeof *dst);
        if (cp == ci) {
            memcpy(dst + cp, src, (size_t)w * ci * sizeof *dst);
            continue;
        }
        for (int q = 0; q < w; q++) {
            memcpy(dst + (size_t)(q + 1) * cp, src + (size_t)q * ci, (size_t)ci * sizeof *dst);
            memset(dst + (size_t)(q + 1) * cp + ci, 0, (size_t)(cp - ci) * sizeof *dst);
        }
    }
}

void trn_infer_pad_bf16(uint16_t *xp, const float *x, int rows, int w, int ci, int cp)
{
    size_t rw = (size_t)(w + 2) * cp;
#if TNREC_HAVE_OPENMP
#pragma omp parallel for schedule(static) if (worth_threads((double)rows * rw * 16))
#endif
    for (int r = 0; r < rows; r++) {
        uint16_t *dst = xp + (size_t)r * rw;
        const float *src = x + (size_t)r * w * ci;
        memset(dst, 0, (size_t)cp * sizeof *dst);
        memset(dst + (size_t)(w + 1) * cp, 0, (size_t)cp * sizeof *dst);
        for (int q = 0; q < w; q++) {
            uint16_t *d = dst + (size_t)(q + 1) * cp;
            for (int c = 0; c < ci; c++)
                d[c] = trn_bf16_of(src[(size_t)q * ci + c]);
            for (int c = ci; c < cp; c++)
                d[c] = 0;
        }
    }
}

void trn_infer_pack_bf16(uint16_t *kp, const float *k, int ci, int cp, int co)
{
    /* kp[t][c / 2][o][c % 2]: the pair (c, c + 1) of output o in one 32-bit lane. */
    for (int t = 0; t < 27; t++)
        for (int c = 0; c < cp; c++)
            for (int o = 0; o < co; o++) {
                float v = c < ci ? k[((size_t)t * ci + c) * co + o] : 0.0f;
                kp[(((size_t)t * cp + (c & ~1)) * co) + (size_t)o * 2 + (c & 1)] = trn_bf16_of(v);
            }
}

#ifdef TRN_X86
#define AI __attribute__((always_inline)) static inline

/* Batch norm with reference.c's operations in its order, then the
 * activation (act 0: none, 1: LeakyReLU alpha, 2: ReLU). */
__attribute__((target("avx512f"))) AI __m512 finish(__m512 v, const float *ep, int co, int o, int act, __m512 alpha)
{
    __m512 g = _mm512_loadu_ps(ep + o), mu = _mm512_loadu_ps(ep + co + o);
    __m512 inv = _mm512_loadu_ps(ep + 2 * co + o), be = _mm512_loadu_ps(ep + 3 * co + o);
    v = _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(g, _mm512_sub_ps(v, mu)), inv), be);
    __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ) ^ 0xffff;
    if (act == 1)
        v = _mm512_mask_mul_ps(v, neg, v, alpha);
    else if (act == 2)
        v = _mm512_mask_mov_ps(v, neg, _mm512_setzero_ps());
    return v;
}

/* One float32 block: QB positions from padded position q x CV vectors of
 * output channels from ob. xrow[kz * 3 + ky] is the padded input row of
 * each tap pair (NULL: outside the volume). A macro, so that QB and CV
 * are constants and the accumulators live in registers. */
#define BLOCK_F32(QB, CV)                                                                                      \
    __attribute__((target("avx512f"))) static void block_f32_##QB##_##CV(                                     \
        float *y, const float *const *xrow, const float *k, const float *b, const float *ep, int q, int ob,    \
        int ci, int co, int act, __m512 alpha)                                                                 \
    {                                                                                                          \
        __m512 acc[QB * CV];                                                                                   \
        _Pragma("GCC unroll 32") for (int j = 0; j < QB; j++)                                                  \
            _Pragma("GCC unroll 4") for (int v = 0; v < CV; v++)                                               \
                acc[j * CV + v] = _mm512_loadu_ps(b + ob + 16 * v);                                            \
        int m3 = 3 * ci;                                                                                       \
        for (int t = 0; t < 9; t++) {                                                                          \
            if (!xrow[t])                                                                                      \
                continue;                                                                                      \
            const float *xb = xrow[t] + (size_t)q * ci;                                                        \
            const float *kb = k + (size_t)t * m3 * co + ob;                                                    \
            for (int m = 0; m < m3; m++) {                                                                     \
                __m512 kv[CV];                                                                                 \
                _Pragma("GCC unroll 4") for (int v = 0; v < CV; v++)                                           \
                    kv[v] = _mm512_loadu_ps(kb + (size_t)m * co + 16 * v);                                     \
                _Pragma("GCC unroll 32") for (int j = 0; j < QB; j++)                                          \
                {                                                                                              \
                    __m512 xv = _mm512_set1_ps(xb[(size_t)j * ci + m]);                                        \
                    _Pragma("GCC unroll 4") for (int v = 0; v < CV; v++)                                       \
                        acc[j * CV + v] = _mm512_fmadd_ps(xv, kv[v], acc[j * CV + v]);                         \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
        _Pragma("GCC unroll 32") for (int j = 0; j < QB; j++)                                                  \
            _Pragma("GCC unroll 4") for (int v = 0; v < CV; v++)                                               \
                _mm512_storeu_ps(y + (size_t)(q + j) * co + ob + 16 * v,                                       \
                                 finish(acc[j * CV + v], ep, co, ob + 16 * v, act, alpha));                    \
    }

/* One bfloat16 block: as block_f32 with pairs of input channels; the
 * kernel is packed by trn_infer_pack_bf16 and ci is even. */
#define BLOCK_BF16(QB, CV)                                                                                     \
    __attribute__((target("avx512f,avx512bf16"))) static void block_bf16_##QB##_##CV(                         \
        float *y, const uint16_t *const *xrow, const uint16_t *k, const float *b, const float *ep, int q,      \
        int ob, int ci, int co, int act, __m512 alpha)                                                         \
    {                                                                                                          \
        __m512 acc[QB * CV];                                                                                   \
        _Pragma("GCC unroll 32") for (int j = 0; j < QB; j++)                                                  \
            _Pragma("GCC unroll 4") for (int v = 0; v < CV; v++)                                               \
                acc[j * CV + v] = _mm512_loadu_ps(b + ob + 16 * v);                                            \
        int m3 = 3 * ci;                                                                                       \
        for (int t = 0; t < 9; t++) {                                                                          \
            if (!xrow[t])                                                                                      \
                continue;                                                                                      \
            const uint16_t *xb = xrow[t] + (size_t)q * ci;                                                     \
            const uint16_t *kb = k + (size_t)t * m3 * co + 2 * (size_t)ob;                                     \
            for (int m = 0; m < m3; m += 2) {                                                                  \
                __m512bh kv[CV];                                                                               \
                _Pragma("GCC unroll 4") for (int v = 0; v < CV; v++)                                           \
                    kv[v] = (__m512bh)_mm512_loadu_si512(kb + (size_t)m * co + 32 * v);                        \
                _Pragma("GCC unroll 32") for (int j = 0; j < QB; j++)                                          \
                {                                                                                              \
                    int32_t pair;                                                                              \
                    memcpy(&pair, xb + (size_t)j * ci + m, sizeof pair);                                       \
                    __m512bh xv = (__m512bh)_mm512_set1_epi32(pair);                                           \
                    _Pragma("GCC unroll 4") for (int v = 0; v < CV; v++)                                       \
                        acc[j * CV + v] = _mm512_dpbf16_ps(acc[j * CV + v], xv, kv[v]);                        \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
        _Pragma("GCC unroll 32") for (int j = 0; j < QB; j++)                                                  \
            _Pragma("GCC unroll 4") for (int v = 0; v < CV; v++)                                               \
                _mm512_storeu_ps(y + (size_t)(q + j) * co + ob + 16 * v,                                       \
                                 finish(acc[j * CV + v], ep, co, ob + 16 * v, act, alpha));                    \
    }

BLOCK_F32(6, 4)
BLOCK_F32(1, 4)
BLOCK_F32(12, 2)
BLOCK_F32(1, 2)
BLOCK_F32(14, 1)
BLOCK_F32(1, 1)
BLOCK_BF16(6, 4)
BLOCK_BF16(1, 4)
BLOCK_BF16(12, 2)
BLOCK_BF16(1, 2)
BLOCK_BF16(14, 1)
BLOCK_BF16(1, 1)

/* One output row: blocks of (QB, CV) as wide as co allows, the
 * remainder of the row one position at a time. */
__attribute__((target("avx512f"))) static void row_f32(float *y, const float *const *xrow, const float *k,
                                                       const float *b, const float *ep, int w, int ci, int co,
                                                       int act, float alpha)
{
    __m512 al = _mm512_set1_ps(alpha);
    if (co % 64 == 0) {
        for (int ob = 0; ob < co; ob += 64) {
            int q = 0;
            for (; q + 6 <= w; q += 6)
                block_f32_6_4(y, xrow, k, b, ep, q, ob, ci, co, act, al);
            for (; q < w; q++)
                block_f32_1_4(y, xrow, k, b, ep, q, ob, ci, co, act, al);
        }
    } else if (co % 32 == 0) {
        for (int ob = 0; ob < co; ob += 32) {
            int q = 0;
            for (; q + 12 <= w; q += 12)
                block_f32_12_2(y, xrow, k, b, ep, q, ob, ci, co, act, al);
            for (; q < w; q++)
                block_f32_1_2(y, xrow, k, b, ep, q, ob, ci, co, act, al);
        }
    } else {
        for (int ob = 0; ob < co; ob += 16) {
            int q = 0;
            for (; q + 14 <= w; q += 14)
                block_f32_14_1(y, xrow, k, b, ep, q, ob, ci, co, act, al);
            for (; q < w; q++)
                block_f32_1_1(y, xrow, k, b, ep, q, ob, ci, co, act, al);
        }
    }
}

__attribute__((target("avx512f,avx512bf16"))) static void row_bf16(float *y, const uint16_t *const *xrow,
                                                                   const uint16_t *k, const float *b, const float *ep,
                                                                   int w, int ci, int co, int act, float alpha)
{
    __m512 al = _mm512_set1_ps(alpha);
    if (co % 64 == 0) {
        for (int ob = 0; ob < co; ob += 64) {
            int q = 0;
            for (; q + 6 <= w; q += 6)
                block_bf16_6_4(y, xrow, k, b, ep, q, ob, ci, co, act, al);
            for (; q < w; q++)
                block_bf16_1_4(y, xrow, k, b, ep, q, ob, ci, co, act, al);
        }
    } else if (co % 32 == 0) {
        for (int ob = 0; ob < co; ob += 32) {
            int q = 0;
            for (; q + 12 <= w; q += 12)
                block_bf16_12_2(y, xrow, k, b, ep, q, ob, ci, co, act, al);
            for (; q < w; q++)
                block_bf16_1_2(y, xrow, k, b, ep, q, ob, ci, co, act, al);
        }
    } else {
        for (int ob = 0; ob < co; ob += 16) {
            int q = 0;
            for (; q + 14 <= w; q += 14)
                block_bf16_14_1(y, xrow, k, b, ep, q, ob, ci, co, act, al);
            for (; q < w; q++)
                block_bf16_1_1(y, xrow, k, b, ep, q, ob, ci, co, act, al);
        }
    }
}

/* The padded input rows of output row `row`'s nine (kz, ky) taps. */
static void tap_rows(const void **xrow, const char *xp, size_t row_bytes, long row, int d, int h)
{
    int r = (int)(row % h), z = (int)((row / h) % d);
    long i = row / ((long)h * d);
    for (int kz = 0; kz < 3; kz++)
        for (int ky = 0; ky < 3; ky++) {
            int zz = z + kz - 1, yy = r + ky - 1;
            xrow[kz * 3 + ky] = zz < 0 || zz >= d || yy < 0 || yy >= h
                                    ? NULL
                                    : xp + (((size_t)i * d + zz) * h + yy) * row_bytes;
        }
}
#endif

void trn_conv3d_infer(float *y, const void *xp, const void *k, const float *b, const float *ep,
                      const trn_infer_conv *c)
{
#ifdef TRN_X86
    long rows = (long)c->n * c->d * c->h;
    size_t esz = c->bf16 ? sizeof(uint16_t) : sizeof(float);
    size_t row_bytes = (size_t)(c->w + 2) * c->ci * esz;
    int par = worth_threads((double)rows * c->w * c->ci * c->co * 27);
    (void)par;
#if TNREC_HAVE_OPENMP
#pragma omp parallel for schedule(static) if (par)
#endif
    for (long row = 0; row < rows; row++) {
        const void *xrow[9];
        tap_rows(xrow, xp, row_bytes, row, c->d, c->h);
        float *yrow = y + (size_t)row * c->w * c->co;
        if (c->bf16)
            row_bf16(yrow, (const uint16_t *const *)xrow, k, b, ep, c->w, c->ci, c->co, c->act, c->alpha);
        else
            row_f32(yrow, (const float *const *)xrow, k, b, ep, c->w, c->ci, c->co, c->act, c->alpha);
    }
#else
    (void)y, (void)xp, (void)k, (void)b, (void)ep, (void)c;
#endif
}
