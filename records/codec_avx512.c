/* records/codec_avx512.c: the loader's one-pass convert-and-interleave
 * (rec_fields_decode_pairs) with AVX-512, 8 rows of every field at once.
 *
 * Each field's 16 elements (8 rows of 2 sweeps) are converted into one
 * register of 8 pairs; an 8 x 8 transpose of pairs gives, per row, the
 * fields' pairs side by side, and one two-source permute per output
 * register packs the rows densely, so that 8 rows of nf fields leave as nf
 * full 64-byte stores (streaming where asked). The conversions compute
 * what codec.c's AVX path and the portable reference compute, bit for bit:
 * vcvtph2ps is exact, NaN lanes take nodata, uint8 is (qmin + (c - 1) *
 * span / 254) in float with code 0 as nodata, and raw mask bytes are 1.0f
 * where nonzero. Handles 4, 6, 7 or 8 fields (a row's pairs then span at
 * most two transposed rows per output register), every field but the last
 * of one encoding (float16, uint8, or unshuffled float32), the last of
 * that encoding or a raw uint8 mask. */
#include "records_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define AI __attribute__((target("avx512f"), always_inline)) static inline

/* Elements [k, k + 16) of a field as float32. */
AI __m512 conv16(int enc, const rec_rows_ctx *c, size_t k)
{
    const uint8_t *s = c->stored;
    const __m512 vnd = _mm512_set1_ps(c->nodata);
    switch (enc) {
    case TNREC_ENC_FLOAT16: {
        __m256i h;
        if (c->shuf) {
            __m128i lo = _mm_loadu_si128((const __m128i *)(const void *)(s + k));
            __m128i hi = _mm_loadu_si128((const __m128i *)(const void *)(s + c->n + k));
            h = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_unpacklo_epi8(lo, hi)), _mm_unpackhi_epi8(lo, hi),
                                        1);
        } else {
            h = _mm256_loadu_si256((const __m256i *)(const void *)(s + 2 * k));
        }
        __m512 v = _mm512_cvtph_ps(h);
        return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), vnd);
    }
    case TNREC_ENC_FLOAT32: {
        __m512 v = _mm512_loadu_ps((const float *)(const void *)(s + 4 * k));
        return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), vnd);
    }
    case TNREC_ENC_UINT8: {
        const __m512 vlo = _mm512_set1_ps(c->qmin), vspan = _mm512_set1_ps(c->span);
        const __m512 v254 = _mm512_set1_ps(254.0f);
        __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(s + k)));
        __m512 qf = _mm512_cvtepi32_ps(_mm512_sub_epi32(q, _mm512_set1_epi32(1)));
        __m512 v = _mm512_add_ps(vlo, _mm512_div_ps(_mm512_mul_ps(qf, vspan), v254));
        return _mm512_mask_mov_ps(v, _mm512_cmpeq_epi32_mask(q, _mm512_setzero_si512()), vnd);
    }
    case TNREC_ENC_RAW:
    default: {
        __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(s + k)));
        return _mm512_maskz_mov_ps(_mm512_cmpneq_epi32_mask(q, _mm512_setzero_si512()), _mm512_set1_ps(1.0f));
    }
    }
}

/* d[j] holds field j's pairs of rows 0..7 (as doubles); afterwards d[i]
 * holds row i's pairs of fields 0..7. */
AI void transpose8(__m512d d[8])
{
    __m512d t[8], u[8];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm512_unpacklo_pd(d[2 * i], d[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_pd(d[2 * i], d[2 * i + 1]);
    }
    /* t[0]: columns 0, 2, 4, 6 of fields 0-1; t[1]: columns 1, 3, 5, 7 */
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++)
#pragma GCC unroll 2
        for (int p = 0; p < 2; p++) {
            u[4 * h + 2 * p] = _mm512_shuffle_f64x2(t[4 * h + p], t[4 * h + 2 + p], 0x88);
            u[4 * h + 2 * p + 1] = _mm512_shuffle_f64x2(t[4 * h + p], t[4 * h + 2 + p], 0xdd);
        }
    /* u[0]: columns 0, 4 of fields 0-3; u[1]: 2, 6; u[2]: 1, 5; u[3]: 3, 7 */
    static const int col[4][2] = { { 0, 4 }, { 2, 6 }, { 1, 5 }, { 3, 7 } };
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        d[col[q][0]] = _mm512_shuffle_f64x2(u[q], u[4 + q], 0x88);
        d[col[q][1]] = _mm512_shuffle_f64x2(u[q], u[4 + q], 0xdd);
    }
}

/* Rows [r, r + 8) for r in steps of 8 up to rows: NF fields (a constant),
 * every one of encoding enc but the last, of encoding last. */
