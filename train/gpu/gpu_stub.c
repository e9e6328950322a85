/* train/gpu/gpu_stub.c: the GPU interface in a build without CUDA.
 *
 * Every entry point exists so `tnrec train --device cuda` and the GPU
 * tests link everywhere; each answers TNREC_EUNSUPPORTED with a message
 * naming what to install. Nothing here pretends to compute. */
#include <stdlib.h>

#include "allreduce_nccl.h"
#include "common.h"
#include "gpu_train.h"
#include "tnrec/gpu.h"

static tnrec_err no_cuda(void)
{
    return tnrec__fail(TNREC_EUNSUPPORTED,
                       "this tnrec was built without CUDA, so --device cuda is not available\n"
                       "hint: install the CUDA toolkit (nvcc on PATH), cuDNN 9 and NCCL 2, then reconfigure "
                       "with cmake -DTNREC_WITH_CUDA=ON and rebuild; 'tnrec --version' lists cuda when it is in");
}

int tnrec_gpu_device_count(void) { return 0; }
tnrec_err tnrec_gpu_check(void) { return no_cuda(); }

tnrec_err tnrec_gpu_net_create(tnrec_gpu_net **out, tnrec_model *m, int max_batch, const tnrec_gpu_options *opt)
{
    (void)m; (void)max_batch; (void)opt;
    *out = NULL;
    return no_cuda();
}
void tnrec_gpu_net_free(tnrec_gpu_net *net) { (void)net; }
tnrec_err tnrec_gpu_net_upload(tnrec_gpu_net *net) { (void)net; return no_cuda(); }
tnrec_err tnrec_gpu_net_download(tnrec_gpu_net *net) { (void)net; return no_cuda(); }
tnrec_err tnrec_gpu_net_train_step(tnrec_gpu_net *net, const float *x, const float *label, const float *weight, int n,
                                   uint64_t dropout_seed, float *logits, double *out_loss)
{
    (void)net; (void)x; (void)label; (void)weight; (void)n; (void)dropout_seed; (void)logits; (void)out_loss;
    return no_cuda();
}
tnrec_err tnrec_gpu_net_predict(tnrec_gpu_net *net, const float *x, int n, float *logits)
{
    (void)net; (void)x; (void)n; (void)logits;
    return no_cuda();
}
tnrec_err tnrec_gpu_net_predict_at(tnrec_gpu_net *net, const float *x, const float *range_limits, int n, float *logits)
{
    (void)net; (void)x; (void)range_limits; (void)n; (void)logits;
    return no_cuda();
}
tnrec_err tnrec_gpu_net_optim_step(tnrec_gpu_net *net, tnrec_optim *opt, double lr, int *out_applied)
{
    (void)net; (void)opt; (void)lr;
    if (out_applied)
        *out_applied = 0;
    return no_cuda();
}
const char *tnrec_gpu_net_describe(const tnrec_gpu_net *net) { (void)net; return "no CUDA in this build"; }

tnrec_err trn_gpu_net_create_ranked(tnrec_gpu_net **out, tnrec_model *m, int max_batch,
                                       const tnrec_gpu_options *opt, trn_allreduce *ar)
{
    (void)m; (void)max_batch; (void)opt; (void)ar;
    *out = NULL;
    return no_cuda();
}
tnrec_err trn_gpu_net_train_step(tnrec_gpu_net *net, const float *x, const float *label, const float *weight,
                                    int n, int global_n, int global_first, uint64_t dropout_seed, float *logits,
                                    double *out_loss)
{
    (void)net; (void)x; (void)label; (void)weight; (void)n; (void)global_n; (void)global_first;
    (void)dropout_seed; (void)logits; (void)out_loss;
    return no_cuda();
}
tnrec_err trn_gpu_net_sync(tnrec_gpu_net *net) { (void)net; return no_cuda(); }
tnrec_err trn_gpu_net_pin(tnrec_gpu_net *net, const void *p, size_t bytes)
{
    (void)net; (void)p; (void)bytes;
    return no_cuda();
}
tnrec_err trn_gpu_net_stage(tnrec_gpu_net *net, const float *x, const float *label, const float *weight, int n)
{
    (void)net; (void)x; (void)label; (void)weight; (void)n;
    return no_cuda();
}
tnrec_err trn_gpu_net_unstage(tnrec_gpu_net *net) { (void)net; return no_cuda(); }
uint64_t trn_gpu_net_staged_steps(const tnrec_gpu_net *net) { (void)net; return 0; }
void trn_gpu_net_loss_scale(const tnrec_gpu_net *net, double *out_scale, int *out_good_steps)
{
    (void)net;
    *out_scale = 0;
    *out_good_steps = 0;
}
tnrec_err trn_gpu_net_set_loss_scale(tnrec_gpu_net *net, double scale, int good_steps)
{
    (void)net; (void)scale; (void)good_steps;
    return no_cuda();
}

tnrec_err trn_nccl_create(trn_nccl **out, int rank, int size, int use_mpi, int device)
{
    (void)rank; (void)size; (void)use_mpi; (void)device;
    *out = NULL;
    return no_cuda();
}
void trn_nccl_free(trn_nccl *c) { (void)c; }
void trn_nccl_abort(trn_nccl *c) { (void)c; }
tnrec_err trn_nccl_sum_device(trn_nccl *c, float *dev_buf, size_t n, void *stream)
{
    (void)c; (void)dev_buf; (void)n; (void)stream;
    return no_cuda();
}
tnrec_err trn_nccl_sum_host(trn_nccl *c, void *buf, size_t n, int is_double)
{
    (void)c; (void)buf; (void)n; (void)is_double;
    return no_cuda();
}
