/* common/str_util.h: string copies. */
#ifndef TNREC_STR_UTIL_H
#define TNREC_STR_UTIL_H

#include <stdlib.h>
#include <string.h>

/* A malloc'd copy of s, or NULL when out of memory. */
static inline char *tnrec__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

#endif
