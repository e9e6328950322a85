/* records/records_util.c: small helpers: growing a byte buffer and
 * joining a directory and a file name (for the records files), and the
 * monotonic clock every module reads (common.h). None prints or keeps
 * state. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "records_internal.h"

tnrec_err tnr_reserve(uint8_t **buf, size_t *cap, size_t need, const char *what)
{
    if (need <= *cap)
        return TNREC_OK;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n = n > SIZE_MAX / 2 ? need : n * 2;
    uint8_t *p = realloc(*buf, n);
    if (!p)
        return tnrec__fail(TNREC_ENOMEM, "out of memory allocating %zu bytes for '%s'", n, what);
    *buf = p;
    *cap = n;
    return TNREC_OK;
}

char *tnr_path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

double tnrec__now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
