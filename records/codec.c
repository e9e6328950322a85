/* records/codec.c: element kernels: normalisation, IEEE half conversion,
 * uint8 quantisation, byte shuffle (docs/format.md 2.3, 2.4).
 *
 * Portable C whose loops the compiler can vectorise, plus x86-64 paths for
 * the float16 encoder (F16C's vcvtps2ph rounds to nearest even like
 * f32_to_f16, so both give the same bits) and the uint8 encoder (SSE2,
 * the same codes as the reference), and the decode into rows of a wider
 * array that the training loader uses (AVX + F16C; 8 rows at a time with
 * AVX-512 in codec_avx512.c), which also decodes whole float16 and uint8
 * fields into float32; test_codec and
 * test_loader_decode run both, the portable ones with
 * TNREC_CODEC_PORTABLE=1. The branchy scalar
 * conversion was the largest single cost of `tnrec build`. No allocation: callers pass every buffer, and
 * no alignment is assumed of them (element access goes through memcpy).
 * No-data of the float encodings is stored as a canonical NaN (float32,
 * float16) or code 0 (uint8), so a decoded mask is exact; the decoder
 * substitutes the field's nodata value. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define REC_HAVE_F16C_PATH 1
#else
#define REC_HAVE_F16C_PATH 0
#endif

#include "records_internal.h"

#define F16_NAN 0x7e00u
#define F32_NAN_BITS 0x7fc00000u

/* Element access through memcpy: caller buffers need no alignment. */
static inline float ld_f32(const void *p, size_t k)
{
    float v;
    memcpy(&v, (const uint8_t *)p + 4 * k, 4);
    return v;
}
static inline void st_f32(void *p, size_t k, float v) { memcpy((uint8_t *)p + 4 * k, &v, 4); }
static inline uint16_t ld_u16(const void *p, size_t k)
{
    uint16_t v;
    memcpy(&v, (const uint8_t *)p + 2 * k, 2);
    return v;
}
static inline void st_u16(void *p, size_t k, uint16_t v) { memcpy((uint8_t *)p + 2 * k, &v, 2); }

/* ---- IEEE binary16 <-> binary32 ---- */

static uint16_t f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) {
        if (ax == 0x7f800000u)
            return (uint16_t)(sign | 0x7c00u);
        /* NaN: keep it quiet and keep the top payload bits. */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    }
    if (ax >= 0x477ff000u) /* >= 65520: rounds to infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) { /* below 2^-14: half subnormal or zero */
        if (ax < 0x33000000u) /* below 2^-25: rounds to zero */
            return sign;
        uint32_t e = ax >> 23;               /* 102..112 */
        uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e;           /* 14..24 */
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u)))
            r++;
        return (uint16_t)(sign | r);
    }
    uint32_t h = ((ax >> 23) - 112u) << 10 | ((ax >> 13) & 0x3ffu);
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++; /* a carry into the exponent is the right result */
    return (uint16_t)(sign | h);
}

/* binary16 bits -> binary32 bits, exact for every value, without branches
 * (vectorisable): normals and subnormals are rebiased by multiplying by
 * 2^112; infinities and NaNs keep their payload. */
static inline uint32_t h2f_bits(uint32_t h)
{
    uint32_t em = h & 0x7fffu, bits = em << 13;
    float f;
    memcpy(&f, &bits, 4);
    f *= 0x1p112f;
    memcpy(&bits, &f, 4);
    uint32_t special = 0x7f800000u | ((em & 0x3ffu) << 13);
    bits = em >= 0x7c00u ? special : bits;
    return bits | (h & 0x8000u) << 16;
}

/* ---- float16 encode loop: portable and F16C ---- */

static void encode_f16_portable(const void *src, uint8_t *out, size_t from, size_t n, float off, float scale)
{
    for (size_t k = from; k < n; k++) {
        float x = ld_f32(src, k);
        st_u16(out, k, isnan(x) ? (uint16_t)F16_NAN : f32_to_f16((x - off) / scale));
    }
}

#if REC_HAVE_F16C_PATH
__attribute__((target("avx,f16c")))
static void encode_f16_f16c(const void *src, uint8_t *out, size_t n, float off, float scale)
{
    const __m256 voff = _mm256_set1_ps(off), vscale = _mm256_set1_ps(scale);
    const __m128i vnan = _mm_set1_epi16((short)F16_NAN);
    const uint8_t *s = src;
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 x = _mm256_loadu_ps((const float *)(const void *)(s + 4 * k));
        __m256 v = _mm256_div_ps(_mm256_sub_ps(x, voff), vscale);
        __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256i nan32 = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
        __m128i nan16 = _mm_packs_epi32(_mm256_castsi256_si128(nan32), _mm256_extractf128_si256(nan32, 1));
        _mm_storeu_si128((__m128i *)(void *)(out + 2 * k), _mm_blendv_epi8(h, vnan, nan16));
    }
    encode_f16_portable(src, out, k, n, off, scale);
}
#endif

#if REC_HAVE_F16C_PATH
/* AVX and F16C from CPUID leaf 1, and the OS saving YMM state (XGETBV).
 * Read directly: gcc and clang disagree on __builtin_cpu_supports names. */
static int cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    const unsigned osxsave = 1u << 27, avx = 1u << 28, f16c = 1u << 29;
    if ((c & (osxsave | avx | f16c)) != (osxsave | avx | f16c))
        return 0;
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 6u) == 6u; /* XMM and YMM state enabled */
}
#endif