AI void pairs512_impl(int enc, int last, const rec_rows_ctx *c, const int NF, size_t first, size_t rows, float *dst,
                      int nt)
{
    /* Output register m of a group of 8 rows takes its lanes l from the
     * transposed rows lo[m] (index j) and lo[m] + 1 (index 8 + j), where
     * 8 m + l = i NF + j. */
    __m512i idx[8];
    int lo[8];
#pragma GCC unroll 8
    for (int m = 0; m < NF; m++) {
        long long e[8];
        lo[m] = 8 * m / NF;
#pragma GCC unroll 8
        for (int l = 0; l < 8; l++) {
            int o = 8 * m + l, i = o / NF, j = o % NF;
            e[l] = i == lo[m] ? j : 8 + j;
        }
        idx[m] = _mm512_setr_epi64(e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]);
    }
    size_t stride = 2 * (size_t)NF;
    for (size_t r = 0; r < rows; r += 8) {
        size_t k = first + 2 * r;
        __m512d d[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++)
            d[j] = j < NF ? _mm512_castps_pd(conv16(j == NF - 1 ? last : enc, &c[j], k)) : _mm512_setzero_pd();
        transpose8(d);
        double *out = (double *)(void *)(dst + r * stride);
#pragma GCC unroll 8
        for (int m = 0; m < NF; m++) {
            /* (with NF < 8, lo[m] + 1 <= 7: the bound only keeps NF == 8,
             * whose rows are the output as they are, inside the array) */
            __m512d v = NF == 8 ? d[m] : _mm512_permutex2var_pd(d[lo[m]], idx[m], d[lo[m] + 1 < 8 ? lo[m] + 1 : 7]);
            if (nt)
                _mm512_stream_pd(out + 8 * m, v);
            else
                _mm512_storeu_pd(out + 8 * m, v);
        }
    }
}

#define PAIRS512_CASE(E, L, NF)                                                                             \
    __attribute__((target("avx512f"))) static void pairs512_##E##_##L##_##NF(const rec_rows_ctx *c, size_t first, \
                                                                             size_t rows, float *dst, int nt) \
    {                                                                                                      \
        if (nt) {                                                                                          \
            pairs512_impl(E, L, c, NF, first, rows, dst, 1);                                               \
            _mm_sfence();                                                                                  \
        } else {                                                                                           \
            pairs512_impl(E, L, c, NF, first, rows, dst, 0);                                               \
        }                                                                                                  \
    }
#define PAIRS512_ENC(E, L) PAIRS512_CASE(E, L, 4) PAIRS512_CASE(E, L, 6) PAIRS512_CASE(E, L, 7) PAIRS512_CASE(E, L, 8)
PAIRS512_ENC(TNREC_ENC_FLOAT16, TNREC_ENC_FLOAT16)
PAIRS512_ENC(TNREC_ENC_FLOAT16, TNREC_ENC_RAW)
PAIRS512_ENC(TNREC_ENC_UINT8, TNREC_ENC_UINT8)
PAIRS512_ENC(TNREC_ENC_UINT8, TNREC_ENC_RAW)
PAIRS512_ENC(TNREC_ENC_FLOAT32, TNREC_ENC_FLOAT32)
PAIRS512_ENC(TNREC_ENC_FLOAT32, TNREC_ENC_RAW)
#undef PAIRS512_ENC
#undef PAIRS512_CASE

typedef void (*pairs512_fn)(const rec_rows_ctx *, size_t, size_t, float *, int);

#define PAIRS512_PICK(E, L)                                                                          \
    (nf == 4 ? pairs512_##E##_##L##_4                                                                \
             : nf == 6 ? pairs512_##E##_##L##_6 : nf == 7 ? pairs512_##E##_##L##_7 : pairs512_##E##_##L##_8)

/* The kernel for these encodings and field count, or NULL. */
static pairs512_fn pick(tnrec_encoding e, int raw_last, int nf)
{
    switch (e) {
    case TNREC_ENC_FLOAT16:
        return raw_last ? PAIRS512_PICK(TNREC_ENC_FLOAT16, TNREC_ENC_RAW)
                        : PAIRS512_PICK(TNREC_ENC_FLOAT16, TNREC_ENC_FLOAT16);
    case TNREC_ENC_UINT8:
        return raw_last ? PAIRS512_PICK(TNREC_ENC_UINT8, TNREC_ENC_RAW) : PAIRS512_PICK(TNREC_ENC_UINT8, TNREC_ENC_UINT8);
    case TNREC_ENC_FLOAT32:
        return raw_last ? PAIRS512_PICK(TNREC_ENC_FLOAT32, TNREC_ENC_RAW)
                        : PAIRS512_PICK(TNREC_ENC_FLOAT32, TNREC_ENC_FLOAT32);
    case TNREC_ENC_RAW:
        return NULL;
    }
    return NULL;
}
#undef PAIRS512_PICK

size_t rec_fields_decode_pairs512(tnrec_encoding e, int raw_last, const rec_rows_ctx *c, int nf, size_t first,
                                  size_t rows, float *dst, int stream)
{
    if (nf != 4 && nf != 6 && nf != 7 && nf != 8)
        return 0;
    if (e == TNREC_ENC_FLOAT32)
        for (int j = 0; j < nf - raw_last; j++)
            if (c[j].shuf)
                return 0;
    pairs512_fn fn = pick(e, raw_last, nf);
    if (!fn)
        return 0;
    /* Streaming stores of whole lines need dst 64-byte aligned; where it is
     * not, codec.c's path streams 16 bytes at a time. */
    if (stream && ((uintptr_t)dst & 63) != 0)
        return 0;
    size_t done = rows / 8 * 8;
    fn(c, first, done, dst, stream);
    return done;
}

#else

size_t rec_fields_decode_pairs512(tnrec_encoding e, int raw_last, const rec_rows_ctx *c, int nf, size_t first,
                                  size_t rows, float *dst, int stream)
{
    (void)e, (void)raw_last, (void)c, (void)nf, (void)first, (void)rows, (void)dst, (void)stream;
    return 0;
}

#endif
