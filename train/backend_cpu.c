/* train/backend_cpu.c: the CPU step backend. The steps run on the host
 * model through network.c, the updates through optim.c, and with several
 * ranks the sums go through the run's allreduce. */
#include <stdlib.h>

#include "backend.h"
#include "common.h"
#include "nn.h"

typedef struct cpu_backend {
    tnrec_net *net;
    tnrec_model *model;
    trn_allreduce *ar;
} cpu_backend;

static tnrec_err cpu_create(void **impl, tnrec_model *m, int max_batch, const trn_backend_config *c, trn_allreduce *ar)
{
    cpu_backend *be = calloc(1, sizeof *be);
    if (!be)
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    tnrec_err err = tnrec_net_create(&be->net, m, max_batch);
    /* bf16: bfloat16 products in the convolutions where the CPU has
     * avx512_bf16, float32 elsewhere; fp16 is refused. */
    if (!err && c)
        err = c->inference_only ? trn_net_set_precision(be->net, c->precision)
                                : trn_net_set_train_precision(be->net, c->precision);
    if (err) {
        tnrec_net_free(be->net);
        free(be);
        return err;
    }
    be->model = m;
    be->ar = ar;
    *impl = be;
    return TNREC_OK;
}

static tnrec_err cpu_train_step(void *impl, const tnrec_batch *b, uint64_t dropout_seed, float *logits, double *loss)
{
    cpu_backend *be = impl;
    return trn_net_train_step(be->net, b->x, b->range_limits, b->label, b->weight, b->n, b->global_n, b->global_first, dropout_seed,
                                 be->ar, logits, loss);
}

static tnrec_err cpu_predict(void *impl, const tnrec_batch *b, float *logits)
{
    cpu_backend *be = impl;
    return tnrec_net_predict_at(be->net, b->x, b->range_limits, b->n, logits);
}

static tnrec_err cpu_optim_step(void *impl, tnrec_optim *opt, double lr)
{
    cpu_backend *be = impl;
    return tnrec_optim_step(opt, be->model, lr);
}

static void cpu_free(void *impl)
{
    cpu_backend *be = impl;
    tnrec_net_free(be->net);
    free(be);
}

const trn_backend_ops trn_backend_cpu = {
    .device = "cpu",
    .create = cpu_create,
    .train_step = cpu_train_step,
    .predict = cpu_predict,
    .optim_step = cpu_optim_step,
    .free = cpu_free,
};
