/* tests/ingest/test_ingest_mem.c: the sample reader on whole files held in
 * memory (tnrec_ingest_check_mem): the fuzz corpus's valid samples (written
 * by netCDF4 and by xarray) are accepted; truncated, bit-flipped,
 * signature-only files and one that crashes HDF5 itself are refused with an
 * error naming the input, never a crash; every prefix length of a valid
 * file fails cleanly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tnrec_test.h"

static uint8_t *slurp(const char *name, size_t *out_len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", TNREC_INGEST_CORPUS, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *out_len = (size_t)n;
    return b;
}

int main(void)
{
    const char *valid[] = { "valid_netcdf4.nc", "valid_xarray.nc" };
    for (int i = 0; i < 2; i++) {
        size_t n;
        uint8_t *b = slurp(valid[i], &n);
        CHECK(b != NULL);
        if (b)
            CHECK_OK(tnrec_ingest_check_mem(b, n, valid[i]));
        free(b);
    }
    /* hdf5_crash_dense_links.nc crashes HDF5 1.10.8 inside nc_open: the
     * reader runs netcdf-c in a child process, so it is an error here */
    const char *bad[] = { "trunc_4k.nc", "trunc_half.nc", "flipped.nc", "signature_only.nc",
                          "hdf5_crash_dense_links.nc" };
    for (int i = 0; i < 5; i++) {
        size_t n;
        uint8_t *b = slurp(bad[i], &n);
        CHECK(b != NULL);
        if (!b)
            continue;
        tnrec_err e = tnrec_ingest_check_mem(b, n, bad[i]);
        CHECK(e != TNREC_OK);
        CHECK(strstr(tnrec_error_last(), bad[i]) != NULL);
        free(b);
    }
    /* every 997th prefix of a valid file: an error, never a crash */
    size_t n;
    uint8_t *b = slurp("valid_netcdf4.nc", &n);
    if (b) {
        for (size_t len = 0; len < n; len += 997) {
            uint8_t *cut = malloc(len ? len : 1);
            memcpy(cut, b, len);
            CHECK(tnrec_ingest_check_mem(cut, len, "prefix.nc") != TNREC_OK);
            free(cut);
        }
        CHECK(tnrec_ingest_check_mem(NULL, 0, "empty.nc") == TNREC_EFORMAT);
    }
    free(b);
    return tnrec_test_result("test_ingest_mem");
}
