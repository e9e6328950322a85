/* train/backend.h: the step backend, where a run's training steps,
 * predictions and optimiser updates execute. Private to train/.
 *
 * One table of operations per device: backend_cpu.c (network.c, optim.c,
 * the allreduce's sums) and backend_cuda.c (the CUDA module's net through
 * its table in gpu/gpu_module.h; it also joins the NCCL communicator).
 * The training loop (trainer.c), validation, evaluation and prediction
 * (evaluate.c) are written once, against this interface, and never ask
 * which device they run on.
 *
 * The host model (tnrec_model) is the backend's source at creation and
 * its destination at trn_backend_sync: a device backend keeps its own
 * copy of the weights, BN statistics and optimiser moments in between. */
#ifndef TNREC_TRAIN_BACKEND_H
#define TNREC_TRAIN_BACKEND_H

#include <stdint.h>

#include "allreduce.h"
#include "tnrec/gpu.h"
#include "tnrec/train.h"

typedef struct trn_backend_config {
    tnrec_precision precision;  /* fp32 everywhere; fp16 and bf16 on a GPU; bf16 inference on the CPU */
    int device;                 /* GPU ordinal; -1: the local rank modulo the device count */
    int deterministic;          /* 1: deterministic cuDNN algorithms only */
    int inference_only;         /* 1: predictions only (eval, predict): a GPU net without training
                                 * state; the CPU takes bf16 then */
} trn_backend_config;

typedef struct trn_backend_ops {
    const char *device;         /* the --device name: "cpu", "cuda" */
    /* TNREC_OK when this device can run here; else why not. */
    tnrec_err (*check)(void);
    /* A backend for m and batches of at most max_batch samples. ar: the
     * run's ranks (NULL for one process, as in eval and predict). */
    tnrec_err (*create)(void **impl, tnrec_model *m, int max_batch, const trn_backend_config *c,
                        trn_allreduce *ar);
    /* This rank's part [global_first, global_first + n) of a global batch
     * of global_n (in b); logits of its n samples, the global loss. */
    tnrec_err (*train_step)(void *impl, const tnrec_batch *b, uint64_t dropout_seed, float *logits,
                            double *loss);
    tnrec_err (*predict)(void *impl, const tnrec_batch *b, float *logits);
    tnrec_err (*optim_step)(void *impl, tnrec_optim *opt, double lr);
    /* Input staging (NULL where batches are read in place): queue b's
     * copy to the device, then the next batch the loader will hand out;
     * the next batch alone; wait for staged copies and forget them. cap:
     * the loader's batch size. */
    tnrec_err (*stage)(void *impl, tnrec_loader *ld, const tnrec_batch *b, int cap);
    tnrec_err (*stage_next)(void *impl, tnrec_loader *ld, int cap);
    tnrec_err (*unstage)(void *impl);
    uint64_t (*staged_steps)(const void *impl);
    /* Brings weights, BN statistics (averaged over ranks) and optimiser
     * moments to the host model (NULL: they live there). */
    tnrec_err (*sync)(void *impl);
    /* Dynamic loss scaling (NULL or 0 returned: the backend has none). */
    int (*loss_scale)(const void *impl, double *scale, uint64_t *good_steps);
    tnrec_err (*set_loss_scale)(void *impl, double scale, uint64_t good_steps);
    /* The run failed (err) on this rank, possibly before create: joins
     * whatever collective start the other ranks wait in, so they stop
     * too. Returns the error to report. NULL: nothing to join. */
    tnrec_err (*abandon)(trn_allreduce *ar, tnrec_err err);
    void (*free)(void *impl);
} trn_backend_ops;

typedef struct trn_backend {
    const trn_backend_ops *ops;
    void *impl;
} trn_backend;

/* The backend of a --device name (NULL: "cpu"); an unknown name is
 * TNREC_EINVAL listing the known ones. Checks that it can run here. */
tnrec_err trn_backend_find(const trn_backend_ops **out, const char *device);
/* 1 when the device is not the CPU (its input goes through staging). */
int trn_backend_is_device(const trn_backend_ops *ops);
/* TNREC_EINVAL with a hint where the device cannot compute in that
 * precision (fp16 on the CPU); checked before anything is read or made. */
tnrec_err trn_backend_check_precision(const trn_backend_ops *ops, tnrec_precision p);

tnrec_err trn_backend_create(trn_backend *be, const trn_backend_ops *ops, tnrec_model *m, int max_batch,
                             const trn_backend_config *c, trn_allreduce *ar);
void trn_backend_free(trn_backend *be);       /* accepts a zeroed one */

tnrec_err trn_backend_train_step(trn_backend *be, const tnrec_batch *b, uint64_t dropout_seed, float *logits,
                                 double *loss);
tnrec_err trn_backend_predict(trn_backend *be, const tnrec_batch *b, float *logits);
tnrec_err trn_backend_optim_step(trn_backend *be, tnrec_optim *opt, double lr);
tnrec_err trn_backend_stage(trn_backend *be, tnrec_loader *ld, const tnrec_batch *b, int cap);
tnrec_err trn_backend_stage_next(trn_backend *be, tnrec_loader *ld, int cap);
tnrec_err trn_backend_unstage(trn_backend *be);
uint64_t trn_backend_staged_steps(const trn_backend *be);
tnrec_err trn_backend_sync(trn_backend *be);
int trn_backend_loss_scale(const trn_backend *be, double *scale, uint64_t *good_steps);
tnrec_err trn_backend_set_loss_scale(trn_backend *be, double scale, uint64_t good_steps);
tnrec_err trn_backend_abandon(const trn_backend_ops *ops, trn_allreduce *ar, tnrec_err err);

extern const trn_backend_ops trn_backend_cpu;
extern const trn_backend_ops trn_backend_cuda;

#endif
