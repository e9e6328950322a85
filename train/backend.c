/* train/backend.c: choosing a step backend by device name, and the calls
 * that dispatch through its table (backend.h). */
#include <string.h>

#include "backend.h"
#include "common.h"

static const trn_backend_ops *const backends[] = { &trn_backend_cpu, &trn_backend_cuda };
#define NBACKENDS (sizeof backends / sizeof backends[0])

tnrec_err trn_backend_find(const trn_backend_ops **out, const char *device)
{
    *out = NULL;
    if (!device)
        device = "cpu";
    for (size_t i = 0; i < NBACKENDS; i++) {
        if (strcmp(backends[i]->device, device) != 0)
            continue;
        *out = backends[i];
        return backends[i]->check ? backends[i]->check() : TNREC_OK;
    }
    return tnrec__fail(TNREC_EINVAL, "unknown device '%s'\nhint: cpu or cuda", device);
}

int trn_backend_is_device(const trn_backend_ops *ops) { return ops && ops != &trn_backend_cpu; }

tnrec_err trn_backend_check_precision(const trn_backend_ops *ops, tnrec_precision p)
{
    if (p == TNREC_PRECISION_FP16 && !trn_backend_is_device(ops))
        return tnrec__fail(TNREC_EINVAL, "precision 'fp16' is for the GPU only\nhint: add --device cuda, or use "
                           "--precision bf16 or fp32 on the CPU");
    return TNREC_OK;
}

tnrec_err trn_backend_create(trn_backend *be, const trn_backend_ops *ops, tnrec_model *m, int max_batch,
                             const trn_backend_config *c, trn_allreduce *ar)
{
    be->ops = ops;
    be->impl = NULL;
    tnrec_err err = ops->create(&be->impl, m, max_batch, c, ar);
    if (err)
        be->ops = NULL;
    return err;
}

void trn_backend_free(trn_backend *be)
{
    if (be->ops && be->impl)
        be->ops->free(be->impl);
    be->ops = NULL;
    be->impl = NULL;
}

tnrec_err trn_backend_train_step(trn_backend *be, const tnrec_batch *b, uint64_t dropout_seed, float *logits,
                                 double *loss)
{
    return be->ops->train_step(be->impl, b, dropout_seed, logits, loss);
}

tnrec_err trn_backend_predict(trn_backend *be, const tnrec_batch *b, float *logits)
{
    return be->ops->predict(be->impl, b, logits);
}

tnrec_err trn_backend_optim_step(trn_backend *be, tnrec_optim *opt, double lr)
{
    return be->ops->optim_step(be->impl, opt, lr);
}

tnrec_err trn_backend_stage(trn_backend *be, tnrec_loader *ld, const tnrec_batch *b, int cap)
{
    return be->ops->stage ? be->ops->stage(be->impl, ld, b, cap) : TNREC_OK;
}

tnrec_err trn_backend_stage_next(trn_backend *be, tnrec_loader *ld, int cap)
{
    return be->ops->stage_next ? be->ops->stage_next(be->impl, ld, cap) : TNREC_OK;
}

tnrec_err trn_backend_unstage(trn_backend *be)
{
    return be->ops->unstage ? be->ops->unstage(be->impl) : TNREC_OK;
}

uint64_t trn_backend_staged_steps(const trn_backend *be)
{
    return be->ops->staged_steps ? be->ops->staged_steps(be->impl) : 0;
}

tnrec_err trn_backend_sync(trn_backend *be)
{
    return be->ops->sync ? be->ops->sync(be->impl) : TNREC_OK;
}

int trn_backend_loss_scale(const trn_backend *be, double *scale, uint64_t *good_steps)
{
    return be->ops->loss_scale ? be->ops->loss_scale(be->impl, scale, good_steps) : 0;
}

tnrec_err trn_backend_set_loss_scale(trn_backend *be, double scale, uint64_t good_steps)
{
    return be->ops->set_loss_scale ? be->ops->set_loss_scale(be->impl, scale, good_steps) : TNREC_OK;
}

tnrec_err trn_backend_abandon(const trn_backend_ops *ops, trn_allreduce *ar, tnrec_err err)
{
    return ops && ops->abandon ? ops->abandon(ar, err) : err;
}
