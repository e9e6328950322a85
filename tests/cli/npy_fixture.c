/* tests/cli/npy_fixture.c: writes .npy files of every dtype and several
 * shapes (0-d, 1-d, empty, 4-d) with tnrec_npy_write, for check_npy.py to
 * read back with numpy.load. Also checks the error paths: a bad type or a
 * missing directory is refused and leaves no file behind.
 *
 * Values follow formulas that check_npy.py repeats; keep them in step. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tnrec_test.h"

static char out_dir[4096];

static void put(const char *name, tnrec_dtype dt, uint32_t ndim, const uint32_t *shape, const void *data)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.npy", out_dir, name);
    CHECK_OK(tnrec_npy_write(path, dt, ndim, shape, data));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: npy_fixture OUT_DIR\n");
        return 2;
    }
    snprintf(out_dir, sizeof out_dir, "%s", argv[1]);

    /* Integers: element k is (k * 37 + 11) wrapped to the type. */
    enum { N = 24 };
    uint8_t u8[N]; int8_t i8[N]; uint16_t u16[N]; int16_t i16[N];
    uint32_t u32[N]; int32_t i32[N]; uint64_t u64[N]; int64_t i64[N];
    for (int k = 0; k < N; k++) {
        uint64_t v = (uint64_t)k * 37u + 11u;
        u8[k] = (uint8_t)(v * 7u);
        i8[k] = (int8_t)(int)(v * 7u % 256u) ;
        u16[k] = (uint16_t)(v * 2741u);
        i16[k] = (int16_t)(int32_t)(v * 2741u % 65536u - 32768);
        u32[k] = (uint32_t)(v * 2654435761u);
        i32[k] = (int32_t)(int64_t)(v * 2654435761u % 4294967296u - 2147483648u);
        u64[k] = v * 0x9E3779B97F4A7C15ull;
        i64[k] = (int64_t)(v * 0x9E3779B97F4A7C15ull >> 1) - INT64_MAX / 2;
    }
    uint32_t s1[1] = { N }, s2[2] = { 4, 6 }, s3[3] = { 2, 3, 4 };
    put("u8_1d", TNREC_DTYPE_U8, 1, s1, u8);
    put("i8_2d", TNREC_DTYPE_I8, 2, s2, i8);
    put("u16_3d", TNREC_DTYPE_U16, 3, s3, u16);
    put("i16_1d", TNREC_DTYPE_I16, 1, s1, i16);
    put("u32_2d", TNREC_DTYPE_U32, 2, s2, u32);
    put("i32_3d", TNREC_DTYPE_I32, 3, s3, i32);
    put("u64_1d", TNREC_DTYPE_U64, 1, s1, u64);
    put("i64_2d", TNREC_DTYPE_I64, 2, s2, i64);

    /* float32, 4-d: k * 0.25 - 3, with NaN at 5 and +inf at 6. */
    uint32_t s4[4] = { 2, 3, 4, 2 };
    float f32[48];
    for (int k = 0; k < 48; k++)
        f32[k] = (float)k * 0.25f - 3.0f;
    f32[5] = NAN;
    f32[6] = INFINITY;
    put("f32_4d", TNREC_DTYPE_F32, 4, s4, f32);

    /* float16 as bit patterns: (k * 2741) mod 65536 (includes NaN and inf codes). */
    uint16_t f16[N];
    for (int k = 0; k < N; k++)
        f16[k] = (uint16_t)((unsigned)k * 2741u);
    f16[0] = 0x7C00; /* +inf */
    f16[1] = 0x3C00; /* 1.0 */
    put("f16_2d", TNREC_DTYPE_F16, 2, s2, f16);

    /* float64 scalar (0-d): 1/3; float64 1-d: k / 7. */
    double third = 1.0 / 3.0;
    put("f64_0d", TNREC_DTYPE_F64, 0, NULL, &third);
    double f64[N];
    for (int k = 0; k < N; k++)
        f64[k] = (double)k / 7.0;
    put("f64_1d", TNREC_DTYPE_F64, 1, s1, f64);

    /* Empty arrays: shape (0, 3) without data, and (0,). */
    uint32_t s0[2] = { 0, 3 };
    put("f32_empty", TNREC_DTYPE_F32, 2, s0, NULL);
    put("u8_empty", TNREC_DTYPE_U8, 1, s0, NULL);

    /* TorNet's grid (time, azimuth, range, sweep): element k is k / 1000 in float32. */
    uint32_t grid[4] = { 4, 120, 240, 2 };
    size_t ngrid = 4u * 120u * 240u * 2u;
    float *big = malloc(ngrid * sizeof *big);
    CHECK(big != NULL);
    if (big) {
        for (size_t k = 0; k < ngrid; k++)
            big[k] = (float)k * 0.001f;
        put("f32_grid", TNREC_DTYPE_F32, 4, grid, big);
        free(big);
    }

    /* Writing over an existing file replaces it whole. */
    put("replaced", TNREC_DTYPE_U8, 1, s1, u8);
    put("replaced", TNREC_DTYPE_F64, 1, s1, f64);

    /* Refusals: unknown type, missing data, missing directory. None may
     * leave a file (or a temporary file) behind. */
    char path[4200];
    snprintf(path, sizeof path, "%s/bad_type.npy", out_dir);
    CHECK(tnrec_npy_write(path, (tnrec_dtype)99, 1, s1, u8) == TNREC_EINVAL);
    CHECK(strstr(tnrec_error_last(), "bad_type.npy") != NULL);
    snprintf(path, sizeof path, "%s/no_data.npy", out_dir);
    CHECK(tnrec_npy_write(path, TNREC_DTYPE_U8, 1, s1, NULL) == TNREC_EINVAL);
    snprintf(path, sizeof path, "%s/missing_dir/x.npy", out_dir);
    CHECK(tnrec_npy_write(path, TNREC_DTYPE_U8, 1, s1, u8) == TNREC_EIO);
    CHECK(strstr(tnrec_error_last(), "missing_dir") != NULL);
    CHECK(tnrec_npy_write(NULL, TNREC_DTYPE_U8, 1, s1, u8) == TNREC_EINVAL);

    DIR *d = opendir(out_dir);
    CHECK(d != NULL);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strstr(de->d_name, ".tmp.") || strncmp(de->d_name, "bad_type", 8) == 0 ||
                strncmp(de->d_name, "no_data", 7) == 0) {
                fprintf(stderr, "left behind: %s\n", de->d_name);
                tnrec_test_failures++;
            }
        }
        closedir(d);
    }
    return tnrec_test_result("npy_fixture");
}
