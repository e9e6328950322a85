/* train/gpu/gpu_module.h: the one boundary between libtnrec and its CUDA
 * module (libtnrec_cuda.so). Private to train/.
 *
 * The CUDA code (gpu_net.c, cudnn_ops.c, kernels.cu, allreduce_nccl.c) is
 * built as a separate module that links cudart, cuBLAS, cuDNN and NCCL, so
 * that a process which never touches a GPU never maps those libraries.
 * libtnrec loads the module on the first call of a GPU entry point
 * (gpu_loader.c) and calls it through one table of function pointers,
 * which the module hands out from its only exported symbol,
 * TRN_GPU_ENTRY (gpu_module_entry.c).
 *
 * The table is generated from the two lists below, so one entry point is
 * one line. TRN_GPU_CALLS holds the functions that return tnrec_err
 * and need nothing but a loaded module: gpu_loader.c defines their
 * libtnrec side from the list. TRN_GPU_SPECIAL_CALLS holds the rest,
 * whose libtnrec side is written by hand in gpu_loader.c (constructors
 * that must clear *out when the module is missing, frees that accept NULL
 * without loading anything, the device count that never fails).
 *
 * Invariant: the module and libtnrec come from one build. The table
 * carries its size, the tnrec version and TRN_GPU_SIGNATURE (the text
 * of both lists), and gpu_loader.c refuses a module whose three differ. */
#ifndef TNREC_TRAIN_GPU_MODULE_H
#define TNREC_TRAIN_GPU_MODULE_H

#include <stddef.h>

#include "allreduce_nccl.h"
#include "gpu_train.h"
#include "tnrec/gpu.h"

/* X(name, (parameters), (arguments)); each name is declared in
 * tnrec/gpu.h, gpu_train.h or allreduce_nccl.h and returns tnrec_err.
 * A new entry point of that kind: its declaration (e.g. in gpu_train.h),
 * its definition in the module (e.g. gpu_net.c), its answer in
 * gpu_stub.c, and one line here; the compiler checks that the line
 * matches the declaration on both sides. */
#define TRN_GPU_CALLS(X)                                                                                            \
    X(tnrec_gpu_check, (void), ())                                                                                     \
    X(tnrec_gpu_net_upload, (tnrec_gpu_net *net), (net))                                                               \
    X(tnrec_gpu_net_download, (tnrec_gpu_net *net), (net))                                                             \
    X(tnrec_gpu_net_train_step,                                                                                        \
      (tnrec_gpu_net *net, const float *x, const float *label, const float *weight, int n, uint64_t dropout_seed,      \
       float *logits, double *out_loss),                                                                               \
      (net, x, label, weight, n, dropout_seed, logits, out_loss))                                                      \
    X(tnrec_gpu_net_predict, (tnrec_gpu_net *net, const float *x, int n, float *logits), (net, x, n, logits))          \
    X(tnrec_gpu_net_predict_at, (tnrec_gpu_net *net, const float *x, const float *range_limits, int n, float *logits), \
      (net, x, range_limits, n, logits))                                                                               \
    X(tnrec_gpu_net_optim_step, (tnrec_gpu_net *net, tnrec_optim *opt, double lr, int *out_applied),                   \
      (net, opt, lr, out_applied))                                                                                     \
    X(trn_gpu_net_train_step,                                                                                       \
      (tnrec_gpu_net *net, const float *x, const float *label, const float *weight, int n, int global_n,               \
       int global_first, uint64_t dropout_seed, float *logits, double *out_loss),                                      \
      (net, x, label, weight, n, global_n, global_first, dropout_seed, logits, out_loss))                              \
    X(trn_gpu_net_pin, (tnrec_gpu_net *net, const void *p, size_t bytes), (net, p, bytes))                          \
    X(trn_gpu_net_sync, (tnrec_gpu_net *net), (net))                                                                \
    X(trn_gpu_net_stage, (tnrec_gpu_net *net, const float *x, const float *label, const float *weight, int n),      \
      (net, x, label, weight, n))                                                                                      \
    X(trn_gpu_net_unstage, (tnrec_gpu_net *net), (net))                                                             \
    X(trn_gpu_net_set_loss_scale, (tnrec_gpu_net *net, double scale, int good_steps), (net, scale, good_steps))     \
    X(trn_nccl_sum_host, (trn_nccl *c, void *buf, size_t n, int is_double), (c, buf, n, is_double))

/* X(return type, name, (parameters)). */
#define TRN_GPU_SPECIAL_CALLS(X)                                                                                    \
    X(int, tnrec_gpu_device_count, (void))                                                                             \
    X(tnrec_err, tnrec_gpu_net_create,                                                                                 \
      (tnrec_gpu_net **out, tnrec_model *m, int max_batch, const tnrec_gpu_options *opt))                              \
    X(tnrec_err, trn_gpu_net_create_ranked,                                                                         \
      (tnrec_gpu_net **out, tnrec_model *m, int max_batch, const tnrec_gpu_options *opt, trn_allreduce *ar))        \
    X(void, tnrec_gpu_net_free, (tnrec_gpu_net *net))                                                                  \
    X(const char *, tnrec_gpu_net_describe, (const tnrec_gpu_net *net))                                                \
    X(uint64_t, trn_gpu_net_staged_steps, (const tnrec_gpu_net *net))                                               \
    X(void, trn_gpu_net_loss_scale, (const tnrec_gpu_net *net, double *out_scale, int *out_good_steps))             \
    X(tnrec_err, trn_nccl_create, (trn_nccl **out, int rank, int size, int use_mpi, int device))                 \
    X(void, trn_nccl_free, (trn_nccl *c))                                                                        \
    X(void, trn_nccl_abort, (trn_nccl *c))

#define TRN_GPU_FIELD(name, params, args) tnrec_err(*name) params;
#define TRN_GPU_SPECIAL_FIELD(ret, name, params) ret(*name) params;
#define TRN_GPU_SIG(name, params, args) #name #params ";"
#define TRN_GPU_SPECIAL_SIG(ret, name, params) #ret " " #name #params ";"
/* The text of both lists: a module built from other lists is refused. */
#define TRN_GPU_SIGNATURE TRN_GPU_CALLS(TRN_GPU_SIG) TRN_GPU_SPECIAL_CALLS(TRN_GPU_SPECIAL_SIG)

typedef struct trn_gpu_api {
    size_t size;            /* sizeof(trn_gpu_api) in the module; checked first */
    const char *version;    /* TNREC_VERSION of the module's build */
    const char *signature;  /* TRN_GPU_SIGNATURE of the module's build */
    TRN_GPU_CALLS(TRN_GPU_FIELD)
    TRN_GPU_SPECIAL_CALLS(TRN_GPU_SPECIAL_FIELD)
} trn_gpu_api;

/* The module's one exported symbol: a function returning its table
 * (static, lives as long as the process). */
#define TRN_GPU_ENTRY tnrec_cuda_module_api
#define TRN_GPU_STR_(x) #x
#define TRN_GPU_STR(x) TRN_GPU_STR_(x)
#define TRN_GPU_ENTRY_NAME TRN_GPU_STR(TRN_GPU_ENTRY)
typedef const trn_gpu_api *(*trn_gpu_entry_fn)(void);
const trn_gpu_api *TRN_GPU_ENTRY(void);

#endif
