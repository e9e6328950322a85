/* ingest/build_internal.h: what build.c and merge.c share. */
#ifndef TNREC_BUILD_INTERNAL_H
#define TNREC_BUILD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tnrec/ingest.h"
#include "tnrec/records.h"

/* Appends every record of the shard at path to w unchanged (its checked
 * compressed frame and index metadata), in order. blob: a reusable buffer.
 * Adds the records to *counts and *n. After each record calls after(ctx)
 * when set; a nonzero answer stops the copy there with TNREC_ECANCELED,
 * so that a stop request need not wait for the rest of a shard of hundreds
 * of MiB (the records appended stay in w: its owner aborts or keeps them). */
tnrec_err ing_copy_shard(tnrec_dataset_writer *w, const char *path, tnrec_blob *blob, tnrec_class_counts *counts,
                        uint64_t *n, int (*after)(void *ctx), void *ctx);

/* Whether dir holds a complete dataset (a manifest that opens) already, as
 * build and merge check before writing (build.c): none, or a damaged one,
 * is TNREC_OK with *out_done 0 (to be written again); one of build
 * parameters `params` (JSON text) is TNREC_OK with *out_done 1 (nothing to
 * do); one of other parameters is TNREC_EINVAL, whose hint says to choose
 * another -o directory or remove it to `redo` ("rebuild"). */
tnrec_err ing_check_existing(const char *dir, const char *params, const char *redo, int *out_done);
/* Bytes of the shards of the dataset in dir (0 when it does not open);
 * with sum, also its samples, class counts and skipped inputs. */
uint64_t ing_dataset_bytes(const char *dir, tnrec_build_summary *sum);

#endif
