/* train/conv_fast.c: the fast float Conv3D (3x3x3, 'same', stride 1) on
 * NDHWC data, forward and backward, as direct loops that gcc vectorises.
 *
 * Forward: one output row (fixed sample, frame, azimuth) at a time, so the
 * row of outputs stays in cache; register blocks of 8 range positions x 16
 * output channels accumulate over (kx, ci). Backward data is the forward
 * pass of dy with the kernel flipped and transposed. Backward weights
 * accumulates 4 input channels x 16 output channels in registers over a
 * whole row. OpenMP splits rows across threads with a static schedule and
 * per-thread weight-gradient buffers summed in thread order, so results are
 * identical from run to run with the same thread count.
 *
 * Not here: other kernel sizes, strides, dilation. Checked against
 * train/reference.c by tests/train. Channel counts that are not multiples
 * of 16 take a plain (still correct) path. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "nn.h"
#include "tnrec/config.h"

#if TNREC_HAVE_OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define HOT __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define HOT
#endif

#define QB 8   /* range positions per register block */
#define CB 16  /* output channels per register block */

/* 16 floats as one vector (GCC vector extension): one AVX-512 register,
 * two AVX2 registers; loads and stores through the unaligned type. */
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
#define LOADV(p) (*(const v16u *)(p))
#define STOREV(p, v) (*(v16u *)(p) = (v))
/* 8 floats: the plain path's kernel-gradient blocks. */
typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));
#define LOADV8(p) (*(const v8u *)(p))
#define STOREV8(p, v) (*(v8u *)(p) = (v))

/* yrow[q][o] += sum_{kx,c} xrow[q+kx-1][c] * kt[kx][c][o] for one row. */
HOT static void row_forward(float *restrict yrow, const float *restrict xrow,
                            const float *restrict kt, int w, int ci, int co)
{
    if (co % CB != 0) {
        for (int q = 0; q < w; q++)
            for (int kx = 0; kx < 3; kx++) {
                int xx = q + kx - 1;
                if (xx < 0 || xx >= w)
                    continue;
                for (int c = 0; c < ci; c++) {
                    float a = xrow[(size_t)xx * ci + c];
                    const float *kp = kt + ((size_t)kx * ci + c) * co;
                    float *yp = yrow + (size_t)q * co;
                    for (int o = 0; o < co; o++)
                        yp[o] += a * kp[o];
                }
            }
        return;
    }
    for (int ob = 0; ob < co; ob += CB) {
        int q;
        /* Interior blocks of QB positions: every tap inside the row; eight
         * accumulators stay in registers while (kx, c) runs. */
        for (q = 1; q + QB + 1 <= w; q += QB) {
            float *y0 = yrow + (size_t)q * co + ob;
            v16 a0 = LOADV(y0), a1 = LOADV(y0 + co), a2 = LOADV(y0 + 2 * co), a3 = LOADV(y0 + 3 * co);
            v16 a4 = LOADV(y0 + 4 * co), a5 = LOADV(y0 + 5 * co), a6 = LOADV(y0 + 6 * co), a7 = LOADV(y0 + 7 * co);
            for (int kx = 0; kx < 3; kx++) {
                const float *xb = xrow + (size_t)(q + kx - 1) * ci;
                const float *kb = kt + (size_t)kx * ci * co + ob;
                for (int c = 0; c < ci; c++) {
                    v16 kv = LOADV(kb + (size_t)c * co);
                    const float *xc = xb + c;
                    a0 += xc[0] * kv;
                    a1 += xc[(size_t)ci] * kv;
                    a2 += xc[(size_t)2 * ci] * kv;
                    a3 += xc[(size_t)3 * ci] * kv;
                    a4 += xc[(size_t)4 * ci] * kv;
                    a5 += xc[(size_t)5 * ci] * kv;
                    a6 += xc[(size_t)6 * ci] * kv;
                    a7 += xc[(size_t)7 * ci] * kv;
                }
            }
            STOREV(y0, a0); STOREV(y0 + co, a1); STOREV(y0 + 2 * co, a2); STOREV(y0 + 3 * co, a3);
            STOREV(y0 + 4 * co, a4); STOREV(y0 + 5 * co, a5); STOREV(y0 + 6 * co, a6); STOREV(y0 + 7 * co, a7);
        }
        /* Edges and the remainder, one position at a time. */
        for (int qq = 0; qq < w; qq++) {
            if (qq >= 1 && qq < q)
                continue;
            v16 acc = LOADV(yrow + (size_t)qq * co + ob);
            for (int kx = 0; kx < 3; kx++) {
                int xx = qq + kx - 1;
                if (xx < 0 || xx >= w)
                    continue;
                for (int c = 0; c < ci; c++)
                    acc += xrow[(size_t)xx * ci + c] * LOADV(kt + ((size_t)kx * ci + c) * co + ob);
            }
            STOREV(yrow + (size_t)qq * co + ob, acc);
        }
    }
}