/* *state (-1: not decided yet) decided once by decide(); every thread
 * computes the same answer, so a race only repeats the work. */
static int decided(atomic_int *state, int (*decide)(void))
{
    int v = atomic_load_explicit(state, memory_order_relaxed);
    if (v < 0) {
        v = decide();
        atomic_store_explicit(state, v, memory_order_relaxed);
    }
    return v;
}

static int portable_env(void)
{
    const char *env = getenv("TNREC_CODEC_PORTABLE");
    return env && env[0] == '1';
}

/* 1 when TNREC_CODEC_PORTABLE=1 asks for the element-by-element
 * reference instead of the SIMD paths. */
static int portable_requested(void)
{
    static atomic_int state = -1;
    return decided(&state, portable_env);
}

#if REC_HAVE_F16C_PATH
static int f16c_usable(void) { return cpu_has_f16c() && !portable_requested(); }
#endif

/* 1 when the F16C path is usable and not switched off by the environment. */
static int use_f16c(void)
{
#if REC_HAVE_F16C_PATH
    static atomic_int state = -1;
    return decided(&state, f16c_usable);
#else
    return 0;
#endif
}

#if REC_HAVE_F16C_PATH
/* TNREC_CODEC_AVX512=0 asks for the AVX path (to compare the two, or to
 * test the AVX path on a machine with AVX-512). */
static int avx512_usable(void)
{
    const char *env = getenv("TNREC_CODEC_AVX512");
    return use_f16c() && __builtin_cpu_supports("avx512f") && !(env && env[0] == '0');
}
#endif

/* 1 when the F16C path is in use and the CPU has AVX-512 (the one-pass
 * interleave's 8-row kernel, codec_avx512.c). */
static int use_avx512(void)
{
#if REC_HAVE_F16C_PATH
    static atomic_int state = -1;
    return decided(&state, avx512_usable);
#else
    return 0;
#endif
}

static void encode_f16(const void *src, uint8_t *out, size_t n, float off, float scale)
{
#if REC_HAVE_F16C_PATH
    if (use_f16c()) {
        encode_f16_f16c(src, out, n, off, scale);
        return;
    }
#endif
    encode_f16_portable(src, out, 0, n, off, scale);
}


/* ---- byte shuffle ---- */

static void shuffle(uint8_t *dst, const uint8_t *src, size_t n, size_t es)
{
    for (size_t b = 0; b < es; b++) {
        uint8_t *d = dst + b * n;
        const uint8_t *s = src + b;
        for (size_t k = 0; k < n; k++)
            d[k] = s[k * es];
    }
}

static void unshuffle(uint8_t *dst, const uint8_t *src, size_t n, size_t es)
{
    if (es == 2) {
        const uint8_t *lo = src, *hi = src + n;
        for (size_t k = 0; k < n; k++) {
            dst[2 * k] = lo[k];
            dst[2 * k + 1] = hi[k];
        }
        return;
    }
    if (es == 4) {
        const uint8_t *b0 = src, *b1 = src + n, *b2 = src + 2 * n, *b3 = src + 3 * n;
        for (size_t k = 0; k < n; k++) {
            uint32_t v = (uint32_t)b0[k] | (uint32_t)b1[k] << 8 | (uint32_t)b2[k] << 16 | (uint32_t)b3[k] << 24;
            memcpy(dst + 4 * k, &v, 4);
        }
        return;
    }
    for (size_t b = 0; b < es; b++) {
        const uint8_t *s = src + b * n;
        uint8_t *d = dst + b;
        for (size_t k = 0; k < n; k++)
            d[k * es] = s[k];
    }
}

/* ---- encode ---- */

/* uint8 codes (format.md 2.3), element by element: the reference. */
static void encode_u8_portable(const void *src, uint8_t *dst, size_t from, size_t n, float off, float scale,
                               float qmin, float qmax)
{
    const float span = qmax - qmin;
    for (size_t k = from; k < n; k++) {
        float x = ld_f32(src, k);
        if (isnan(x)) {
            dst[k] = 0;
            continue;
        }
        float v = (x - off) / scale;
        v = v < qmin ? qmin : (v > qmax ? qmax : v);
        float c = floorf((v - qmin) / span * 254.0f + 0.5f);
        c = c < 0.0f ? 0.0f : (c > 254.0f ? 254.0f : c);
        dst[k] = (uint8_t)(1 + (int)c);
    }
}

#if REC_HAVE_F16C_PATH
/* The same codes 16 at a time with SSE2 (every x86-64 has it). maxps
 * returns its second operand for a NaN, so no-data lanes become qmin and
 * no NaN reaches the conversion; after the clamp t = (v - qmin) / span *
 * 254 + 0.5 lies in [0.5, 254.5], where truncation is floor, and the
 * float clamp to 254 equals the reference's clamp of the floored value. */
