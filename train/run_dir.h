/* train/run_dir.h: a training run's directory. Private to train/.
 *
 *   last.tnck          the latest position (also written mid-epoch)
 *   epoch-NNNN.tnck    the end of each epoch
 *   best.tnck          the weights of the best epoch by the monitored metric
 *   metrics.jsonl      one JSON object per finished epoch
 *
 * Only rank 0 writes here. */
#ifndef TNREC_TRAIN_RUN_DIR_H
#define TNREC_TRAIN_RUN_DIR_H

#include <stdint.h>

#include "tnrec/train.h"

typedef struct trn_run_dir {
    const char *dir;                /* borrowed */
    char *last, *best, *metrics;    /* paths of its files */
} trn_run_dir;

/* The paths of dir's files (nothing created). */
tnrec_err trn_run_dir_init(trn_run_dir *d, const char *dir);
void trn_run_dir_free(trn_run_dir *d);          /* accepts a zeroed one */
/* A new run: creates the directory (and its parents) and refuses one that
 * holds a run already; an old metrics.jsonl without a run goes. */
tnrec_err trn_run_dir_create(trn_run_dir *d);
/* The path of epoch's checkpoint (malloc'd), NULL when out of memory. */
char *trn_run_dir_epoch_path(const trn_run_dir *d, int epoch);
/* On resume: metrics.jsonl keeps the lines of epochs up to keep_upto. */
tnrec_err trn_run_dir_trim_metrics(const trn_run_dir *d, uint64_t keep_upto);
/* Appends an epoch's line to metrics.jsonl. has_val: validated;
 * staged: the run stages its batches (a device backend) and the line
 * says how many steps overlapped their copy; best_epoch counts from 0. */
tnrec_err trn_run_dir_append_epoch(const trn_run_dir *d, const tnrec_epoch_report *rep, int has_val, int staged,
                                   int64_t best_epoch);

#endif
