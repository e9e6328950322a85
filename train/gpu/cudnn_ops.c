/* train/gpu/cudnn_ops.c: the one file that calls cuDNN.
 *
 * Uses cuDNN 9's legacy convolution and batch-norm API (deprecated in 9.x
 * but present; this file is compiled with -Wno-deprecated-declarations on
 * purpose, see train/gpu/CMakeLists.txt). Moving to the graph API means
 * rewriting this file against cudnn_ops.h and nothing else.
 *
 * Tensors are NDHWC, described to cuDNN as N,C,D,H,W dims with NDHWC
 * strides; filters as CUDNN_TENSOR_NHWC [co][kd][kh][kw][ci]. Algorithms
 * come from cuDNN's heuristics (no timing runs, so the choice is the same
 * on every rank and every run), filtered by workspace limit, math type
 * (FMA only in float32 mode: TF32 off) and, when asked, determinism;
 * each direction has its own convolution descriptor holding the math
 * type its algorithm was chosen with, as cuDNN runs it with that one.
 * Every status is checked and turned into a tnrec_err naming the call. */
#include <cudnn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "cudnn_ops.h"
#include "gpu_kernels.h"

struct trn_dnn {
    cudnnHandle_t h;
    int dt, deterministic;
    cudnnDataType_t type;
};

struct trn_conv {
    trn_dnn *dnn;
    int n, d, h, w, ci, co;
    int kd, kh, kw;         /* kernel extents (odd; 'same' padding of half of each) */
    int layer, need_data;   /* need_data 0: no input gradient, no backward-data algorithm */
    int forward_only;       /* inference layers: no backward algorithms at all */
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t f;
    /* One convolution descriptor per direction: each carries the math
     * type of the algorithm chosen for it (cuDNN runs an algorithm with
     * the descriptor's math type, and the directions may differ). */
    cudnnConvolutionDescriptor_t cfwd, cdata, cfilt;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    cudnnMathType_t fwd_math, data_math, filt_math; /* as set on cfwd, cdata, cfilt */
    size_t ws;
    char algos[96];
};

struct trn_bn {
    trn_dnn *dnn;
    cudnnTensorDescriptor_t x, p;
};

static const float one = 1.0f, zero = 0.0f;

/* cuDNN 9 statuses come in families (CUDNN_STATUS_CATEGORY): 3000-3014
 * are all "not supported", and out of memory is 4003 (host) or 4004
 * (device) inside the internal-error family; CUDNN_STATUS_ALLOC_FAILED is
 * the host one alone. */
static int dnn_out_of_memory(cudnnStatus_t st)
{
#ifdef CUDNN_STATUS_CATEGORY
    return st == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
           st == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
#else
    return st == CUDNN_STATUS_ALLOC_FAILED;
#endif
}

static int dnn_not_supported(cudnnStatus_t st)
{
#ifdef CUDNN_STATUS_CATEGORY
    return CUDNN_STATUS_CATEGORY(st) == CUDNN_STATUS_NOT_SUPPORTED;
#else
    return st == CUDNN_STATUS_NOT_SUPPORTED;
#endif
}

static tnrec_err dnn_fail(cudnnStatus_t st, const char *call, const char *what)
{
    int oom = dnn_out_of_memory(st), unsupported = dnn_not_supported(st);
    tnrec_err code = oom ? TNREC_ENOMEM : unsupported ? TNREC_EUNSUPPORTED : TNREC_EINTERNAL;
    return tnrec__fail(code, "cuDNN %s failed for %s: %s (status %d)%s", call, what, cudnnGetErrorString(st), (int)st,
                       oom ? "\nhint: use a smaller --batch" :
                       unsupported ? "\nhint: try --precision fp32 or another cuDNN 9 release" : "");
}

/* cuDNN's legacy descriptors take int sizes and strides: a tensor of 2^31
 * elements or more is refused (as "not supported", whose hint above would
 * mislead). Say what helps instead, before any descriptor is made. */