static void encode_u8_sse2(const void *src, uint8_t *dst, size_t n, float off, float scale, float qmin, float qmax)
{
    const __m128 voff = _mm_set1_ps(off), vscale = _mm_set1_ps(scale), vlo = _mm_set1_ps(qmin);
    const __m128 vhi = _mm_set1_ps(qmax), vspan = _mm_set1_ps(qmax - qmin), v254 = _mm_set1_ps(254.0f);
    const __m128 vhalf = _mm_set1_ps(0.5f);
    const __m128i one = _mm_set1_epi32(1);
    const uint8_t *s = src;
    size_t k = 0;
    for (; k + 16 <= n; k += 16) {
        __m128i code[4];
        for (int j = 0; j < 4; j++) {
            __m128 x = _mm_loadu_ps((const float *)(const void *)(s + 4 * (k + 4 * (size_t)j)));
            __m128 nd = _mm_cmpunord_ps(x, x);
            __m128 v = _mm_div_ps(_mm_sub_ps(x, voff), vscale);
            v = _mm_min_ps(_mm_max_ps(v, vlo), vhi);
            __m128 t = _mm_add_ps(_mm_mul_ps(_mm_div_ps(_mm_sub_ps(v, vlo), vspan), v254), vhalf);
            __m128i c = _mm_add_epi32(_mm_cvttps_epi32(_mm_min_ps(t, v254)), one);
            code[j] = _mm_andnot_si128(_mm_castps_si128(nd), c);
        }
        __m128i lo = _mm_packs_epi32(code[0], code[1]), hi = _mm_packs_epi32(code[2], code[3]);
        _mm_storeu_si128((__m128i *)(void *)(dst + k), _mm_packus_epi16(lo, hi));
    }
    encode_u8_portable(src, dst, k, n, off, scale, qmin, qmax);
}
#endif

/* TNREC_CODEC_PORTABLE=1 selects the element-by-element reference here too. */
static void encode_u8(const void *src, uint8_t *dst, size_t n, float off, float scale, float qmin, float qmax)
{
#if REC_HAVE_F16C_PATH
    if (!portable_requested()) {
        encode_u8_sse2(src, dst, n, off, scale, qmin, qmax);
        return;
    }
#endif
    encode_u8_portable(src, dst, 0, n, off, scale, qmin, qmax);
}

void rec_field_encode(const tnrec_field *f, const void *src, uint8_t *dst, uint8_t *scratch)
{
    size_t n = tnrec_field_elems(f), es = rec_stored_elem_size(f);
    int shuf = f->shuffle && es > 1;
    uint8_t *out = shuf ? scratch : dst;
    const float off = f->offset, scale = f->scale;
    switch (f->encoding) {
    case TNREC_ENC_RAW:
        if (shuf) {
            shuffle(dst, src, n, es);
            return;
        }
        memcpy(dst, src, n * es);
        return;
    case TNREC_ENC_FLOAT32:
        for (size_t k = 0; k < n; k++) {
            float x = ld_f32(src, k), v = (x - off) / scale;
            uint32_t bits;
            memcpy(&bits, &v, 4);
            if (isnan(x))
                bits = F32_NAN_BITS;
            memcpy(out + 4 * k, &bits, 4);
        }
        break;
    case TNREC_ENC_FLOAT16:
        encode_f16(src, out, n, off, scale);
        break;
    case TNREC_ENC_UINT8:
        encode_u8(src, dst, n, off, scale, f->qmin, f->qmax);
        return;
    }
    if (shuf)
        shuffle(dst, scratch, n, es);
}

/* ---- decode ---- */

static inline uint32_t load_u32(const uint8_t *stored, size_t n, size_t k, int shuf)
{
    if (shuf)
        return (uint32_t)stored[k] | (uint32_t)stored[n + k] << 8 | (uint32_t)stored[2 * n + k] << 16 |
               (uint32_t)stored[3 * n + k] << 24;
    uint32_t v;
    memcpy(&v, stored + 4 * k, 4);
    return v;
}

static inline uint16_t load_u16(const uint8_t *stored, size_t n, size_t k, int shuf)
{
    if (shuf)
        return (uint16_t)(stored[k] | stored[n + k] << 8);
    uint16_t v;
    memcpy(&v, stored + 2 * k, 2);
    return v;
}

static inline int f32_bits_nan(uint32_t b) { return (b & 0x7fffffffu) > 0x7f800000u; }
static inline int f16_bits_nan(uint16_t h) { return (h & 0x7fffu) > 0x7c00u; }

static inline uint32_t ld_u32(const void *p, size_t k)
{
    uint32_t v;
    memcpy(&v, (const uint8_t *)p + 4 * k, 4);
    return v;
}
static inline void st_u32(void *p, size_t k, uint32_t v) { memcpy((uint8_t *)p + 4 * k, &v, 4); }

/* No-data elements are NaN in the stored form; masks are taken before
 * NaN is replaced. Loops are kept branch-free for the vectoriser. */
static void decode_float32(const tnrec_field *f, const uint8_t *stored, size_t n, int shuf, tnrec_dtype as,
                           void *dst, uint8_t *mask)
{
    if (as == TNREC_DTYPE_F32) {
        uint32_t nodata;
        memcpy(&nodata, &f->nodata, 4);
        if (shuf)
            unshuffle(dst, stored, n, 4);
        else
            memcpy(dst, stored, n * 4);
        if (mask)
            for (size_t k = 0; k < n; k++)
                mask[k] = (uint8_t)f32_bits_nan(ld_u32(dst, k));
        for (size_t k = 0; k < n; k++) {
            uint32_t b = ld_u32(dst, k);
            st_u32(dst, k, f32_bits_nan(b) ? nodata : b);
        }
        return;
    }
    uint16_t nodata16 = f32_to_f16(f->nodata);
    for (size_t k = 0; k < n; k++) {
        uint32_t b = load_u32(stored, n, k, shuf);
        float v;
        memcpy(&v, &b, 4);
        int nd = f32_bits_nan(b);
        st_u16(dst, k, nd ? nodata16 : f32_to_f16(v));
        if (mask)
            mask[k] = (uint8_t)nd;
    }
}

