/* ingest/build_internal.h: what build.c and merge.c share. */
#ifndef TNREC_BUILD_INTERNAL_H
#define TNREC_BUILD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tnrec/records.h"

/* Appends every record of the shard at path to w unchanged (its checked
 * compressed frame and index metadata), in order. blob: a reusable buffer.
 * Adds the records to *counts and *n. After each record calls after(ctx)
 * when set; a nonzero answer stops the copy there with TNREC_ECANCELED,
 * so that a stop request need not wait for the rest of a shard of hundreds
 * of MiB (the records appended stay in w: its owner aborts or keeps them). */
tnrec_err ing_copy_shard(tnrec_dataset_writer *w, const char *path, tnrec_blob *blob, tnrec_class_counts *counts,
                        uint64_t *n, int (*after)(void *ctx), void *ctx);

#endif