static void conv_rows(float *y, const float *x, const float *k, const float *b, int n, int d,
                      int h, int w, int ci, int co)
{
    long rows = (long)n * d * h;
    /* Threads only where there is enough work to pay for waking them. */
    int par = (double)rows * w * ci * co * 27 > 4e6;
    (void)par;
#if TNREC_HAVE_OPENMP
#pragma omp parallel for schedule(static) if (par)
#endif
    for (long row = 0; row < rows; row++) {
        int r = (int)(row % h), z = (int)((row / h) % d);
        long i = row / ((long)h * d);
        float *yrow = y + (size_t)row * w * co;
        for (int q = 0; q < w; q++)
            for (int o = 0; o < co; o++)
                yrow[(size_t)q * co + o] = b ? b[o] : 0.0f;
        for (int kz = 0; kz < 3; kz++) {
            int zz = z + kz - 1;
            if (zz < 0 || zz >= d)
                continue;
            for (int ky = 0; ky < 3; ky++) {
                int yy = r + ky - 1;
                if (yy < 0 || yy >= h)
                    continue;
                const float *xrow = x + (((size_t)i * d + zz) * h + yy) * w * ci;
                row_forward(yrow, xrow, k + (size_t)(kz * 3 + ky) * 3 * ci * co, w, ci, co);
            }
        }
    }
}

tnrec_err tnrec_conv3d_forward(float *y, const float *x, const float *k, const float *b, int n,
                               int d, int h, int w, int ci, int co)
{
    conv_rows(y, x, k, b, n, d, h, w, ci, co);
    return TNREC_OK;
}

/* dk[kx][c][o] += sum_q xrow[q+kx-1][c] * dyrow[q][o] for one (kz, ky) tap row. */
HOT static void row_weights(float *restrict dk, const float *restrict xrow,
                            const float *restrict dyrow, int w, int ci, int co)
{
    for (int kx = 0; kx < 3; kx++) {
        int q0 = kx == 0 ? 1 : 0, q1 = kx == 2 ? w - 1 : w; /* xx = q + kx - 1 inside */
        float *dkx = dk + (size_t)kx * ci * co;
        if (co % CB != 0) {
            /* The row is summed apart and then added, as in the blocked
             * path below: one running float sum over every row of the
             * batch lost digits where the inputs have a large mean (the
             * no-data value -3 under a kernel whose dy sums to about zero,
             * as batch norm's does): 3e1 times PyTorch's error on a first
             * layer (docs/benchmarks.md, "PyTorch parity"). */
            for (int c = 0; c < ci; c++) {
                int o = 0;
                for (; o + 8 <= co; o += 8) {
                    v8 acc = { 0 };
                    for (int q = q0; q < q1; q++)
                        acc += xrow[(size_t)(q + kx - 1) * ci + c] * LOADV8(dyrow + (size_t)q * co + o);
                    float *d0 = dkx + (size_t)c * co + o;
                    STOREV8(d0, LOADV8(d0) + acc);
                }
                for (; o < co; o++) {
                    float acc = 0;
                    for (int q = q0; q < q1; q++)
                        acc += xrow[(size_t)(q + kx - 1) * ci + c] * dyrow[(size_t)q * co + o];
                    dkx[(size_t)c * co + o] += acc;
                }
            }
            continue;
        }
        for (int ob = 0; ob < co; ob += CB) {
            int c = 0;
            /* Eight input channels at a time: eight accumulators over the row. */
            for (; c + 8 <= ci; c += 8) {
                v16 a0 = { 0 }, a1 = { 0 }, a2 = { 0 }, a3 = { 0 }, a4 = { 0 }, a5 = { 0 }, a6 = { 0 }, a7 = { 0 };
                for (int q = q0; q < q1; q++) {
                    const float *xp = xrow + (size_t)(q + kx - 1) * ci + c;
                    v16 g = LOADV(dyrow + (size_t)q * co + ob);
                    a0 += xp[0] * g; a1 += xp[1] * g; a2 += xp[2] * g; a3 += xp[3] * g;
                    a4 += xp[4] * g; a5 += xp[5] * g; a6 += xp[6] * g; a7 += xp[7] * g;
                }
                float *d0 = dkx + (size_t)c * co + ob;
                STOREV(d0, LOADV(d0) + a0);
                STOREV(d0 + co, LOADV(d0 + co) + a1);
                STOREV(d0 + 2 * co, LOADV(d0 + 2 * co) + a2);
                STOREV(d0 + 3 * co, LOADV(d0 + 3 * co) + a3);
                STOREV(d0 + 4 * co, LOADV(d0 + 4 * co) + a4);
                STOREV(d0 + 5 * co, LOADV(d0 + 5 * co) + a5);
                STOREV(d0 + 6 * co, LOADV(d0 + 6 * co) + a6);
                STOREV(d0 + 7 * co, LOADV(d0 + 7 * co) + a7);
            }
            for (; c < ci; c++) {
                v16 acc = { 0 };
                for (int q = q0; q < q1; q++)
                    acc += xrow[(size_t)(q + kx - 1) * ci + c] * LOADV(dyrow + (size_t)q * co + ob);
                float *d0 = dkx + (size_t)c * co + ob;
                STOREV(d0, LOADV(d0) + acc);
            }
        }
    }
}