static tnrec_err check_elements(int n, int d, int h, int w, int c, const char *what)
{
    long long per_sample = (long long)d * h * w * c;
    if (per_sample <= 0 || (long long)n * per_sample <= INT_MAX)
        return TNREC_OK;
    return tnrec__fail(TNREC_EUNSUPPORTED,
                       "%s: a batch of %d is %lld elements per tensor, over cuDNN's limit of 2^31 - 1\n"
                       "hint: use a smaller --batch (at most %lld per GPU for this layer's shape)",
                       what, n, (long long)n * per_sample, (long long)INT_MAX / per_sample);
}

#define DNN(call, what)                                                                                               \
    do {                                                                                                              \
        cudnnStatus_t st_ = (call);                                                                                   \
        if (st_ != CUDNN_STATUS_SUCCESS)                                                                              \
            return dnn_fail(st_, #call, what);                                                                        \
    } while (0)

const char *trn_dnn_version(void)
{
    static char buf[48];
    size_t v = cudnnGetVersion();
    snprintf(buf, sizeof buf, "cuDNN %zu.%zu.%zu", v / 10000, (v / 100) % 100, v % 100);
    return buf;
}

tnrec_err trn_dnn_create(trn_dnn **out, void *stream, int dt, int deterministic)
{
    *out = NULL;
    trn_dnn *d = calloc(1, sizeof *d);
    if (!d)
        return tnrec__fail(TNREC_ENOMEM, "out of memory for the cuDNN handle");
    d->dt = dt;
    d->deterministic = deterministic;
    d->type = dt == TRN_DT_F16 ? CUDNN_DATA_HALF : dt == TRN_DT_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    cudnnStatus_t st = cudnnCreate(&d->h);
    if (st != CUDNN_STATUS_SUCCESS) {
        free(d);
        return dnn_fail(st, "cudnnCreate", "the GPU trainer");
    }
    if ((st = cudnnSetStream(d->h, (cudaStream_t)stream)) != CUDNN_STATUS_SUCCESS) {
        cudnnDestroy(d->h);
        free(d);
        return dnn_fail(st, "cudnnSetStream", "the GPU trainer");
    }
    *out = d;
    return TNREC_OK;
}

void trn_dnn_free(trn_dnn *d)
{
    if (!d)
        return;
    cudnnDestroy(d->h);
    free(d);
}

/* n x d x h x w x c, NDHWC strides. */
static cudnnStatus_t set_ndhwc(cudnnTensorDescriptor_t t, cudnnDataType_t type, int n, int d, int h, int w, int c)
{
    int dims[5] = { n, c, d, h, w };
    int strides[5] = { d * h * w * c, 1, h * w * c, w * c, c };
    return cudnnSetTensorNdDescriptor(t, type, 5, dims, strides);
}

void trn_conv_free(trn_conv *c)
{
    if (!c)
        return;
    if (c->x) cudnnDestroyTensorDescriptor(c->x);
    if (c->y) cudnnDestroyTensorDescriptor(c->y);
    if (c->f) cudnnDestroyFilterDescriptor(c->f);
    if (c->cfwd) cudnnDestroyConvolutionDescriptor(c->cfwd);
    if (c->cdata) cudnnDestroyConvolutionDescriptor(c->cdata);
    if (c->cfilt) cudnnDestroyConvolutionDescriptor(c->cfilt);
    free(c);
}

/* Whether a heuristic result may be used. Float32 never takes tensor-op
 * (TF32) results; it takes FMA and DEFAULT results (cuDNN may label
 * float32 results either way), and the descriptor of the direction is
 * then set to FMA, not to the reported type (use_math), so DEFAULT_MATH,
 * which allows TF32 on sm_80 and later, is never what runs. Float16 and
 * bfloat16 take any math type (tensor cores are the point). */
static int algo_ok(const trn_dnn *dnn, cudnnStatus_t st, size_t memory, cudnnDeterminism_t det,
                   cudnnMathType_t math, size_t ws_limit, int ignore_det)
{
    if (st != CUDNN_STATUS_SUCCESS || memory > ws_limit)
        return 0;
    if (dnn->deterministic && !ignore_det && det != CUDNN_DETERMINISTIC)
        return 0;
    if (dnn->dt == TRN_DT_F32 && math != CUDNN_FMA_MATH && math != CUDNN_DEFAULT_MATH)
        return 0;
    return 1;
}

/* The math type to set for a chosen result: FMA whenever the data is
 * float32 (TF32 off), else what cuDNN reported for the algorithm. */
static cudnnMathType_t use_math(const trn_dnn *dnn, cudnnMathType_t reported)
{
    return dnn->dt == TRN_DT_F32 ? CUDNN_FMA_MATH : reported;
}

/* The math type the heuristics are asked with, before an algorithm is
 * chosen for a direction. */
static cudnnMathType_t base_math(const trn_dnn *dnn)
{
    return dnn->dt == TRN_DT_F32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
}

/* No algorithm for direction dir. det_only: results that only
 * --deterministic excluded, with no deterministic one that failed on
 * workspace (cuDNN has non-deterministic ones only); otherwise the
 * workspace is what is short (a smaller batch helps). */
static tnrec_err no_algo(const trn_dnn *dnn, const char *dir, size_t ws_limit, const char *what, int det_only)
{
    if (dnn->deterministic && det_only)
        return tnrec__fail(TNREC_EUNSUPPORTED, "cuDNN offers no deterministic %s convolution algorithm for %s "
                           "(only non-deterministic ones), so --deterministic cannot be honoured\n"
                           "hint: drop --deterministic, or try --precision fp16 or bf16; this cuDNN release "
                           "lacks a deterministic %s kernel at this shape and precision (docs/gpu.md, known limits)",
                           dir, what, dir);
    return tnrec__fail(TNREC_EUNSUPPORTED, "cuDNN has no %s convolution algorithm for %s within %zu bytes of workspace%s\n"
                       "hint: use a smaller --batch, or drop --deterministic", dir, what, ws_limit,
                       dnn->deterministic ? " (deterministic only)" : "");
}

/* For each direction: the first heuristic result that algo_ok accepts
 * and whose exact workspace (asked with its math type set on that
 * direction's descriptor) fits; the descriptor keeps that math type. A
 * rejected candidate's math type is overwritten by the next one's. */
static tnrec_err choose_algos(trn_conv *c, size_t ws_limit, const char *what)
{
    trn_dnn *dnn = c->dnn;
    enum { MAXA = 16 };
    int got = 0, found = 0, det_only = 0, det_big = 0, tried = 0;
    size_t need = 0;
    cudnnConvolutionFwdAlgoPerf_t fp[MAXA];
    DNN(cudnnGetConvolutionForwardAlgorithm_v7(dnn->h, c->x, c->f, c->cfwd, c->y, MAXA, &got, fp), what);
    for (int i = 0; i < got && !found; i++) {
        if (!algo_ok(dnn, fp[i].status, fp[i].memory, fp[i].determinism, fp[i].mathType, ws_limit, 0)) {
            det_only += algo_ok(dnn, fp[i].status, fp[i].memory, fp[i].determinism, fp[i].mathType, ws_limit, 1);
            det_big += fp[i].status == CUDNN_STATUS_SUCCESS && fp[i].memory > ws_limit &&
                       fp[i].determinism == CUDNN_DETERMINISTIC;
            continue;
        }
        tried++;
        DNN(cudnnSetConvolutionMathType(c->cfwd, use_math(dnn, fp[i].mathType)), what);
        /* The heuristics' memory figure is an estimate: ask for the exact size. */
        if (cudnnGetConvolutionForwardWorkspaceSize(dnn->h, c->x, c->f, c->cfwd, c->y, fp[i].algo, &need) ==
                CUDNN_STATUS_SUCCESS && need <= ws_limit) {
            c->fwd = fp[i].algo;
            c->fwd_math = use_math(dnn, fp[i].mathType);
            c->ws = need > c->ws ? need : c->ws;
            found = 1;
        }
    }
    if (!found)
        return no_algo(dnn, "forward", ws_limit, what, det_only && !tried && !det_big);
    if (c->forward_only) {
        snprintf(c->algos, sizeof c->algos, "fwd %d/m%d", (int)c->fwd, (int)c->fwd_math);
        return TNREC_OK;
    }
    cudnnConvolutionBwdDataAlgoPerf_t dp[MAXA];
    got = 0;
    if (c->need_data)
        DNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(dnn->h, c->f, c->y, c->cdata, c->x, MAXA, &got, dp), what);
    found = !c->need_data;
    det_only = det_big = tried = 0;
    for (int i = 0; i < got && !found; i++) {
        if (!algo_ok(dnn, dp[i].status, dp[i].memory, dp[i].determinism, dp[i].mathType, ws_limit, 0)) {
            det_only += algo_ok(dnn, dp[i].status, dp[i].memory, dp[i].determinism, dp[i].mathType, ws_limit, 1);
            det_big += dp[i].status == CUDNN_STATUS_SUCCESS && dp[i].memory > ws_limit &&
                       dp[i].determinism == CUDNN_DETERMINISTIC;
            continue;
        }
        tried++;
        DNN(cudnnSetConvolutionMathType(c->cdata, use_math(dnn, dp[i].mathType)), what);
        if (cudnnGetConvolutionBackwardDataWorkspaceSize(dnn->h, c->f, c->y, c->cdata, c->x, dp[i].algo, &need) ==
                CUDNN_STATUS_SUCCESS && need <= ws_limit) {
            c->bwd_data = dp[i].algo;
            c->data_math = use_math(dnn, dp[i].mathType);
            c->ws = need > c->ws ? need : c->ws;
            found = 1;
        }
    }
    if (!found)
        return no_algo(dnn, "backward-data", ws_limit, what, det_only && !tried && !det_big);
    cudnnConvolutionBwdFilterAlgoPerf_t bp[MAXA];
    DNN(cudnnGetConvolutionBackwardFilterAlgorithm_v7(dnn->h, c->x, c->y, c->cfilt, c->f, MAXA, &got, bp), what);
    found = 0;
    det_only = det_big = tried = 0;
    for (int i = 0; i < got && !found; i++) {
        if (!algo_ok(dnn, bp[i].status, bp[i].memory, bp[i].determinism, bp[i].mathType, ws_limit, 0)) {
            det_only += algo_ok(dnn, bp[i].status, bp[i].memory, bp[i].determinism, bp[i].mathType, ws_limit, 1);
            det_big += bp[i].status == CUDNN_STATUS_SUCCESS && bp[i].memory > ws_limit &&
                       bp[i].determinism == CUDNN_DETERMINISTIC;
            continue;
        }
        tried++;
        DNN(cudnnSetConvolutionMathType(c->cfilt, use_math(dnn, bp[i].mathType)), what);
        if (cudnnGetConvolutionBackwardFilterWorkspaceSize(dnn->h, c->x, c->y, c->cfilt, c->f, bp[i].algo, &need) ==
                CUDNN_STATUS_SUCCESS && need <= ws_limit) {
            c->bwd_filter = bp[i].algo;
            c->filt_math = use_math(dnn, bp[i].mathType);
            c->ws = need > c->ws ? need : c->ws;
            found = 1;
        }
    }
    if (!found)
        return no_algo(dnn, "backward-filter", ws_limit, what, det_only && !tried && !det_big);
    char data[24] = "none";
    if (c->need_data)
        snprintf(data, sizeof data, "%d/m%d", (int)c->bwd_data, (int)c->data_math);
    snprintf(c->algos, sizeof c->algos, "fwd %d/m%d bwd-data %s bwd-filter %d/m%d", (int)c->fwd, (int)c->fwd_math, data,
             (int)c->bwd_filter, (int)c->filt_math);
    return TNREC_OK;
}

