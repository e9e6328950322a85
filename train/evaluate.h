/* train/evaluate.h: running a model over a whole dataset, for validation
 * during training and for eval and predict (evaluate.c). Private to
 * train/. */
#ifndef TNREC_TRAIN_EVALUATE_H
#define TNREC_TRAIN_EVALUATE_H

#include <math.h>
#include <signal.h>
#include <stdint.h>

#include "backend.h"

/* The probability of a logit, without overflow. */
static inline double trn_sigmoid(double z) { return z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z)); }

/* The per-sample results of trn_predict_all; any array may be NULL. */
typedef struct trn_scores_out {
    float *prob;
    int32_t *label, *category;
    uint64_t *index;            /* record index in the dataset */
} trn_scores_out;

/* Runs the backend's model over ld's dataset in order (the loader
 * restarted, unshuffled): each sample's probability, label, category and
 * record index into out, and the mean binary cross-entropy into *out_bce.
 * cap: the loader's batch size. rep and on_step (may be NULL) report each
 * batch. stop (may be NULL) is read before each batch: nonzero ends the
 * pass with TNREC_ECANCELED. */
tnrec_err trn_predict_all(trn_backend *be, tnrec_loader *ld, int cap, const trn_scores_out *out, double *out_bce,
                          tnrec_step_report *rep, tnrec_step_cb on_step, void *step_ctx,
                          const volatile sig_atomic_t *stop);

/* The dataset has no records: an error naming it (what: "dataset",
 * "training dataset", ...). */
tnrec_err trn_check_not_empty(const tnrec_dataset *ds, const char *what, const char *path);

#endif