void trn_conv3d_flip_kernel(float *kflip, const float *k, int ci, int co)
{
    for (int t = 0; t < 27; t++)
        for (int c = 0; c < ci; c++)
            for (int o = 0; o < co; o++)
                kflip[((size_t)(26 - t) * co + o) * ci + c] = k[((size_t)t * ci + c) * co + o];
}

tnrec_err tnrec_conv3d_backward(float *dx, float *dk, float *db, const float *x, const float *k,
                                const float *dy, int n, int d, int h, int w, int ci, int co)
{
    size_t klen = (size_t)27 * ci * co;
    int nth = 1;
#if TNREC_HAVE_OPENMP
    if ((double)n * d * h * w * ci * co * 27 > 4e6)
        nth = omp_get_max_threads();
#endif
    float *part = dk ? calloc((size_t)nth * klen, sizeof *part) : NULL;
    float *kflip = dx ? malloc(klen * sizeof *kflip) : NULL;
    if ((dk && !part) || (dx && !kflip)) {
        free(part);
        free(kflip);
        return tnrec__fail(TNREC_ENOMEM, "out of memory in conv3d backward (%zu weights)", klen);
    }
    if (dx) {
        trn_conv3d_flip_kernel(kflip, k, ci, co);
        conv_rows(dx, dy, kflip, NULL, n, d, h, w, co, ci);
    }
    if (dk) {
        long rows = (long)n * d * h;
#if TNREC_HAVE_OPENMP
#pragma omp parallel num_threads(nth)
#endif
        {
            int tid = 0, nt = 1;
#if TNREC_HAVE_OPENMP
            tid = omp_get_thread_num();
            nt = omp_get_num_threads();
#endif
            float *mine = part + (size_t)tid * klen;
            long lo = rows * tid / nt, hi = rows * (tid + 1) / nt;
            for (long row = lo; row < hi; row++) {
                int r = (int)(row % h), z = (int)((row / h) % d);
                long i = row / ((long)h * d);
                const float *dyrow = dy + (size_t)row * w * co;
                for (int kz = 0; kz < 3; kz++) {
                    int zz = z + kz - 1;
                    if (zz < 0 || zz >= d)
                        continue;
                    for (int ky = 0; ky < 3; ky++) {
                        int yy = r + ky - 1;
                        if (yy < 0 || yy >= h)
                            continue;
                        const float *xrow = x + (((size_t)i * d + zz) * h + yy) * w * ci;
                        row_weights(mine + (size_t)(kz * 3 + ky) * 3 * ci * co, xrow, dyrow, w, ci, co);
                    }
                }
            }
        }
        memcpy(dk, part, klen * sizeof *dk);
        for (int t = 1; t < nth; t++)
            for (size_t j = 0; j < klen; j++)
                dk[j] += part[(size_t)t * klen + j];
    }
    if (db) {
        size_t pos = (size_t)n * d * h * w;
        double *acc = calloc((size_t)co, sizeof *acc);
        if (!acc) {
            free(part);
            free(kflip);
            return tnrec__fail(TNREC_ENOMEM, "out of memory in conv3d backward");
        }
        for (size_t p = 0; p < pos; p++)
            for (int o = 0; o < co; o++)
                acc[o] += dy[p * co + o];
        for (int o = 0; o < co; o++)
            db[o] = (float)acc[o];
        free(acc);
    }
    free(part);
    free(kflip);
    return TNREC_OK;
}
