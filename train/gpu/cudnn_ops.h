/* train/gpu/cudnn_ops.h: every use of cuDNN in tnrec, behind a small
 * interface (train/gpu/cudnn_ops.c). Private to train/gpu/.
 *
 * Convolutions (3x3x3 'same', stride 1, and for inference 1 x k x k;
 * the bias is tnrec's own kernel,
 * gpu_kernels.h) and spatial batch norm
 * over NDHWC tensors of one data type (TRN_DT_*), for one batch size
 * each: descriptors and algorithms are made once per shape by the
 * _create functions and reused every step. Moving to cuDNN's graph API
 * changes this file pair only. Device pointers are void *. */
#ifndef TNREC_TRAIN_GPU_CUDNN_OPS_H
#define TNREC_TRAIN_GPU_CUDNN_OPS_H

#include <stddef.h>

#include "tnrec/error.h"

typedef struct trn_dnn trn_dnn;
typedef struct trn_conv trn_conv;
typedef struct trn_bn trn_bn;

/* A cuDNN handle on `stream` (a cudaStream_t) for data type dt.
 * deterministic: only algorithms cuDNN reports as deterministic. */
tnrec_err trn_dnn_create(trn_dnn **out, void *stream, int dt, int deterministic);
void trn_dnn_free(trn_dnn *dnn);                   /* accepts NULL */
/* "cuDNN 9.x.y" (static buffer of the library actually loaded). */
const char *trn_dnn_version(void);

/* One conv layer at batch n. Algorithms are chosen by cuDNN's heuristics
 * among those needing at most ws_limit bytes of workspace (float32 mode:
 * FMA math only, no TF32; float16/bfloat16: any math type, tensor cores
 * included); each direction keeps its own descriptor with the math type of
 * its algorithm. layer: the model layer, for messages. need_data 0: the
 * input gradient is never asked for (the first layer with parameters),
 * so no backward-data algorithm is chosen and trn_conv_backward must
 * get dx NULL. With --deterministic and no deterministic algorithm for a
 * direction: TNREC_EUNSUPPORTED, "no deterministic" in the message. */
tnrec_err trn_conv_create(trn_conv **out, trn_dnn *dnn, int layer, int need_data, int n, int d, int h, int w,
                             int ci, int co, size_t ws_limit);
/* A convolution for inference only (no backward algorithms; a backward
 * call fails): a kd x k x k kernel, 'same' (odd extents): 3 x 3 x 3 for
 * a Conv3D in an inference net, 1 x 3 x 3 for CoordConv2D's. filt is
 * [co][kd][k][k][ci]. */
tnrec_err trn_conv_create_infer(trn_conv **out, trn_dnn *dnn, int layer, int n, int d, int h, int w, int ci, int co,
                                int kd, int k, size_t ws_limit);
void trn_conv_free(trn_conv *c);                   /* accepts NULL */
/* Largest workspace the chosen algorithms need. */
size_t trn_conv_workspace(const trn_conv *c);
/* Short text of the chosen algorithms, e.g. "fwd 1 bwd-data 1 bwd-filter 1". */
const char *trn_conv_algos(const trn_conv *c);
/* y = conv(x, filt), without bias (trn_k_conv_bias_add adds it).
 * filt is [co][3][3][3][ci] (cuDNN NDHWC). */
tnrec_err trn_conv_forward(trn_conv *c, void *y, const void *x, const void *filt, void *ws, size_t ws_size);
/* dfilt overwritten; dx (may be NULL; must be without need_data)
 * overwritten. The bias gradient is trn_k_conv_bias_grad's. */
tnrec_err trn_conv_backward(trn_conv *c, void *dx, void *dfilt, const void *x, const void *filt, const void *dy,
                               void *ws, size_t ws_size);

/* Spatial batch norm of an n x d x h x w x c tensor; gamma, beta, means
 * and variances are float32 [c]. */
tnrec_err trn_bn_create(trn_bn **out, trn_dnn *dnn, int n, int d, int h, int w, int c);
void trn_bn_free(trn_bn *b);                       /* accepts NULL */
/* Training mode: batch statistics; save_mean and save_inv (1/sqrt(var +
 * eps), biased variance) receive them for the backward pass. The moving
 * statistics are not touched (the caller updates them as Keras does). */
tnrec_err trn_bn_forward_train(trn_bn *b, void *y, const void *x, const float *gamma, const float *beta,
                                  float *save_mean, float *save_inv, double eps);
tnrec_err trn_bn_forward_infer(trn_bn *b, void *y, const void *x, const float *gamma, const float *beta,
                                  const float *mean, const float *var, double eps);
/* dx, dgamma, dbeta overwritten. */
tnrec_err trn_bn_backward(trn_bn *b, void *dx, float *dgamma, float *dbeta, const void *x, const void *dy,
                             const float *gamma, const float *save_mean, const float *save_inv, double eps);

#endif
