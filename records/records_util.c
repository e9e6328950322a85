/* records/records_util.c: two small helpers the records files share:
 * growing a byte buffer and joining a directory and a file name.
 * Neither prints nor keeps state. */
#include <stdio.h>
#include <stdlib.h>

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