static int decode_whole_simd(const tnrec_field *f, const uint8_t *stored, float *dst);

static void decode_float16(const tnrec_field *f, const uint8_t *stored, size_t n, int shuf, tnrec_dtype as,
                           void *dst, uint8_t *mask)
{
    if (mask)
        for (size_t k = 0; k < n; k++)
            mask[k] = (uint8_t)f16_bits_nan(load_u16(stored, n, k, shuf));
    if (as == TNREC_DTYPE_F16) {
        uint16_t nodata16 = f32_to_f16(f->nodata);
        if (shuf)
            unshuffle(dst, stored, n, 2);
        else
            memcpy(dst, stored, n * 2);
        for (size_t k = 0; k < n; k++) {
            uint16_t h = ld_u16(dst, k);
            st_u16(dst, k, f16_bits_nan(h) ? nodata16 : h);
        }
        return;
    }
    if (decode_whole_simd(f, stored, dst))
        return;
    uint32_t nodata;
    memcpy(&nodata, &f->nodata, 4);
    if (shuf) {
        const uint8_t *lo = stored, *hi = stored + n;
        for (size_t k = 0; k < n; k++) {
            uint32_t h = (uint32_t)lo[k] | (uint32_t)hi[k] << 8;
            st_u32(dst, k, f16_bits_nan((uint16_t)h) ? nodata : h2f_bits(h));
        }
    } else {
        for (size_t k = 0; k < n; k++) {
            uint32_t h = ld_u16(stored, k);
            st_u32(dst, k, f16_bits_nan((uint16_t)h) ? nodata : h2f_bits(h));
        }
    }
}

static void decode_uint8(const tnrec_field *f, const uint8_t *stored, size_t n, tnrec_dtype as, void *dst,
                         uint8_t *mask)
{
    if (mask)
        for (size_t k = 0; k < n; k++)
            mask[k] = stored[k] == 0;
    if (as == TNREC_DTYPE_F32 && decode_whole_simd(f, stored, dst))
        return;
    float lut[256];
    lut[0] = f->nodata;
    const float span = f->qmax - f->qmin;
    for (int c = 1; c < 256; c++)
        lut[c] = f->qmin + (float)(c - 1) * span / 254.0f;
    if (as == TNREC_DTYPE_F32) {
        for (size_t k = 0; k < n; k++)
            st_f32(dst, k, lut[stored[k]]);
    } else {
        uint16_t lut16[256];
        for (int c = 0; c < 256; c++)
            lut16[c] = f32_to_f16(lut[c]);
        for (size_t k = 0; k < n; k++)
            st_u16(dst, k, lut16[stored[k]]);
    }
}

void rec_field_decode(const tnrec_field *f, const uint8_t *stored, tnrec_dtype as, void *dst, uint8_t *mask)
{
    size_t n = tnrec_field_elems(f), es = rec_stored_elem_size(f);
    int shuf = f->shuffle && es > 1;
    switch (f->encoding) {
    case TNREC_ENC_RAW:
        if (shuf)
            unshuffle(dst, stored, n, es);
        else
            memcpy(dst, stored, n * es);
        if (mask)
            memset(mask, 0, n);
        return;
    case TNREC_ENC_FLOAT32:
        decode_float32(f, stored, n, shuf, as, dst, mask);
        return;
    case TNREC_ENC_FLOAT16:
        decode_float16(f, stored, n, shuf, as, dst, mask);
        return;
    case TNREC_ENC_UINT8:
        decode_uint8(f, stored, n, as, dst, mask);
        return;
    }
}

/* ---- statistics of decoded values ---- */

/* Element k of decoded values of type dt, widened exactly to double. */
static double elem_double(const void *vals, tnrec_dtype dt, size_t k)
{
    const uint8_t *p = vals;
    switch (dt) {
    case TNREC_DTYPE_U8: return p[k];
    case TNREC_DTYPE_I8: return (int8_t)p[k];
    case TNREC_DTYPE_U16: return ld_u16(p, k);
    case TNREC_DTYPE_I16: return (int16_t)ld_u16(p, k);
    case TNREC_DTYPE_U32: return ld_u32(p, k);
    case TNREC_DTYPE_I32: return (int32_t)ld_u32(p, k);
    case TNREC_DTYPE_U64: case TNREC_DTYPE_I64: {
        uint64_t v;
        memcpy(&v, p + 8 * k, 8);
        return dt == TNREC_DTYPE_U64 ? (double)v : (double)(int64_t)v;
    }
    case TNREC_DTYPE_F16: {
        uint32_t b = h2f_bits(ld_u16(p, k));
        float f;
        memcpy(&f, &b, 4);
        return f;
    }
    case TNREC_DTYPE_F32: return ld_f32(p, k);
    case TNREC_DTYPE_F64: {
        double v;
        memcpy(&v, p + 8 * k, 8);
        return v;
    }
    }
    return NAN;
}

