/* train/backend_cuda.c: the CUDA step backend. Its steps run in the CUDA
 * module's net (train/gpu/, reached through the table that
 * gpu/gpu_loader.c loads on first use); the loader's batch buffers are
 * registered with CUDA and the next batch is copied while the current
 * step runs. With several ranks it starts the NCCL communicator and
 * attaches it to the run's allreduce, after the ranks have agreed that
 * every one of them set up its GPU. */
#include <limits.h>
#include <stdlib.h>

#include "allreduce.h"
#include "backend.h"
#include "common.h"
#include "gpu/allreduce_nccl.h"
#include "gpu/gpu_train.h"

typedef struct cuda_backend {
    tnrec_gpu_net *net;
    int fp16;               /* float16: the loss scale goes into checkpoints */
} cuda_backend;

/* ---- the NCCL communicator as the allreduce's collective ---- */

static tnrec_err nccl_sum_host(void *ctx, void *buf, size_t n, int is_double)
{
    return trn_nccl_sum_host(ctx, buf, n, is_double);
}

static void nccl_close(void *ctx, int failed)
{
    if (failed)
        trn_nccl_abort(ctx);
    else
        trn_nccl_free(ctx);
}

static const trn_collective_ops nccl_collective = { "nccl", nccl_sum_host, nccl_close };

/* Every rank gets here once, with its own set-up status, so that a rank
 * that failed stops the others instead of leaving them in NCCL's start. */
static tnrec_err start_nccl(trn_allreduce *ar, int device, tnrec_err mine)
{
    if (!ar || trn_allreduce_size(ar) < 2 || trn_allreduce_collective(ar))
        return mine;
    tnrec_err err = trn_allreduce_agree_start(ar, mine);
    if (err)
        return err;
    trn_nccl *comm = NULL;
    if ((err = trn_nccl_create(&comm, trn_allreduce_rank(ar), trn_allreduce_size(ar), trn_allreduce_uses_mpi(ar),
                                  device)))
        return err;
    trn_allreduce_attach(ar, &nccl_collective, comm);
    return TNREC_OK;
}

static tnrec_err cuda_abandon(trn_allreduce *ar, tnrec_err err) { return start_nccl(ar, -1, err); }

/* ---- the table ---- */

static tnrec_err cuda_check(void) { return tnrec_gpu_check(); }

static tnrec_err cuda_create(void **impl, tnrec_model *m, int max_batch, const trn_backend_config *c, trn_allreduce *ar)
{
    tnrec_gpu_options go;
    tnrec_gpu_options_default(&go);
    go.precision = c->precision;
    go.deterministic = c->deterministic;
    go.device = c->device;
    go.inference_only = c->inference_only;
    int count = tnrec_gpu_device_count();
    if (go.device < 0 && count > 0)
        go.device = trn_allreduce_local_rank(ar) % count;
    cuda_backend *be = calloc(1, sizeof *be);
    tnrec_err err = be ? trn_gpu_net_create_ranked(&be->net, m, max_batch, &go, ar)
                       : tnrec__fail(TNREC_ENOMEM, "out of memory");
    err = start_nccl(ar, go.device, err);
    if (err) {
        if (be)
            tnrec_gpu_net_free(be->net);
        free(be);
        return err;
    }
    be->fp16 = go.precision == TNREC_PRECISION_FP16;
    *impl = be;
    return TNREC_OK;
}

static tnrec_err cuda_train_step(void *impl, const tnrec_batch *b, uint64_t dropout_seed, float *logits, double *loss)
{
    cuda_backend *be = impl;
    return trn_gpu_net_train_step(be->net, b->x, b->label, b->weight, b->n, b->global_n, b->global_first,
                                     dropout_seed, logits, loss);
}

static tnrec_err cuda_predict(void *impl, const tnrec_batch *b, float *logits)
{
    cuda_backend *be = impl;
    return tnrec_gpu_net_predict_at(be->net, b->x, b->range_limits, b->n, logits);
}

static tnrec_err cuda_optim_step(void *impl, tnrec_optim *opt, double lr)
{
    cuda_backend *be = impl;
    return tnrec_gpu_net_optim_step(be->net, opt, lr, NULL);
}

