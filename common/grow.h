/* common/grow.h: growable arrays.
 *
 * Every growable array in the library grows through tnrec__grow, which
 * updates the pointer and the capacity together whether or not realloc
 * moved the block (docs/architecture.md; tests/alloc_inplace.c checks the
 * whole class). */
#ifndef TNREC_GROW_H
#define TNREC_GROW_H

#include <stddef.h>

#include "tnrec/error.h"

/* Makes room for at least `need` elements of elem_size bytes in a growable
 * array. arrayp is the address of the array pointer (of any object pointer
 * type, NULL while empty) and *cap its capacity in elements. The new
 * capacity is the larger of need and twice the old one (16 at least), so
 * appends cost amortised O(1). On success the pointer and *cap are updated
 * together, whether or not realloc moved the block; on failure
 * (TNREC_ENOMEM, message naming `what`, or an overflowing size) neither
 * changes and the old block stays valid. */
tnrec_err tnrec__grow(void *arrayp, size_t *cap, size_t need, size_t elem_size, const char *what);

#endif
