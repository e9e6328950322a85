/* ingest/build_internal.h: what build.c and merge.c share. */
#ifndef TNREC_BUILD_INTERNAL_H
#define TNREC_BUILD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tnrec/records.h"

/* Appends every record of the shard at path to w unchanged (the stored
 * compressed bytes and index metadata), in order; zstd_level is the
 * level the records were made with (the build parameters say). buf/cap: a reusable
 * buffer. Adds the records to *counts and *n. */
tnrec_err tn_copy_shard(tnrec_dataset_writer *w, const char *path, int zstd_level, uint8_t **buf, size_t *cap,
                        tnrec_class_counts *counts, uint64_t *n);

#endif