void rec_field_stats(const tnrec_field *f, const void *vals, const uint8_t *mask, tnrec_channel_stats *out)
{
    const tnrec_dtype dt = tnrec_field_decoded_dtype(f);
    const size_t n = tnrec_field_elems(f), nch = tnrec_field_channels(f);
    for (size_t c = 0; c < nch; c++)
        out[c] = (tnrec_channel_stats){ 0, 0, INFINITY, -INFINITY, 0.0, NAN };
    for (size_t k = 0; k < n; k++) {
        tnrec_channel_stats *st = &out[k % nch];
        st->count++;
        double v = elem_double(vals, dt, k);
        if (mask ? mask[k] != 0 : isnan(v))
            continue;
        st->data++;
        st->sum += v;
        st->min = v < st->min ? v : st->min;
        st->max = v > st->max ? v : st->max;
    }
    for (size_t c = 0; c < nch; c++)
        if (out[c].data)
            out[c].mean = out[c].sum / (double)out[c].data;
}

/* ---- decode into rows of a wider array (the loader's NDHWC batch) ----
 *
 * Elements [first, first + rows * width) of a field, as float32, row i's
 * width values to dst + i * stride: the values rec_field_decode gives
 * (float encodings), or 1.0f / 0.0f for nonzero / zero bytes of a raw
 * uint8 field. Chunks of at most ROWS_CHUNK elements are converted into a
 * buffer that stays in L1 and copied out row by row, so no pass over a
 * whole field is added. The SIMD conversions compute what the reference
 * does, bit for bit: vcvtph2ps is exact for every half (as h2f_bits), NaN
 * lanes are replaced by nodata, and the uint8 values are the reference
 * table's arithmetic, (qmin + (c - 1) * span / 254) in float, lane by lane. */

#define ROWS_CHUNK 512

/* Portable conversion of elements [k0, k0 + cnt) into out. */
static void rows_portable(const tnrec_field *f, const rec_rows_ctx *c, size_t k0, size_t cnt, float *out)
{
    uint32_t nodata;
    memcpy(&nodata, &c->nodata, 4);
    switch (f->encoding) {
    case TNREC_ENC_RAW:
        for (size_t k = 0; k < cnt; k++)
            out[k] = c->stored[k0 + k] ? 1.0f : 0.0f;
        return;
    case TNREC_ENC_FLOAT32:
        for (size_t k = 0; k < cnt; k++) {
            uint32_t b = load_u32(c->stored, c->n, k0 + k, c->shuf);
            st_u32(out, k, f32_bits_nan(b) ? nodata : b);
        }
        return;
    case TNREC_ENC_FLOAT16:
        for (size_t k = 0; k < cnt; k++) {
            uint16_t h = load_u16(c->stored, c->n, k0 + k, c->shuf);
            st_u32(out, k, f16_bits_nan(h) ? nodata : h2f_bits(h));
        }
        return;
    case TNREC_ENC_UINT8:
        for (size_t k = 0; k < cnt; k++) {
            uint8_t q = c->stored[k0 + k];
            out[k] = q ? c->qmin + (float)(q - 1) * c->span / 254.0f : c->nodata;
        }
        return;
    }
}

#if REC_HAVE_F16C_PATH
/* 8 converted elements [k, k + 8) to their place: contiguous, or (pairs)
 * as 4 rows of 2 at out + (k / 2) * stride, straight from the register. */
__attribute__((target("avx,f16c"), always_inline))
static inline void put8(float *out, size_t k, __m256 v, int pairs, size_t stride)
{
    if (!pairs) {
        _mm256_storeu_ps(out + k, v);
        return;
    }
    float *d = out + (k / 2) * stride;
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    _mm_storel_pi((__m64 *)(void *)d, lo);
    _mm_storeh_pi((__m64 *)(void *)(d + stride), lo);
    _mm_storel_pi((__m64 *)(void *)(d + 2 * stride), hi);
    _mm_storeh_pi((__m64 *)(void *)(d + 3 * stride), hi);
}

/* v with nodata where mask is set: vblendvps written out, because gcc 12
 * turns _mm256_blendv_ps into a condition on the mask's sign per lane and,
 * without AVX2's 256-bit integer compare, expands that lane by lane with
 * branches (about 3 times the instructions of the whole loop). */
__attribute__((target("avx,f16c"), always_inline))
static inline __m256 nodata_blend(__m256 v, __m256 vnd, __m256 mask)
{
    __m256 r;
    __asm__("vblendvps %3, %2, %1, %0" : "=x"(r) : "x"(v), "x"(vnd), "x"(mask));
    return r;
}

/* Elements [k, k + 8) of a field as float32 with AVX + F16C. No-data
 * lanes come from float compares (NaN after conversion; code 0 as -1.0f
 * after the code minus 1 is converted), which blend in place. */
