/* tnrec/gpu.h: the detector on an NVIDIA GPU (cuDNN, cuBLAS, NCCL).
 *
 * A tnrec_gpu_net is the GPU twin of tnrec_net: the same model (layer
 * table, flat parameter layout, BN state) run with cuDNN convolutions and
 * batch norm, cuBLAS dense layers and small CUDA kernels for the rest, in
 * NDHWC. Master weights, the gradient and the Adam moments stay float32 on
 * the device; activations are float32 (TF32 off), float16 (with dynamic
 * loss scaling) or bfloat16.
 *
 * Every function here exists in every build. Without CUDA compiled in,
 * tnrec_gpu_check and the constructors fail with TNREC_EUNSUPPORTED and a
 * message naming what to install; tnrec_gpu_device_count returns 0. */
#ifndef TNREC_GPU_H
#define TNREC_GPU_H

#include <stdint.h>

#include "tnrec/error.h"
#include "tnrec/train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tnrec_precision {
    TNREC_PRECISION_FP32 = 0, /* float32 everywhere, TF32 off: matches the CPU path */
    TNREC_PRECISION_FP16 = 1, /* float16 activations, float32 master weights, loss scaling */
    TNREC_PRECISION_BF16 = 2  /* bfloat16 activations, float32 master weights */
} tnrec_precision;

/* "fp32", "fp16" (also "mixed") or "bf16"; TNREC_EINVAL otherwise. */
tnrec_err tnrec_precision_parse(tnrec_precision *out, const char *name);
const char *tnrec_precision_name(tnrec_precision p);   /* static string */

/* Usable CUDA devices: 0 without CUDA compiled in, without a driver or
 * without a device (never fails). */
int tnrec_gpu_device_count(void);
/* TNREC_OK when a GPU run can start; else TNREC_EUNSUPPORTED (built
 * without CUDA) or TNREC_ENOTFOUND (no driver or device), with a message
 * and a hint saying what to install or check. */
tnrec_err tnrec_gpu_check(void);

typedef struct tnrec_gpu_options {
    int device;                 /* CUDA ordinal; -1: local rank modulo the device count */
    tnrec_precision precision;
    int deterministic;          /* 1: only deterministic cuDNN algorithms */
    double loss_scale;          /* fp16: initial dynamic loss scale, >= 1 (0: 65536) */
    int inference_only;         /* 1: the net only predicts (no gradients, optimiser moments or
                                 * backward algorithms are made; training calls fail); the
                                 * TorNet baseline's layers (CoordConv2D, 1x1 convolutions,
                                 * ReLU, 'same' pooling, element dropout) run only in such a net */
} tnrec_gpu_options;
void tnrec_gpu_options_default(tnrec_gpu_options *out);

typedef struct tnrec_gpu_net tnrec_gpu_net;
/* Workspace for m on the GPU for batches of up to max_batch: buffers,
 * cuDNN descriptors, the chosen algorithms and one workspace are made
 * here once; weights and BN state are uploaded from m. m is borrowed and
 * must outlive the net. */
tnrec_err tnrec_gpu_net_create(tnrec_gpu_net **out, tnrec_model *m, int max_batch,
                               const tnrec_gpu_options *opt);
void tnrec_gpu_net_free(tnrec_gpu_net *net);            /* accepts NULL */
/* Copies the host model's weights and BN state to the device (after the
 * host changed them, e.g. restoring a checkpoint). The next
 * tnrec_gpu_net_optim_step then takes the Adam moments from its optimiser
 * again (restored with the checkpoint): if the device's moments are newer
 * than the host's, tnrec_gpu_net_download first. */
tnrec_err tnrec_gpu_net_upload(tnrec_gpu_net *net);
/* Copies weights, BN state and the last gradient back into the host model
 * (tnrec_model_params / _state / _grads), and the Adam moments into the
 * optimiser last passed to tnrec_gpu_net_optim_step. */
tnrec_err tnrec_gpu_net_download(tnrec_gpu_net *net);
/* One training step, same contract as tnrec_net_train_step: batch
 * statistics, dropout masks from dropout_seed (the same masks as the CPU
 * path), loss as tnrec_model_ref_loss; the gradient stays on the device
 * (tnrec_gpu_net_download fetches it). x is NDHWC float32 on the host. */
tnrec_err tnrec_gpu_net_train_step(tnrec_gpu_net *net, const float *x, const float *label,
                                   const float *weight, int n, uint64_t dropout_seed,
                                   float *logits, double *out_loss);
/* Inference with the moving statistics; logits receives n values. */
tnrec_err tnrec_gpu_net_predict(tnrec_gpu_net *net, const float *x, int n, float *logits);
/* The same with each chip's range window (n x [lower, upper] metres; NULL:
 * the fixed window), as tnrec_net_predict_at. */
tnrec_err tnrec_gpu_net_predict_at(tnrec_gpu_net *net, const float *x, const float *range_limits, int n,
                                   float *logits);
/* Clipping and one Adam(W) update on the device with opt's settings; the
 * moments move to the device on first use and stay there. *out_applied
 * (may be NULL) is 0 when a float16 step overflowed and was skipped (the
 * loss scale is then halved), else 1. */
tnrec_err tnrec_gpu_net_optim_step(tnrec_gpu_net *net, tnrec_optim *opt, double lr,
                                   int *out_applied);
/* One line: device name, precision, conv algorithms, workspace size.
 * Borrowed, lives with net. */
const char *tnrec_gpu_net_describe(const tnrec_gpu_net *net);

#ifdef __cplusplus
}
#endif
#endif
