/* train/conv_wgrad_bf16.c: the weight gradient of the Conv3D (3x3x3,
 * 'same', stride 1, NDHWC) in bfloat16 products with float32 sums
 * (avx512_bf16's vdpbf16ps), for `tnrec train --precision bf16` on the CPU.
 *
 * dk[kz][ky][kx][c][o] = sum over positions of x[pos + tap][c] * dy[pos][o].
 * vdpbf16ps sums two products per float32 lane, so the pairs run along the
 * range axis: dy is packed as (dy[2p][o], dy[2p + 1][o]) per output lane,
 * and x, padded by a zero position at each end of its row, twice: pairs
 * that start at even padded positions (taps kx = 0 and 2) and pairs that
 * start at odd ones (kx = 1). A register block holds 8 input channels x
 * 16 or 32 output channels over a whole row; the row's sums are added to
 * the thread's float32 gradient, as conv_fast.c does, and the threads'
 * gradients are summed in thread order, so results do not change from run
 * to run at a given thread count.
 *
 * Not here: CPUs without avx512_bf16 (the caller checks
 * trn_infer_bf16_ok() and takes conv_fast.c), output channels that are
 * not a multiple of 16. Checked against conv_fast.c by
 * tests/train/test_train_infer.c. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "conv_infer.h"
#include "conv_wgrad_bf16.h"
#include "tnrec/config.h"

#if TNREC_HAVE_OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define TRN_X86 1
#include <immintrin.h>
#endif

#ifdef TRN_X86
/* Two bfloat16 values in one 32-bit lane: a in the low half, b in the high. */
static uint32_t pair_of(float a, float b)
{
    return (uint32_t)trn_bf16_of(a) | (uint32_t)trn_bf16_of(b) << 16;
}

/* The packed operands of one call. Per row of (sample, frame, azimuth):
 * dyp: np pairs x co; xe: np + 1 pairs x ci from even padded positions;
 * xo: np pairs x ci from odd ones. Padded position j holds x[j - 1]
 * (zero outside 1..w); dy beyond w is zero. */
typedef struct packed {
    uint32_t *dyp, *xe, *xo;
    int np;
} packed;

static float xpad_at(const float *xrow, int j, int w, int ci, int c)
{
    return j >= 1 && j <= w ? xrow[(size_t)(j - 1) * ci + c] : 0.0f;
}

static void pack_row(const packed *pk, long row, const float *x, const float *dy, int w, int ci, int co)
{
    int np = pk->np;
    const float *xr = x + (size_t)row * w * ci, *gr = dy + (size_t)row * w * co;
    uint32_t *dp = pk->dyp + (size_t)row * np * co;
    uint32_t *xe = pk->xe + (size_t)row * (np + 1) * ci, *xo = pk->xo + (size_t)row * np * ci;
    for (int p = 0; p < np; p++) {
        int q = 2 * p;
        for (int o = 0; o < co; o++)
            dp[(size_t)p * co + o] = pair_of(gr[(size_t)q * co + o], q + 1 < w ? gr[(size_t)(q + 1) * co + o] : 0.0f);
        for (int c = 0; c < ci; c++)
            xo[(size_t)p * ci + c] = pair_of(xpad_at(xr, q + 1, w, ci, c), xpad_at(xr, q + 2, w, ci, c));
    }
    for (int p = 0; p <= np; p++)
        for (int c = 0; c < ci; c++)
            xe[(size_t)p * ci + c] = pair_of(xpad_at(xr, 2 * p, w, ci, c), xpad_at(xr, 2 * p + 1, w, ci, c));
}

/* dk[c][o] += sum_p xs[p][c] . dyp[p][o] for NC channels from c and CV
 * vectors of 16 outputs from ob; a macro, so that the accumulators are a
 * constant count and live in registers. */
#define WBLOCK(NC, CV)                                                                                         \
    __attribute__((target("avx512f,avx512bf16"))) static void wblock_##NC##_##CV(                             \
        float *dk, const uint32_t *xs, const uint32_t *dyp, int np, int c, int ob, int ci, int co)             \
    {                                                                                                          \
        __m512 acc[NC * CV];                                                                                   \
        _Pragma("GCC unroll 32") for (int j = 0; j < NC * CV; j++) acc[j] = _mm512_setzero_ps();               \
        for (int p = 0; p < np; p++) {                                                                         \
            __m512bh g[CV];                                                                                    \
            _Pragma("GCC unroll 4") for (int v = 0; v < CV; v++)                                               \
                g[v] = (__m512bh)_mm512_loadu_si512(dyp + (size_t)p * co + ob + 16 * v);                       \
            _Pragma("GCC unroll 8") for (int j = 0; j < NC; j++)                                               \
            {                                                                                                  \
                __m512bh a = (__m512bh)_mm512_set1_epi32((int)xs[(size_t)p * ci + c + j]);                     \
                _Pragma("GCC unroll 4") for (int v = 0; v < CV; v++)                                           \
                    acc[j * CV + v] = _mm512_dpbf16_ps(acc[j * CV + v], a, g[v]);                              \
            }                                                                                                  \
        }                                                                                                      \
        _Pragma("GCC unroll 8") for (int j = 0; j < NC; j++)                                                   \
            _Pragma("GCC unroll 4") for (int v = 0; v < CV; v++)                                               \
            {                                                                                                  \
                float *d = dk + (size_t)(c + j) * co + ob + 16 * v;                                            \
                _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), acc[j * CV + v]));                       \
            }                                                                                                  \
    }