static tnrec_err conv_setup(trn_conv *c, size_t ws_limit)
{
    trn_dnn *dnn = c->dnn;
    char what[128];
    snprintf(what, sizeof what, "layer %d (%dx%dx%d convolution %d->%d channels on %dx%dx%dx%d)", c->layer, c->kd,
             c->kh, c->kw, c->ci, c->co, c->n, c->d, c->h, c->w);
    tnrec_err err = check_elements(c->n, c->d, c->h, c->w, c->ci > c->co ? c->ci : c->co, what);
    if (err)
        return err;
    DNN(cudnnCreateTensorDescriptor(&c->x), what);
    DNN(cudnnCreateTensorDescriptor(&c->y), what);
    DNN(cudnnCreateFilterDescriptor(&c->f), what);
    DNN(cudnnCreateConvolutionDescriptor(&c->cfwd), what);
    DNN(cudnnCreateConvolutionDescriptor(&c->cdata), what);
    DNN(cudnnCreateConvolutionDescriptor(&c->cfilt), what);
    DNN(set_ndhwc(c->x, dnn->type, c->n, c->d, c->h, c->w, c->ci), what);
    DNN(set_ndhwc(c->y, dnn->type, c->n, c->d, c->h, c->w, c->co), what);
    int fdims[5] = { c->co, c->ci, c->kd, c->kh, c->kw };
    DNN(cudnnSetFilterNdDescriptor(c->f, dnn->type, CUDNN_TENSOR_NHWC, 5, fdims), what);
    int pad[3] = { c->kd / 2, c->kh / 2, c->kw / 2 }, stride[3] = { 1, 1, 1 }, dil[3] = { 1, 1, 1 };
    /* Accumulate in float whatever the storage type. */
    cudnnConvolutionDescriptor_t descs[3] = { c->cfwd, c->cdata, c->cfilt };
    for (int k = 0; k < 3; k++) {
        DNN(cudnnSetConvolutionNdDescriptor(descs[k], 3, pad, stride, dil, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
            what);
        DNN(cudnnSetConvolutionMathType(descs[k], base_math(dnn)), what);
    }
    return choose_algos(c, ws_limit, what);
}

static tnrec_err conv_create(trn_conv **out, trn_dnn *dnn, int layer, int need_data, int forward_only, int n, int d,
                             int h, int w, int ci, int co, const int k[3], size_t ws_limit)
{
    *out = NULL;
    trn_conv *c = calloc(1, sizeof *c);
    if (!c)
        return tnrec__fail(TNREC_ENOMEM, "out of memory for a convolution plan");
    c->dnn = dnn;
    c->n = n; c->d = d; c->h = h; c->w = w; c->ci = ci; c->co = co;
    c->kd = k[0]; c->kh = k[1]; c->kw = k[2];
    c->layer = layer;
    c->need_data = need_data && !forward_only;
    c->forward_only = forward_only;
    tnrec_err err = conv_setup(c, ws_limit);
    if (err) {
        trn_conv_free(c);
        return err;
    }
    *out = c;
    return TNREC_OK;
}

tnrec_err trn_conv_create(trn_conv **out, trn_dnn *dnn, int layer, int need_data, int n, int d, int h, int w,
                             int ci, int co, size_t ws_limit)
{
    static const int k333[3] = { 3, 3, 3 };
    return conv_create(out, dnn, layer, need_data, 0, n, d, h, w, ci, co, k333, ws_limit);
}

tnrec_err trn_conv_create_infer(trn_conv **out, trn_dnn *dnn, int layer, int n, int d, int h, int w, int ci, int co,
                                int kd, int k, size_t ws_limit)
{
    const int kdkk[3] = { kd, k, k };
    return conv_create(out, dnn, layer, 0, 1, n, d, h, w, ci, co, kdkk, ws_limit);
}

size_t trn_conv_workspace(const trn_conv *c) { return c->ws; }
const char *trn_conv_algos(const trn_conv *c) { return c->algos; }

tnrec_err trn_conv_forward(trn_conv *c, void *y, const void *x, const void *filt, void *ws, size_t ws_size)
{
    cudnnHandle_t h = c->dnn->h;
    DNN(cudnnConvolutionForward(h, &one, c->x, x, c->f, filt, c->cfwd, c->fwd, ws, ws_size, &zero, c->y, y),
        "Conv3D forward");
    return TNREC_OK;
}

tnrec_err trn_conv_backward(trn_conv *c, void *dx, void *dfilt, const void *x, const void *filt, const void *dy,
                               void *ws, size_t ws_size)
{
    cudnnHandle_t h = c->dnn->h;
    DNN(cudnnConvolutionBackwardFilter(h, &one, c->x, x, c->y, dy, c->cfilt, c->bwd_filter, ws, ws_size, &zero, c->f,
                                       dfilt),
        "Conv3D filter gradient");
    if (c->forward_only)
        return tnrec__fail(TNREC_EINTERNAL, "layer %d: a convolution planned for inference has no backward pass",
                           c->layer);
    if (dx && !c->need_data)
        return tnrec__fail(TNREC_EINTERNAL, "Conv3D layer %d: input gradient asked for, but its plan has no "
                           "backward-data algorithm", c->layer);
    if (dx)
        DNN(cudnnConvolutionBackwardData(h, &one, c->f, filt, c->y, dy, c->cdata, c->bwd_data, ws, ws_size, &zero, c->x,
                                         dx),
            "Conv3D input gradient");
    return TNREC_OK;
}

void trn_bn_free(trn_bn *b)
{
    if (!b)
        return;
    if (b->x) cudnnDestroyTensorDescriptor(b->x);
    if (b->p) cudnnDestroyTensorDescriptor(b->p);
    free(b);
}

tnrec_err trn_bn_create(trn_bn **out, trn_dnn *dnn, int n, int d, int h, int w, int c)
{
    *out = NULL;
    trn_bn *b = calloc(1, sizeof *b);
    if (!b)
        return tnrec__fail(TNREC_ENOMEM, "out of memory for a batch-norm plan");
    b->dnn = dnn;
    tnrec_err err = check_elements(n, d, h, w, c, "BatchNormalization");
    if (err) {
        free(b);
        return err;
    }
    cudnnStatus_t st = cudnnCreateTensorDescriptor(&b->x);
    if (st == CUDNN_STATUS_SUCCESS)
        st = cudnnCreateTensorDescriptor(&b->p);
    if (st == CUDNN_STATUS_SUCCESS)
        st = set_ndhwc(b->x, dnn->type, n, d, h, w, c);
    if (st == CUDNN_STATUS_SUCCESS)
        st = cudnnDeriveBNTensorDescriptor(b->p, b->x, CUDNN_BATCHNORM_SPATIAL);
    if (st != CUDNN_STATUS_SUCCESS) {
        trn_bn_free(b);
        return dnn_fail(st, "batch-norm descriptors", "BatchNormalization");
    }
    *out = b;
    return TNREC_OK;
}

tnrec_err trn_bn_forward_train(trn_bn *b, void *y, const void *x, const float *gamma, const float *beta,
                                  float *save_mean, float *save_inv, double eps)
{
    /* No running averages here (NULL, NULL): the caller keeps Keras'
     * moving statistics, which use the biased variance. */
    DNN(cudnnBatchNormalizationForwardTraining(b->dnn->h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, b->x, x, b->x, y, b->p,
                                               gamma, beta, 0.0, NULL, NULL, eps, save_mean, save_inv),
        "BatchNormalization forward");
    return TNREC_OK;
}

tnrec_err trn_bn_forward_infer(trn_bn *b, void *y, const void *x, const float *gamma, const float *beta,
                                  const float *mean, const float *var, double eps)
{
    DNN(cudnnBatchNormalizationForwardInference(b->dnn->h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, b->x, x, b->x, y,
                                                b->p, gamma, beta, mean, var, eps),
        "BatchNormalization inference");
    return TNREC_OK;
}

tnrec_err trn_bn_backward(trn_bn *b, void *dx, float *dgamma, float *dbeta, const void *x, const void *dy,
                             const float *gamma, const float *save_mean, const float *save_inv, double eps)
{
    DNN(cudnnBatchNormalizationBackward(b->dnn->h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, b->x, x, b->x,
                                        dy, b->x, dx, b->p, gamma, dgamma, dbeta, eps, save_mean, save_inv),
        "BatchNormalization backward");
    return TNREC_OK;
}