/* Registers the loader's buffer of batch b (cap samples: the loader's
 * slot size, so one registration serves every batch in that slot). */
static tnrec_err pin_batch(cuda_backend *be, const tnrec_loader *ld, const tnrec_batch *b, int cap)
{
    tnrec_input_shape sh = tnrec_loader_shape(ld);
    return trn_gpu_net_pin(be->net, b->x, (size_t)cap * sh.frames * sh.height * sh.width * sh.channels * sizeof(float));
}

/* Queues the copy of the batch the loader hands out next, if it is
 * complete (never waits for it), so it crosses PCIe while the current
 * step computes. The loader keeps that batch's buffer until the
 * tnrec_loader_next after the one that returns it, by which time its
 * step has used the copy; unstage covers batches whose step never runs.
 * A batch staged already is left as it is. */
static tnrec_err cuda_stage_next(void *impl, tnrec_loader *ld, int cap)
{
    cuda_backend *be = impl;
    const tnrec_batch *nb = NULL;
    tnrec_err err = tnrec_loader_peek(ld, &nb);
    if (err || !nb || nb->n == 0)
        return err;
    if ((err = pin_batch(be, ld, nb, cap)))
        return err;
    return trn_gpu_net_stage(be->net, nb->x, nb->label, nb->weight, nb->n);
}

/* Before the step of batch b: b's own copy first (a no-op when it was
 * staged during the step before; the copy stream runs in order, so b's
 * copy never waits behind the next one), then the next batch's. */
static tnrec_err cuda_stage(void *impl, tnrec_loader *ld, const tnrec_batch *b, int cap)
{
    cuda_backend *be = impl;
    tnrec_err err = pin_batch(be, ld, b, cap);
    if (!err)
        err = trn_gpu_net_stage(be->net, b->x, b->label, b->weight, b->n);
    if (!err)
        err = cuda_stage_next(impl, ld, cap);
    return err;
}

static tnrec_err cuda_unstage(void *impl)
{
    cuda_backend *be = impl;
    return trn_gpu_net_unstage(be->net);
}

static uint64_t cuda_staged_steps(const void *impl)
{
    const cuda_backend *be = impl;
    return trn_gpu_net_staged_steps(be->net);
}

static tnrec_err cuda_sync(void *impl)
{
    cuda_backend *be = impl;
    return trn_gpu_net_sync(be->net);
}

/* Every rank has the same scale (it follows the summed gradient). */
static int cuda_loss_scale(const void *impl, double *scale, uint64_t *good_steps)
{
    const cuda_backend *be = impl;
    if (!be->fp16)
        return 0;
    int good = 0;
    trn_gpu_net_loss_scale(be->net, scale, &good);
    *good_steps = (uint64_t)good;
    return 1;
}

/* A resumed float16 run goes on with the scale it had; runs and
 * checkpoints without one (0) start at the initial scale. */
static tnrec_err cuda_set_loss_scale(void *impl, double scale, uint64_t good_steps)
{
    cuda_backend *be = impl;
    if (!be->fp16 || !(scale > 0))
        return TNREC_OK;
    return trn_gpu_net_set_loss_scale(be->net, scale, good_steps > INT_MAX ? 0 : (int)good_steps);
}

static void cuda_free(void *impl)
{
    cuda_backend *be = impl;
    tnrec_gpu_net_free(be->net);
    free(be);
}

const trn_backend_ops trn_backend_cuda = {
    .device = "cuda",
    .check = cuda_check,
    .create = cuda_create,
    .train_step = cuda_train_step,
    .predict = cuda_predict,
    .optim_step = cuda_optim_step,
    .stage = cuda_stage,
    .stage_next = cuda_stage_next,
    .unstage = cuda_unstage,
    .staged_steps = cuda_staged_steps,
    .sync = cuda_sync,
    .loss_scale = cuda_loss_scale,
    .set_loss_scale = cuda_set_loss_scale,
    .abandon = cuda_abandon,
    .free = cuda_free,
};
