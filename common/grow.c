/* common/grow.c: growable arrays (grow.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "grow.h"

/* The capacity tnrec__grow moves to: max(need, 2 * cap, 16), or 0 if
 * that many elements of elem_size bytes do not fit in a size_t. */
static size_t grown_capacity(size_t cap, size_t need, size_t elem_size)
{
    size_t n = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
    if (n < 16)
        n = 16;
    if (n < need)
        n = need;
    if (elem_size && n > SIZE_MAX / elem_size)
        n = need <= SIZE_MAX / elem_size ? SIZE_MAX / elem_size : 0;
    return n;
}

tnrec_err tnrec__grow(void *arrayp, size_t *cap, size_t need, size_t elem_size, const char *what)
{
    if (need <= *cap)
        return TNREC_OK;
    size_t n = grown_capacity(*cap, need, elem_size);
    if (n == 0)
        return tnrec__fail(TNREC_ENOMEM, "out of memory: %zu elements of %zu bytes for %s", need, elem_size, what);
    void *old;
    memcpy(&old, arrayp, sizeof old);
    void *p = realloc(old, n * elem_size);
    if (!p)
        return tnrec__fail(TNREC_ENOMEM, "out of memory allocating %zu bytes for %s", n * elem_size, what);
    /* Pointer and capacity change together, moved or grown in place. */
    memcpy(arrayp, &p, sizeof p);
    *cap = n;
    return TNREC_OK;
}
