/* train/checkpoint.h: checkpoint files (private to train/).
 *
 * Layout (little-endian), version 1.2:
 *   "TNRCKPT\0"  u32 major  u32 minor
 *   u64 len + config JSON (model spec, input shape, data and optimiser
 *     settings; since 1.2 also "data_schema": the training data's input
 *     fields, see data_schema.h)
 *   u64 n + n f32 parameters;  u64 n + n f32 BN state
 *   u64 n + n f32 Adam m + n f32 Adam v (n = 0: no optimiser);  u64 Adam t
 *   training position: u64 epoch, step, global_step; f64 lr, best_value;
 *     i64 best_epoch; u64 wait, plateau_wait; f64 loss_sum, seconds;
 *     u64 samples; u64 k + k f32 prob + k i32 label + k i32 category
 *   since 1.1: f64 loss_scale, u64 loss_scale_good_steps (float16 dynamic
 *     loss scaling on the GPU; 0, 0: none recorded)
 *   u64 XXH3-64 of every byte before it
 * Written atomically (temp file, fsync, rename). Readers of 1.0 read 1.1
 * files (they stop before the new fields); 1.0 files read as loss scale 0
 * (none recorded: a float16 run starts again at its initial scale).
 * 1.2 adds a key to the config JSON and no bytes: older readers ignore
 * it; checkpoints without it (1.0, 1.1) are used without the data check
 * (the CLI warns). */
#ifndef TNREC_TRAIN_CHECKPOINT_H
#define TNREC_TRAIN_CHECKPOINT_H

#include <stdint.h>

#include "nn.h"
#include "optim.h"

#define TRN_CKPT_MAGIC "TNRCKPT"
#define TRN_CKPT_MAJOR 1
#define TRN_CKPT_MINOR 2

typedef struct trn_train_state {
    uint64_t epoch, step, global_step;    /* next batch to run */
    double lr, best_value;
    int64_t best_epoch;                   /* -1: none yet */
    uint64_t wait, plateau_wait;
    double loss_sum, seconds;             /* this epoch so far */
    uint64_t samples;
    uint64_t npart;                       /* this epoch's training scores so far */
    float *part_prob;
    int32_t *part_label, *part_cat;
    double loss_scale;                    /* float16 loss scale on the GPU; 0: none recorded */
    uint64_t loss_scale_good_steps;       /* good steps since the scale last changed */
} trn_train_state;

tnrec_err trn_checkpoint_write(const char *path, const char *config_json, const tnrec_model *m,
                                  const tnrec_optim *opt, const trn_train_state *st);
/* Reads a checkpoint: *out_config (malloc'd JSON text), *out_model (new
 * model with its weights). opt (may be NULL) receives the optimiser state
 * and st (may be NULL) the position; st's arrays are malloc'd. */
tnrec_err trn_checkpoint_read(const char *path, char **out_config, tnrec_model **out_model,
                                 tnrec_optim *opt, trn_train_state *st);
void trn_train_state_clear(trn_train_state *st);

#endif