__attribute__((target("avx,f16c"), always_inline))
static inline __m256 conv8(int enc, const rec_rows_ctx *c, size_t k)
{
    const __m256 vnd = _mm256_set1_ps(c->nodata);
    const uint8_t *s = c->stored;
    switch (enc) {
    case TNREC_ENC_FLOAT16: {
        __m128i h;
        if (c->shuf) {
            __m128i lo = _mm_loadl_epi64((const __m128i *)(const void *)(s + k));
            __m128i hi = _mm_loadl_epi64((const __m128i *)(const void *)(s + c->n + k));
            h = _mm_unpacklo_epi8(lo, hi);
        } else {
            h = _mm_loadu_si128((const __m128i *)(const void *)(s + 2 * k));
        }
        __m256 v = _mm256_cvtph_ps(h);
        return nodata_blend(v, vnd, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    case TNREC_ENC_FLOAT32: {
        __m256 v;
        if (c->shuf) {
            const uint8_t *p = s + k;
            __m128i b0 = _mm_loadl_epi64((const __m128i *)(const void *)p);
            __m128i b1 = _mm_loadl_epi64((const __m128i *)(const void *)(p + c->n));
            __m128i b2 = _mm_loadl_epi64((const __m128i *)(const void *)(p + 2 * c->n));
            __m128i b3 = _mm_loadl_epi64((const __m128i *)(const void *)(p + 3 * c->n));
            __m128i w01 = _mm_unpacklo_epi8(b0, b1), w23 = _mm_unpacklo_epi8(b2, b3);
            __m128i lo = _mm_unpacklo_epi16(w01, w23), hi = _mm_unpackhi_epi16(w01, w23);
            v = _mm256_castsi256_ps(_mm256_insertf128_si256(_mm256_castsi128_si256(lo), hi, 1));
        } else {
            v = _mm256_loadu_ps((const float *)(const void *)(s + 4 * k));
        }
        return nodata_blend(v, vnd, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    case TNREC_ENC_UINT8: {
        const __m256 vlo = _mm256_set1_ps(c->qmin), vspan = _mm256_set1_ps(c->span);
        const __m256 v254 = _mm256_set1_ps(254.0f), vm1 = _mm256_set1_ps(-1.0f);
        const __m128i one = _mm_set1_epi32(1);
        __m128i b = _mm_loadl_epi64((const __m128i *)(const void *)(s + k));
        __m128i q0 = _mm_sub_epi32(_mm_cvtepu8_epi32(b), one);
        __m128i q1 = _mm_sub_epi32(_mm_cvtepu8_epi32(_mm_srli_si128(b, 4)), one);
        __m256 qf = _mm256_cvtepi32_ps(_mm256_insertf128_si256(_mm256_castsi128_si256(q0), q1, 1));
        __m256 v = _mm256_add_ps(vlo, _mm256_div_ps(_mm256_mul_ps(qf, vspan), v254));
        return nodata_blend(v, vnd, _mm256_cmp_ps(qf, vm1, _CMP_EQ_OQ));
    }
    case TNREC_ENC_RAW:
    default: {
        const __m256 vone = _mm256_set1_ps(1.0f), vzero = _mm256_setzero_ps();
        __m128i b = _mm_loadl_epi64((const __m128i *)(const void *)(s + k));
        __m128i q0 = _mm_cvtepu8_epi32(b), q1 = _mm_cvtepu8_epi32(_mm_srli_si128(b, 4));
        __m256 qf = _mm256_cvtepi32_ps(_mm256_insertf128_si256(_mm256_castsi128_si256(q0), q1, 1));
        return _mm256_and_ps(_mm256_cmp_ps(qf, vzero, _CMP_NEQ_OQ), vone);
    }
    }
}

/* Elements [k0, k0 + cnt) with AVX + F16C, 8 at a time, into out (pairs:
 * rows of 2 floats stride apart, cnt even); the tail portable. */
__attribute__((target("avx,f16c"), always_inline))
static inline void rows_f16c_impl(const tnrec_field *f, const rec_rows_ctx *c, size_t k0, size_t cnt, float *out,
                                  int pairs, size_t stride)
{
    size_t k = 0;
    switch (f->encoding) {
    case TNREC_ENC_FLOAT16:
        for (; k + 8 <= cnt; k += 8)
            put8(out, k, conv8(TNREC_ENC_FLOAT16, c, k0 + k), pairs, stride);
        break;
    case TNREC_ENC_FLOAT32:
        for (; k + 8 <= cnt; k += 8)
            put8(out, k, conv8(TNREC_ENC_FLOAT32, c, k0 + k), pairs, stride);
        break;
    case TNREC_ENC_UINT8:
        for (; k + 8 <= cnt; k += 8)
            put8(out, k, conv8(TNREC_ENC_UINT8, c, k0 + k), pairs, stride);
        break;
    case TNREC_ENC_RAW:
        for (; k + 8 <= cnt; k += 8)
            put8(out, k, conv8(TNREC_ENC_RAW, c, k0 + k), pairs, stride);
        break;
    }
    if (k < cnt) {
        if (!pairs) {
            rows_portable(f, c, k0 + k, cnt - k, out + k);
            return;
        }
        float tail[8];
        rows_portable(f, c, k0 + k, cnt - k, tail);
        for (size_t j = 0; j < cnt - k; j += 2)
            memcpy(out + ((k + j) / 2) * stride, tail + j, 8);
    }
}

__attribute__((target("avx,f16c")))
static void rows_f16c(const tnrec_field *f, const rec_rows_ctx *c, size_t k0, size_t cnt, float *out)
{
    rows_f16c_impl(f, c, k0, cnt, out, 0, 0);
}

/* Rows of 2 (TorNet's two sweeps): no buffer, each row stored in place. */
__attribute__((target("avx,f16c")))
static void rows_f16c_pairs(const tnrec_field *f, const rec_rows_ctx *c, size_t k0, size_t rows, float *dst,
                            size_t stride)
{
    rows_f16c_impl(f, c, k0, 2 * rows, dst, 1, stride);
}

/* Row g (0..3) of 4 fields' 4 pairs: d[j] holds field j's pairs of rows
 * 0..3 as 4 doubles; the 4 x 4 transpose gives, per row, the fields' pairs
 * side by side. */
__attribute__((target("avx"), always_inline))
static inline void transpose_pairs(const __m256d d[4], __m256d row[4])
{
    __m256d t0 = _mm256_unpacklo_pd(d[0], d[1]), t1 = _mm256_unpackhi_pd(d[0], d[1]);
    __m256d t2 = _mm256_unpacklo_pd(d[2], d[3]), t3 = _mm256_unpackhi_pd(d[2], d[3]);
    row[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    row[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    row[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    row[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

/* The first cnt (1..4) pairs of v to p; nt: with streaming stores, which
 * bypass the cache (p 16-byte aligned, cnt 2 or 4). */
__attribute__((target("avx"), always_inline))
static inline void store_pairs(float *p, __m256d v, int cnt, int nt)
{
    double *d = (double *)(void *)p;
    if (nt) {
        _mm_stream_pd(d, _mm256_castpd256_pd128(v));
        if (cnt == 4)
            _mm_stream_pd(d + 2, _mm256_extractf128_pd(v, 1));
        return;
    }
    if (cnt == 4) {
        _mm256_storeu_pd(d, v);
        return;
    }
    __m128d lo = _mm256_castpd256_pd128(v);
    if (cnt == 1) {
        _mm_storel_pd(d, lo);
        return;
    }
    _mm_storeu_pd(d, lo);
    if (cnt == 3)
        _mm_storel_pd(d + 2, _mm256_extractf128_pd(v, 1));
}

/* Rows [r, r + 4) of every field at once: each field's 8 elements are
 * converted, then 4 fields at a time are transposed so that every row's
 * pairs leave as one store of up to 32 bytes. Every field has encoding
 * enc but the last, which has last (a mask after the variables); with
 * constants for both, the conversions compile without a switch. */
__attribute__((target("avx,f16c"), always_inline))
static inline void fields_pairs_impl(int enc, int last, const rec_rows_ctx *c, int nf,
                                     size_t first, size_t rows, float *dst, int nt)
{
    size_t stride = 2 * (size_t)nf;
    for (size_t r = 0; r < rows; r += 4) {
        size_t k = first + 2 * r;
        float *row0 = dst + r * stride;
        for (int j0 = 0; j0 < nf; j0 += 4) {
            int cnt = nf - j0 < 4 ? nf - j0 : 4;
            __m256d d[4], row[4];
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                int e = j0 + j == nf - 1 ? last : enc;
                d[j] = j < cnt ? _mm256_castps_pd(conv8(e, &c[j0 + j], k)) : _mm256_setzero_pd();
            }
            transpose_pairs(d, row);
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++)
                store_pairs(row0 + (size_t)g * stride + 2 * (size_t)j0, row[g], cnt, nt);
        }
    }
}

#define REC_PAIRS_CASE(T, E, L)                                                                          \
    __attribute__((target(T))) static void fields_pairs_##E##_##L(const rec_rows_ctx *c, int nf, size_t first, \
                                                                  size_t rows, float *dst, int nt)         \
    {                                                                                                    \
        if (nt) {                                                                                        \
            fields_pairs_impl(E, L, c, nf, first, rows, dst, 1);                                         \
            _mm_sfence();                                                                                \
        } else {                                                                                         \
            fields_pairs_impl(E, L, c, nf, first, rows, dst, 0);                                         \
        }                                                                                                \
    }
REC_PAIRS_CASE("avx,f16c", TNREC_ENC_FLOAT16, TNREC_ENC_FLOAT16)
REC_PAIRS_CASE("avx,f16c", TNREC_ENC_FLOAT16, TNREC_ENC_RAW)
REC_PAIRS_CASE("avx,f16c", TNREC_ENC_UINT8, TNREC_ENC_UINT8)
REC_PAIRS_CASE("avx,f16c", TNREC_ENC_UINT8, TNREC_ENC_RAW)
REC_PAIRS_CASE("avx,f16c", TNREC_ENC_FLOAT32, TNREC_ENC_FLOAT32)
REC_PAIRS_CASE("avx,f16c", TNREC_ENC_FLOAT32, TNREC_ENC_RAW)
#undef REC_PAIRS_CASE

/* Fields of encoding e (the last a raw mask where raw), as
 * rec_pairs_encoding found them: the SIMD pass; 0 for raw fields. */
static int fields_pairs_f16c(tnrec_encoding e, int raw, const rec_rows_ctx *c, int nf, size_t first, size_t rows,
                             float *dst, int nt)
{
    switch (e) {
    case TNREC_ENC_FLOAT16:
        (raw ? fields_pairs_TNREC_ENC_FLOAT16_TNREC_ENC_RAW : fields_pairs_TNREC_ENC_FLOAT16_TNREC_ENC_FLOAT16)(
            c, nf, first, rows, dst, nt);
        return 1;
    case TNREC_ENC_UINT8:
        (raw ? fields_pairs_TNREC_ENC_UINT8_TNREC_ENC_RAW : fields_pairs_TNREC_ENC_UINT8_TNREC_ENC_UINT8)(
            c, nf, first, rows, dst, nt);
        return 1;
    case TNREC_ENC_FLOAT32:
        (raw ? fields_pairs_TNREC_ENC_FLOAT32_TNREC_ENC_RAW : fields_pairs_TNREC_ENC_FLOAT32_TNREC_ENC_FLOAT32)(
            c, nf, first, rows, dst, nt);
        return 1;
    case TNREC_ENC_RAW:
        return 0;
    }
    return 0;
}
#endif

int rec_pairs_encoding(const tnrec_field *const *f, int nf, tnrec_encoding *e, int *raw_last)
{
    tnrec_encoding first = f[0]->encoding, last = f[nf - 1]->encoding;
    for (int j = 0; j < nf - 1; j++)
        if (f[j]->encoding != first)
            return 0;
    if (last != first && last != TNREC_ENC_RAW)
        return 0;
    *e = first;
    *raw_last = last != first;
    return 1;
}

static rec_rows_ctx rows_context(const tnrec_field *f, const uint8_t *stored)
{
    rec_rows_ctx c;
    c.stored = stored;
    c.n = tnrec_field_elems(f);
    c.shuf = f->shuffle && rec_stored_elem_size(f) > 1;
    c.nodata = f->nodata;
    c.qmin = f->qmin;
    c.span = f->qmax - f->qmin;
    return c;
}

size_t rec_fields_decode_pairs(const tnrec_field *const *f, const uint8_t *const *stored, int nf, size_t first,
                               size_t rows, float *dst, int stream)
{
#if REC_HAVE_F16C_PATH
    tnrec_encoding e;
    int raw;
    if (nf < 1 || nf > REC_PAIRS_MAX_FIELDS || !use_f16c() || !rec_pairs_encoding(f, nf, &e, &raw))
        return 0;
    rec_rows_ctx c[REC_PAIRS_MAX_FIELDS];
    for (int j = 0; j < nf; j++)
        c[j] = rows_context(f[j], stored[j]);
    size_t done8 = use_avx512() ? rec_fields_decode_pairs512(e, raw, c, nf, first, rows, dst, stream) : 0;
    size_t stride = 2 * (size_t)nf, done = done8 + (rows - done8) / 4 * 4;
    float *rest = dst + done8 * stride;
    /* Streaming stores need 16-byte aligned rows: an even count of pairs. */
    int nt = stream && nf % 2 == 0 && ((uintptr_t)rest & 15) == 0;
    if (done == done8 || fields_pairs_f16c(e, raw, c, nf, first + 2 * done8, done - done8, rest, nt))
        return done;
    return done8;
#else
    (void)f, (void)stored, (void)nf, (void)first, (void)rows, (void)dst, (void)stream;
    return 0;
#endif
}

static void rows_convert(const tnrec_field *f, const rec_rows_ctx *c, size_t k0, size_t cnt, float *out)
{
#if REC_HAVE_F16C_PATH
    if (use_f16c()) {
        rows_f16c(f, c, k0, cnt, out);
        return;
    }
#endif
    rows_portable(f, c, k0, cnt, out);
}

/* A whole float16 or uint8 field into float32 (dst need not be aligned)
 * with the SIMD conversion the rows use: the values of the scalar loops in
 * decode_float16 and decode_uint8, bit for bit (ds[i] of the Python
 * reader: 1.7x the samples/s on float16 shards, 1.1x on uint8). 0 where
 * there is no SIMD path. */
static int decode_whole_simd(const tnrec_field *f, const uint8_t *stored, float *dst)
{
#if REC_HAVE_F16C_PATH
    if (!use_f16c())
        return 0;
    rec_rows_ctx c = rows_context(f, stored);
    rows_f16c(f, &c, 0, c.n, dst);
    return 1;
#else
    (void)f, (void)stored, (void)dst;
    return 0;
#endif
}

void rec_field_decode_rows(const tnrec_field *f, const uint8_t *stored, size_t first, size_t rows, size_t width,
                           float *dst, size_t stride)
{
    rec_rows_ctx c = rows_context(f, stored);
#if REC_HAVE_F16C_PATH
    if (width == 2 && stride != 2 && use_f16c()) {
        rows_f16c_pairs(f, &c, first, rows, dst, stride);
        return;
    }
#endif
    if (stride == width || width >= ROWS_CHUNK) {
        /* Rows that are contiguous, or long: straight into dst. */
        if (stride == width) {
            rows_convert(f, &c, first, rows * width, dst);
            return;
        }
        for (size_t i = 0; i < rows; i++)
            rows_convert(f, &c, first + i * width, width, dst + i * stride);
        return;
    }
    float buf[ROWS_CHUNK];
    size_t per = ROWS_CHUNK / width;
    for (size_t i = 0; i < rows; i += per) {
        size_t nr = rows - i < per ? rows - i : per;
        rows_convert(f, &c, first + i * width, nr * width, buf);
        float *d = dst + i * stride;
        if (width == 2) {
            for (size_t r = 0; r < nr; r++)
                memcpy(d + r * stride, buf + 2 * r, 8);
        } else {
            for (size_t r = 0; r < nr; r++)
                memcpy(d + r * stride, buf + r * width, width * sizeof(float));
        }
    }
}
