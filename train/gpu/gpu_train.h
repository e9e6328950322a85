/* train/gpu/gpu_train.h: what the trainer (train/trainer.c) calls to run
 * a data-parallel training on GPUs. Private to train/.
 *
 * A ranked net keeps the run's all-reduce backend: gradients are summed
 * over ranks on the device (NCCL when attached, else staged through host
 * memory), batch norm uses each rank's own batch statistics (cuDNN), and
 * trn_gpu_net_sync averages the BN moving statistics over ranks before
 * it downloads, so every rank evaluates and checkpoints the same model. */
#ifndef TNREC_TRAIN_GPU_TRAIN_H
#define TNREC_TRAIN_GPU_TRAIN_H

#include "allreduce.h"
#include "tnrec/gpu.h"

/* As tnrec_gpu_net_create, with the run's backend (borrowed; may be NULL
 * for one process). The device is opt->device, or with -1 the local rank
 * modulo the visible devices. */
tnrec_err trn_gpu_net_create_ranked(tnrec_gpu_net **out, tnrec_model *m, int max_batch,
                                       const tnrec_gpu_options *opt, trn_allreduce *ar);
/* This rank holds samples [global_first, global_first + n) of a global
 * batch of global_n; the loss returned is the global one. */
tnrec_err trn_gpu_net_train_step(tnrec_gpu_net *net, const float *x, const float *label,
                                    const float *weight, int n, int global_n, int global_first,
                                    uint64_t dropout_seed, float *logits, double *out_loss);
/* Registers [p, p + bytes) of host memory with CUDA (page-locked) so
 * batches there are copied to the GPU directly, without the staging
 * buffer: for the loader's batch buffers, which live as long as the
 * loader. The net must be freed before that memory is. Best effort: a
 * range that cannot be registered is simply copied through staging. */
tnrec_err trn_gpu_net_pin(tnrec_gpu_net *net, const void *p, size_t bytes);
/* Starts copying batch (x, label, weight, n) to the device on the copy
 * stream, into an input slot no staged batch holds, so the copy overlaps
 * whatever the compute stream runs meanwhile; the next train step (or
 * predict) given the same x, label, weight and n uses it instead of
 * copying. Labels and weights (either may be NULL) are taken now; x must
 * stay unchanged and allocated until that step returns or
 * trn_gpu_net_unstage does. Does nothing (and returns TNREC_OK) when x
 * is not in memory registered with trn_gpu_net_pin, when n is 0, when
 * both slots already hold staged batches, or with TNREC_GPU_STAGE=0 in
 * the environment. Results never depend on whether a batch was staged. */
tnrec_err trn_gpu_net_stage(tnrec_gpu_net *net, const float *x, const float *label, const float *weight, int n);
/* Waits until every staged copy is done and forgets them, so their host
 * buffers may be reused: call it before handing staged host memory back
 * to its owner without running its step (new epoch, end of a run). */
tnrec_err trn_gpu_net_unstage(tnrec_gpu_net *net);
/* Train steps and predictions so far whose batch was staged before the
 * previous one began, so its copy could overlap that one's work (a batch
 * staged just before its own step does not count). */
uint64_t trn_gpu_net_staged_steps(const tnrec_gpu_net *net);
/* float16 dynamic loss scaling: the current scale and the good steps
 * since it last changed (scale 1 in float32 and bfloat16), and setting
 * them when resuming a run (ignored unless the net runs float16; a scale
 * below 1 or not finite is TNREC_EINVAL). */
void trn_gpu_net_loss_scale(const tnrec_gpu_net *net, double *out_scale, int *out_good_steps);
tnrec_err trn_gpu_net_set_loss_scale(tnrec_gpu_net *net, double scale, int good_steps);
/* Makes BN moving statistics equal on all ranks (their mean), then
 * downloads weights, state, gradient and Adam moments to the host. */
tnrec_err trn_gpu_net_sync(tnrec_gpu_net *net);

#endif