WBLOCK(8, 2)
WBLOCK(1, 2)
WBLOCK(8, 1)
WBLOCK(1, 1)

/* One tap row's three kx planes: dk (3 x ci x co) from the x row's pairs
 * and the dy row's pairs. */
static void tap_row(float *dk, const uint32_t *xe, const uint32_t *xo, const uint32_t *dyp, int np, int ci, int co)
{
    for (int kx = 0; kx < 3; kx++) {
        const uint32_t *xs = kx == 1 ? xo : xe + (kx == 2 ? ci : 0);
        float *dkx = dk + (size_t)kx * ci * co;
        int two = co % 32 == 0;
        for (int ob = 0; ob < co; ob += two ? 32 : 16) {
            int c = 0;
            for (; c + 8 <= ci; c += 8)
                two ? wblock_8_2(dkx, xs, dyp, np, c, ob, ci, co) : wblock_8_1(dkx, xs, dyp, np, c, ob, ci, co);
            for (; c < ci; c++)
                two ? wblock_1_2(dkx, xs, dyp, np, c, ob, ci, co) : wblock_1_1(dkx, xs, dyp, np, c, ob, ci, co);
        }
    }
}

/* Rows lo..hi of the output into one thread's gradient. */
static void rows_into(float *dk, const packed *pk, long lo, long hi, int d, int h, int ci, int co)
{
    int np = pk->np;
    for (long row = lo; row < hi; row++) {
        int r = (int)(row % h), z = (int)((row / h) % d);
        long i = row / ((long)h * d);
        const uint32_t *dyp = pk->dyp + (size_t)row * np * co;
        for (int kz = 0; kz < 3; kz++) {
            int zz = z + kz - 1;
            if (zz < 0 || zz >= d)
                continue;
            for (int ky = 0; ky < 3; ky++) {
                int yy = r + ky - 1;
                if (yy < 0 || yy >= h)
                    continue;
                size_t xr = ((size_t)i * d + zz) * h + yy;
                tap_row(dk + (size_t)(kz * 3 + ky) * 3 * ci * co, pk->xe + xr * (np + 1) * ci,
                        pk->xo + xr * np * ci, dyp, np, ci, co);
            }
        }
    }
}
#endif

void trn_wgrad_ws_free(trn_wgrad_ws *ws)
{
    free(ws->buf);
    ws->buf = NULL;
    ws->cap = 0;
}

tnrec_err trn_conv3d_wgrad_bf16(float *dk, const float *x, const float *dy, int n, int d, int h, int w, int ci,
                                int co, trn_wgrad_ws *ws)
{
#ifdef TRN_X86
    if (co % 16 != 0 || n < 0 || d < 1 || h < 1 || w < 1 || ci < 1)
        return tnrec__fail(TNREC_EINVAL, "bfloat16 weight gradient: %d output channels (want a multiple of 16)", co);
    long rows = (long)n * d * h;
    size_t klen = (size_t)27 * ci * co;
    packed pk = { .np = (w + 1) / 2 };
    int nth = 1;
#if TNREC_HAVE_OPENMP
    if ((double)rows * w * ci * co * 27 > 4e6)
        nth = omp_get_max_threads();
#endif
    size_t ndy = (size_t)rows * pk.np * co, nxe = (size_t)rows * (pk.np + 1) * ci, nxo = (size_t)rows * pk.np * ci;
    if (ws->cap < ndy + nxe + nxo) {
        trn_wgrad_ws_free(ws);
        if (!(ws->buf = malloc((ndy + nxe + nxo) * sizeof *ws->buf)))
            return tnrec__fail(TNREC_ENOMEM, "out of memory in the bfloat16 weight gradient (%ld rows)", rows);
        ws->cap = ndy + nxe + nxo;
    }
    pk.dyp = ws->buf;
    pk.xe = ws->buf + ndy;
    pk.xo = ws->buf + ndy + nxe;
    float *part = calloc((size_t)nth * klen, sizeof *part);
    if (!part)
        return tnrec__fail(TNREC_ENOMEM, "out of memory in the bfloat16 weight gradient (%zu weights)", klen);
#if TNREC_HAVE_OPENMP
#pragma omp parallel for schedule(static) num_threads(nth)
#endif
    for (long row = 0; row < rows; row++)
        pack_row(&pk, row, x, dy, w, ci, co);
#if TNREC_HAVE_OPENMP
#pragma omp parallel num_threads(nth)
#endif
    {
        int tid = 0, nt = 1;
#if TNREC_HAVE_OPENMP
        tid = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        rows_into(part + (size_t)tid * klen, &pk, rows * tid / nt, rows * (tid + 1) / nt, d, h, ci, co);
    }
    memcpy(dk, part, klen * sizeof *dk);
    for (int t = 1; t < nth; t++)
        for (size_t j = 0; j < klen; j++)
            dk[j] += part[(size_t)t * klen + j];
    free(part);
    return TNREC_OK;
#else
    (void)dk, (void)x, (void)dy, (void)n, (void)d, (void)h, (void)w, (void)ci, (void)co, (void)ws;
    return tnrec__fail(TNREC_EUNSUPPORTED, "the bfloat16 weight gradient needs an x86-64 build with AVX-512");
#endif
}
