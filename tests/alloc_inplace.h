/* tests/alloc_inplace.h: the in-place-growing allocator of alloc_inplace.c. */
#ifndef TNREC_ALLOC_INPLACE_H
#define TNREC_ALLOC_INPLACE_H

#include <stddef.h>

/* Defined (optionally) by the program: 0 fails the allocation (ENOMEM). */
int tnrec_alloc_admit(void) __attribute__((weak));
/* Reallocs so far that grew a block in place, and that moved one. */
size_t tnrec_alloc_inplace_grown(void);
size_t tnrec_alloc_inplace_moved(void);

#endif
