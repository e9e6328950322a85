/* train/gpu/gpu_net.c: the detector on one GPU: forward, loss, backward,
 * gradient all-reduce, L2, and Adam, with the model's own layer table.
 *
 * Layout: NDHWC activations of type dt (float32, float16 or bfloat16) up
 * to the global max pooling, float32 after it (the dense head is tiny and
 * stays in float32 on cuBLAS). Master weights, gradients, BN statistics
 * and Adam moments are float32 device arrays in exactly the host model's
 * flat layout, so the all-reduce, the optimiser, checkpoints and the CPU
 * path all see the same arrays. Conv kernels are packed from the master
 * weights into cuDNN's [co][kd][kh][kw][ci] working copies after each
 * update; in float16/bfloat16 the input channels are padded to a multiple
 * of 8 for tensor cores (zeros, dropped again when gradients are unpacked).
 *
 * Allocation: everything is sized for max_batch in tnrec_gpu_net_create,
 * including the one cuDNN workspace; a new batch size only adds cuDNN
 * descriptors and algorithm choices (cached per size). Steps allocate
 * nothing. Host traffic per step: the input, labels and weights in (on a
 * copy stream the compute stream waits for), the logits and loss terms
 * out, one synchronisation.
 *
 * Input slots: two device copies of (input, labels, weights). A step
 * either finds its batch already in a slot (trn_gpu_net_stage copied it
 * there on the copy stream while the previous step ran; the compute stream
 * waits on the slot's `copied` event) or copies it into a slot that holds
 * no staged batch. A copy into a slot waits on the slot's `used` event,
 * recorded on the compute stream after the last kernel that reads it, so
 * the copy of batch k+1 can overlap step k but never overwrites what step
 * k still reads. Staging needs host memory registered with CUDA
 * (trn_gpu_net_pin); a batch elsewhere is simply copied by its step
 * (through the pinned staging buffer h_x).
 *
 * Semantics follow train/network.c except batch norm across ranks: each
 * GPU normalises with its own batch statistics (cuDNN); the moving
 * statistics are averaged over ranks by trn_gpu_net_sync before
 * evaluation and checkpoints. With one GPU the result equals the CPU
 * path's up to float rounding (float32 mode). Float16 uses dynamic loss
 * scaling: the scale halves on overflow (that step is skipped) and
 * doubles after 2000 good steps. */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allreduce_nccl.h"
#include "common.h"
#include "cudnn_ops.h"
#include "gpu_kernels.h"
#include "gpu_train.h"
#include "nn.h"
#include "optim.h"

#define PLAN_MAX 8
#define WS_CAP ((size_t)1 << 30)
#define SCALE_GROWTH_STEPS 2000
#define PIN_MAX 16
#define NSLOTS 2

typedef struct glayer {
    void *out;              /* output activations (aliases the input when in place) */
    int owned;
    int cpad;               /* stored channels of the output (padded before the first conv) */
    int is_float;           /* output is float32 (at or after the global pooling) */
    void *filt, *dfilt;     /* conv: packed kernel (dt) and its gradient (training convs only) */
    int ci_pad;             /* conv: stored input channels (CoordConv2D: input, coordinates, zeros) */
    float *save_mean, *save_inv; /* BN: batch statistics for the backward pass */
    float *mask;            /* dropout: per (sample, channel) scale */
} glayer;

/* One device copy of a batch's inputs, and what it holds. */
typedef struct inslot {
    float *x, *label, *weight;          /* device: NDHWC float32 input, labels, weights */
    float *h_lw;                        /* pinned: labels [max_batch], weights [max_batch] */
    cudaEvent_t copied;                 /* copy stream: the last copy into this slot is done */
    cudaEvent_t used;                   /* compute stream: the last step reading this slot is done */
    int staged;                         /* holds a batch staged for a step not yet run */
    const float *key_x, *key_label, *key_weight; /* the host batch it holds */
    int key_n;
    uint64_t age;                       /* staging order, to evict the oldest */
    uint64_t staged_at;                 /* net's `takes` when staged */
} inslot;

typedef struct plan {
    int n;
    trn_conv **conv;     /* per layer, NULL except convolutions */
    trn_bn **bn;
} plan;

struct tnrec_gpu_net {
    tnrec_model *m;
    trn_allreduce *ar;
    tnrec_gpu_options opt;
    int dt, max_batch, device, nl, first_param;
    cudaStream_t stream, copy_stream;
    cublasHandle_t blas;
    trn_dnn *dnn;
    glayer *L;
    plan plans[PLAN_MAX];
    int nplans;
    void *ws;
    size_t ws_size;
    float *params, *grads, *state;     /* device masters, host model layout */
    float *opt_m, *opt_v;
    tnrec_optim *optim;                /* whose moments live in opt_m / opt_v */
    inslot in[NSLOTS];                 /* device input slots (see the top of the file) */
    uint64_t stage_clock;
    uint64_t takes;                    /* steps and predictions so far */
    uint64_t staged_steps;             /* of them, found their batch staged before the one before began */
    int hx_slot;                       /* slot whose last copy read h_x; -1: none */
    int stage_off;                     /* TNREC_GPU_STAGE=0: never stage */
    void *x_cast;                      /* input cast and padded (NULL in plain float32) */
    void *xcat;                        /* CoordConv2D: its input and coordinates (dt) */
    float *coords, *h_coords;          /* CoordConv coordinates of a batch: device, pinned (n x ncoords) */
    double *coord_scratch, *coord_work; /* host: one chip's coordinates while computing them */
    const void *x_in;                  /* what the first layer reads this step: x_cast or a slot's x */
    const float *cur_label, *cur_weight; /* this step's labels and weights (device; weight may be NULL) */
    int in_cpad;
    void *g[2];                        /* gradient ping-pong */
    float *bias_part;                  /* conv bias gradient: partial sums (trn_k_conv_bias_scratch) */
    float *dlogits;
    double *loss_terms, *l2_partial;
    int l2_total;
    int *flag;
    size_t *clip_off, *clip_len;
    int nclip;
    float *h_x, *h_small;              /* pinned: input staging; logits */
    double *h_dbl;                     /* pinned: loss terms, L2 partials */
    int *h_flag;
    struct { const char *p; size_t bytes; } pins[PIN_MAX]; /* host ranges registered with CUDA */
    int npins;
    double loss_scale;
    int good_steps, weights_dirty;
    char desc[512];
};

/* ---- errors ---- */

static tnrec_err cu(cudaError_t e, const char *what)
{
    if (e == cudaSuccess)
        return TNREC_OK;
    if (e == cudaErrorMemoryAllocation)
        return tnrec__fail(TNREC_ENOMEM, "CUDA %s: out of GPU memory (%s)\nhint: use a smaller --batch or --precision fp16",
                           what, cudaGetErrorString(e));
    return tnrec__fail(TNREC_EINTERNAL, "CUDA %s failed: %s (%s)\nhint: check the GPU with nvidia-smi; "
                       "CUDA_LAUNCH_BLOCKING=1 makes the failing call the one reported", what, cudaGetErrorName(e),
                       cudaGetErrorString(e));
}

static tnrec_err kr(int e, const char *what) { return cu((cudaError_t)e, what); }

static tnrec_err blas(cublasStatus_t s, const char *what)
{
    if (s == CUBLAS_STATUS_SUCCESS)
        return TNREC_OK;
    return tnrec__fail(s == CUBLAS_STATUS_ALLOC_FAILED ? TNREC_ENOMEM : TNREC_EINTERNAL, "cuBLAS %s failed: %s", what,
                       cublasGetStatusString(s));
}

#define TRY(expr)                                                                                                     \
    do {                                                                                                              \
        tnrec_err e_ = (expr);                                                                                        \
        if (e_)                                                                                                       \
            return e_;                                                                                                \
    } while (0)

/* ---- devices ---- */

int tnrec_gpu_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess)
        return 0;
    return n;
}

tnrec_err tnrec_gpu_check(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess)
        return tnrec__fail(TNREC_ENOTFOUND, "no usable CUDA device: %s\nhint: this machine needs an NVIDIA GPU and a "
                           "driver for CUDA 13 (nvidia-smi should list the GPU); check CUDA_VISIBLE_DEVICES",
                           cudaGetErrorString(e));
    if (n < 1)
        return tnrec__fail(TNREC_ENOTFOUND, "no CUDA device visible\nhint: check nvidia-smi and CUDA_VISIBLE_DEVICES");
    return TNREC_OK;
}

/* ---- plans: cuDNN descriptors and algorithms per batch size ---- */

static void plan_clear(tnrec_gpu_net *g, plan *p)
{
    if (p->conv)
        for (int i = 0; i < g->nl; i++)
            trn_conv_free(p->conv[i]);
    if (p->bn)
        for (int i = 0; i < g->nl; i++)
            trn_bn_free(p->bn[i]);
    free(p->conv);
    free(p->bn);
    memset(p, 0, sizeof *p);
}

static tnrec_err plan_make(tnrec_gpu_net *g, plan *p, int n, size_t ws_limit)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    p->conv = calloc((size_t)g->nl, sizeof *p->conv);
    p->bn = calloc((size_t)g->nl, sizeof *p->bn);
    if (!p->conv || !p->bn)
        return tnrec__fail(TNREC_ENOMEM, "out of memory for GPU plans");
    for (int i = 0; i < g->nl; i++) {
        const trn_layer *L = &g->m->layers[i];
        tnrec_err err = TNREC_OK;
        if (L->kind == TRN_CONV && g->opt.inference_only)
            err = trn_conv_create_infer(&p->conv[i], g->dnn, i, n, L->d, L->h, L->w, g->L[i].ci_pad, L->c, 3, 3,
                                        ws_limit);
        else if (L->kind == TRN_CONV)
            /* The first layer with parameters never computes its input gradient. */
            err = trn_conv_create(&p->conv[i], g->dnn, i, i != g->first_param, n, L->d, L->h, L->w, g->L[i].ci_pad,
                                     L->c, ws_limit);
        else if (L->kind == TRN_CCONV)
            err = trn_conv_create_infer(&p->conv[i], g->dnn, i, n, L->d, L->h, L->w, g->L[i].ci_pad, L->c, 1, 3,
                                        ws_limit);
        else if (L->kind == TRN_BN)
            err = trn_bn_create(&p->bn[i], g->dnn, n, L->d, L->h, L->w, L->c);
        if (err)
            return err;
    }
    return TNREC_OK;
}

/* The plan for batch n: cached, else made now (within the workspace). */
static tnrec_err plan_get(tnrec_gpu_net *g, int n, plan **out)
{
    for (int i = 0; i < g->nplans; i++)
        if (g->plans[i].n == n) {
            *out = &g->plans[i];
            return TNREC_OK;
        }
    if (g->nplans == PLAN_MAX) {
        /* Keep plan 0 (max_batch); drop the oldest other one. */
        plan_clear(g, &g->plans[1]);
        memmove(&g->plans[1], &g->plans[2], (PLAN_MAX - 2) * sizeof g->plans[0]);
        g->nplans--;
    }
    plan *p = &g->plans[g->nplans];
    tnrec_err err = plan_make(g, p, n, g->ws_size);
    if (err) {
        plan_clear(g, p);
        return err;
    }
    g->nplans++;
    *out = p;
    return TNREC_OK;
}

/* ---- lifecycle ---- */

static void dfree(void *p)
{
    if (p)
        cudaFree(p);
}

void tnrec_gpu_net_free(tnrec_gpu_net *g)
{
    if (!g)
        return;
    /* Best effort: the frees below need the net's device current. */
    if (cudaSetDevice(g->device) != cudaSuccess)
        cudaGetLastError();
    if (g->stream)
        cudaStreamSynchronize(g->stream);
    if (g->copy_stream)
        cudaStreamSynchronize(g->copy_stream);
    for (int i = 0; i < g->npins; i++)
        cudaHostUnregister((void *)g->pins[i].p);
    for (int i = 0; i < g->nplans; i++)
        plan_clear(g, &g->plans[i]);
    if (g->L)
        for (int i = 0; i < g->nl; i++) {
            glayer *l = &g->L[i];
            if (l->owned)
                dfree(l->out);
            dfree(l->filt);
            dfree(l->dfilt);
            dfree(l->save_mean);
            dfree(l->save_inv);
            dfree(l->mask);
        }
    free(g->L);
    dfree(g->ws);
    dfree(g->params);
    dfree(g->grads);
    dfree(g->state);
    dfree(g->opt_m);
    dfree(g->opt_v);
    dfree(g->x_cast);
    dfree(g->xcat);
    dfree(g->coords);
    if (g->h_coords)
        cudaFreeHost(g->h_coords);
    free(g->coord_scratch);
    free(g->coord_work);
    for (int s = 0; s < NSLOTS; s++) {
        inslot *sl = &g->in[s];
        dfree(sl->x);
        dfree(sl->label);
        dfree(sl->weight);
        if (sl->h_lw)
            cudaFreeHost(sl->h_lw);
        if (sl->copied)
            cudaEventDestroy(sl->copied);
        if (sl->used)
            cudaEventDestroy(sl->used);
    }
    dfree(g->g[0]);
    dfree(g->g[1]);
    dfree(g->bias_part);
    dfree(g->dlogits);
    dfree(g->loss_terms);
    dfree(g->l2_partial);
    dfree(g->flag);
    dfree(g->clip_off);
    dfree(g->clip_len);
    if (g->h_x)
        cudaFreeHost(g->h_x);
    if (g->h_small)
        cudaFreeHost(g->h_small);
    if (g->h_dbl)
        cudaFreeHost(g->h_dbl);
    if (g->h_flag)
        cudaFreeHost(g->h_flag);
    trn_dnn_free(g->dnn);
    if (g->blas)
        cublasDestroy(g->blas);
    if (g->copy_stream)
        cudaStreamDestroy(g->copy_stream);
    if (g->stream)
        cudaStreamDestroy(g->stream);
    free(g);
}

static tnrec_err dalloc(void **p, size_t bytes, const char *what)
{
    char buf[160];
    snprintf(buf, sizeof buf, "cudaMalloc of %zu bytes for %s", bytes, what);
    return cu(cudaMalloc(p, bytes ? bytes : 1), buf);
}

/* Buffers, layer by layer. */
static tnrec_err alloc_layers(tnrec_gpu_net *g)
{
    tnrec_model *m = g->m;
    size_t es = trn_dt_size(g->dt), B = (size_t)g->max_batch;
    /* Pad the input channels for tensor cores when the first layer with
     * parameters is a conv reached through pooling only. */
    int pad_ok = g->dt != TRN_DT_F32;
    for (int i = 0; i < g->nl && pad_ok; i++) {
        int k = m->layers[i].kind;
        if (k == TRN_CONV)
            break;
        if (k != TRN_POOL)
            pad_ok = 0;
    }
    g->in_cpad = pad_ok ? (m->in.channels + 7) / 8 * 8 : m->in.channels;
    size_t max_elems = (size_t)m->in.frames * m->in.height * m->in.width * g->in_cpad;
    int cpad = g->in_cpad, is_float = 0, train = !g->opt.inference_only;
    size_t bias_scratch = 1, xcat_elems = 0;
    for (int i = 0; i < g->nl; i++) {
        const trn_layer *L = &m->layers[i];
        glayer *l = &g->L[i];
        if (L->kind == TRN_CONV) {
            l->ci_pad = cpad;
            size_t fl = (size_t)L->c * 27 * l->ci_pad * es;
            TRY(dalloc(&l->filt, fl, "a conv kernel"));
            if (train)
                TRY(dalloc(&l->dfilt, fl, "a conv kernel gradient"));
            if (trn_k_conv_bias_scratch(L->c) > bias_scratch)
                bias_scratch = trn_k_conv_bias_scratch(L->c);
            cpad = L->c;
        } else if (L->kind == TRN_CCONV || L->kind == TRN_CONV1) {
            /* Inference only: CoordConv2D reads its input and coordinates
             * from xcat, padded to 8 channels for tensor cores outside
             * float32; a 1x1 convolution reads its input as it is. */
            int taps = L->kind == TRN_CCONV ? 9 : 1;
            l->ci_pad = L->kind == TRN_CCONV ? (g->dt == TRN_DT_F32 ? L->in_c + TRN_NCOORD
                                                                     : (L->in_c + TRN_NCOORD + 7) / 8 * 8)
                                             : cpad;
            TRY(dalloc(&l->filt, (size_t)L->c * taps * l->ci_pad * es, "a conv kernel"));
            if (L->kind == TRN_CCONV && (size_t)L->d * L->h * L->w * l->ci_pad > xcat_elems)
                xcat_elems = (size_t)L->d * L->h * L->w * l->ci_pad;
            cpad = L->c;
        } else if (L->kind == TRN_BN && train) {
            TRY(dalloc((void **)&l->save_mean, (size_t)L->c * sizeof(float), "batch statistics"));
            TRY(dalloc((void **)&l->save_inv, (size_t)L->c * sizeof(float), "batch statistics"));
        } else if ((L->kind == TRN_SDROP || L->kind == TRN_DROP) && train) {
            TRY(dalloc((void **)&l->mask, B * (size_t)L->c * sizeof(float), "dropout masks"));
        } else if (L->kind == TRN_GPOOL) {
            is_float = 1;
        } else if (L->kind == TRN_DENSE) {
            cpad = L->c;
        }
        l->cpad = cpad;
        l->is_float = is_float;
        size_t elems = (size_t)L->d * L->h * L->w * l->cpad;
        if (elems > max_elems)
            max_elems = elems;
        if (L->inplace && i > 0) {
            l->out = g->L[i - 1].out;
        } else {
            TRY(dalloc(&l->out, B * elems * (is_float ? sizeof(float) : es), "activations"));
            l->owned = 1;
        }
    }
    TRY(dalloc((void **)&g->bias_part, bias_scratch * sizeof(float), "conv bias gradient sums"));
    if (xcat_elems) {
        TRY(dalloc(&g->xcat, B * xcat_elems * es, "CoordConv2D inputs"));
        TRY(dalloc((void **)&g->coords, B * m->ncoords * sizeof(float), "CoordConv coordinates"));
        TRY(cu(cudaMallocHost((void **)&g->h_coords, B * m->ncoords * sizeof(float)), "cudaMallocHost (coordinates)"));
        g->coord_scratch = malloc((size_t)m->in.width * TRN_NCOORD * sizeof *g->coord_scratch);
        g->coord_work = malloc(m->ncoords * sizeof *g->coord_work);
        if (!g->coord_scratch || !g->coord_work)
            return tnrec__fail(TNREC_ENOMEM, "out of memory for CoordConv coordinates");
    }
    /* Gradients: large enough for any layer's input or output, in float
     * (none in an inference net). */
    if (train) {
        TRY(dalloc(&g->g[0], B * max_elems * sizeof(float), "gradients"));
        TRY(dalloc(&g->g[1], B * max_elems * sizeof(float), "gradients"));
    }
    return TNREC_OK;
}

static tnrec_err setup(tnrec_gpu_net *g)
{
    tnrec_model *m = g->m;
    size_t B = (size_t)g->max_batch, in_elems = (size_t)m->in.frames * m->in.height * m->in.width * m->in.channels;
    TRY(cu(cudaSetDevice(g->device), "cudaSetDevice"));
    TRY(cu(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking), "cudaStreamCreate"));
    TRY(cu(cudaStreamCreateWithFlags(&g->copy_stream, cudaStreamNonBlocking), "cudaStreamCreate"));
    for (int s = 0; s < NSLOTS; s++) {
        TRY(cu(cudaEventCreateWithFlags(&g->in[s].copied, cudaEventDisableTiming), "cudaEventCreate"));
        TRY(cu(cudaEventCreateWithFlags(&g->in[s].used, cudaEventDisableTiming), "cudaEventCreate"));
    }
    TRY(blas(cublasCreate(&g->blas), "cublasCreate"));
    TRY(blas(cublasSetStream(g->blas, g->stream), "cublasSetStream"));
    /* Plain float32 products: no TF32, whatever the precision (the dense
     * head is small). */
    TRY(blas(cublasSetMathMode(g->blas, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode"));
    TRY(trn_dnn_create(&g->dnn, g->stream, g->dt, g->opt.deterministic));
    if (!(g->L = calloc((size_t)g->nl, sizeof *g->L)))
        return tnrec__fail(TNREC_ENOMEM, "out of memory for the GPU layer table");
    TRY(alloc_layers(g));
    TRY(dalloc((void **)&g->params, m->nparams * sizeof(float), "weights"));
    TRY(dalloc((void **)&g->state, (m->nstate + 1) * sizeof(float), "BN statistics"));
    if (!g->opt.inference_only) {
        TRY(dalloc((void **)&g->grads, m->nparams * sizeof(float), "gradients"));
        TRY(dalloc((void **)&g->opt_m, m->nparams * sizeof(float), "Adam moments"));
        TRY(dalloc((void **)&g->opt_v, m->nparams * sizeof(float), "Adam moments"));
    }
    for (int s = 0; s < NSLOTS; s++) {
        inslot *sl = &g->in[s];
        TRY(dalloc((void **)&sl->x, B * in_elems * sizeof(float), "an input batch slot"));
        TRY(dalloc((void **)&sl->label, B * sizeof(float), "labels"));
        TRY(dalloc((void **)&sl->weight, B * sizeof(float), "sample weights"));
        TRY(cu(cudaMallocHost((void **)&sl->h_lw, 2 * B * sizeof(float)), "cudaMallocHost (labels and weights)"));
    }
    g->hx_slot = -1;
    const char *stage_env = getenv("TNREC_GPU_STAGE");
    g->stage_off = stage_env && strcmp(stage_env, "0") == 0;
    if (g->dt != TRN_DT_F32 || g->in_cpad != m->in.channels) {
        size_t pos = B * m->in.frames * m->in.height * m->in.width;
        TRY(dalloc(&g->x_cast, pos * g->in_cpad * trn_dt_size(g->dt), "the input batch"));
    }
    TRY(dalloc((void **)&g->dlogits, B * sizeof(float), "logit gradients"));
    TRY(dalloc((void **)&g->loss_terms, B * sizeof(double), "loss terms"));
    g->l2_total = 0;
    for (int i = 0; i < g->nl; i++)
        if (m->layers[i].l2 > 0)
            g->l2_total += trn_k_l2_blocks(m->layers[i].w_len);
    TRY(dalloc((void **)&g->l2_partial, ((size_t)g->l2_total + 1) * sizeof(double), "L2 sums"));
    TRY(dalloc((void **)&g->flag, sizeof(int), "a flag"));
    /* Tensors for norm clipping: each kernel, bias, gamma, beta. */
    size_t *off = malloc(2 * (size_t)g->nl * sizeof *off), *len = malloc(2 * (size_t)g->nl * sizeof *len);
    if (!off || !len) {
        free(off);
        free(len);
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    }
    g->nclip = 0;
    for (int i = 0; i < g->nl; i++) {
        const trn_layer *L = &m->layers[i];
        if (L->w_len) {
            off[g->nclip] = L->w_off;
            len[g->nclip++] = L->w_len;
        }
        if (L->b_len) {
            off[g->nclip] = L->b_off;
            len[g->nclip++] = L->b_len;
        }
    }
    tnrec_err err = dalloc((void **)&g->clip_off, ((size_t)g->nclip + 1) * sizeof(size_t), "clipping offsets");
    if (!err)
        err = dalloc((void **)&g->clip_len, ((size_t)g->nclip + 1) * sizeof(size_t), "clipping offsets");
    if (!err)
        err = cu(cudaMemcpy(g->clip_off, off, (size_t)g->nclip * sizeof(size_t), cudaMemcpyHostToDevice), "copy");
    if (!err)
        err = cu(cudaMemcpy(g->clip_len, len, (size_t)g->nclip * sizeof(size_t), cudaMemcpyHostToDevice), "copy");
    free(off);
    free(len);
    TRY(err);
    TRY(cu(cudaMallocHost((void **)&g->h_x, B * in_elems * sizeof(float)), "cudaMallocHost (input staging)"));
    TRY(cu(cudaMallocHost((void **)&g->h_small, B * sizeof(float)), "cudaMallocHost"));
    TRY(cu(cudaMallocHost((void **)&g->h_dbl, (B + (size_t)g->l2_total + 1) * sizeof(double)), "cudaMallocHost"));
    TRY(cu(cudaMallocHost((void **)&g->h_flag, sizeof(int)), "cudaMallocHost"));
    /* The plan for the largest batch sizes the one workspace. */
    g->nplans = 0;
    plan *p = &g->plans[0];
    err = plan_make(g, p, g->max_batch, WS_CAP);
    if (err) {
        plan_clear(g, p);
        return err;
    }
    g->nplans = 1;
    g->ws_size = 0;
    for (int i = 0; i < g->nl; i++)
        if (p->conv[i] && trn_conv_workspace(p->conv[i]) > g->ws_size)
            g->ws_size = trn_conv_workspace(p->conv[i]);
    TRY(dalloc(&g->ws, g->ws_size, "the cuDNN workspace"));
    TRY(tnrec_gpu_net_upload(g));
    struct cudaDeviceProp prop;
    TRY(cu(cudaGetDeviceProperties(&prop, g->device), "cudaGetDeviceProperties"));
    const char *algos = "";
    for (int i = 0; i < g->nl; i++)
        if (p->conv[i]) {
            algos = trn_conv_algos(p->conv[i]);
            break;
        }
    snprintf(g->desc, sizeof g->desc, "GPU %d: %s (sm_%d%d), %s, %s%s, first conv %s, workspace %.1f MiB", g->device,
             prop.name, prop.major, prop.minor, trn_dnn_version(), tnrec_precision_name(g->opt.precision),
             g->opt.deterministic ? " deterministic" : "", algos, (double)g->ws_size / 1048576.0);
    return TNREC_OK;
}

/* This rank's own part of trn_gpu_net_create_ranked: checks, device,
 * allocations and the first plan; no collective. */
static tnrec_err create_local(tnrec_gpu_net **out, tnrec_model *m, int max_batch, const tnrec_gpu_options *opt,
                              trn_allreduce *ar)
{
    *out = NULL;
    if (max_batch < 1)
        return tnrec__fail(TNREC_EINVAL, "batch size must be at least 1");
    tnrec_gpu_options o;
    if (opt)
        o = *opt;
    else
        tnrec_gpu_options_default(&o);
    /* Layers the GPU only runs forward (the TorNet baseline's) train on
     * the CPU: refused here, never approximated. */
    int cpu_only = o.inference_only ? -1 : trn_model_first_cpu_only_layer(m);
    if (cpu_only >= 0) {
        const trn_layer *L = &m->layers[cpu_only];
        return tnrec__fail(TNREC_EUNSUPPORTED, "model '%s': layer %d (%s%s) has no GPU training implementation\n"
                           "hint: train this model with --device cpu; eval and predict run it on the GPU "
                           "(docs/gpu.md lists the layers the GPU runs)",
                           m->spec, cpu_only, trn_layer_kind_name(L->kind),
                           L->kind == TRN_POOL ? ", 'same' padding" : "");
    }
    TRY(tnrec_gpu_check());
    if (o.precision == TNREC_PRECISION_FP16 && o.loss_scale != 0 && !(o.loss_scale >= 1.0 && isfinite(o.loss_scale)))
        return tnrec__fail(TNREC_EINVAL, "initial loss scale %g: must be at least 1 and finite (0: 65536)",
                           o.loss_scale);
    int count = tnrec_gpu_device_count();
    if (count < 1)
        return tnrec__fail(TNREC_ENOTFOUND, "no CUDA device visible\nhint: check nvidia-smi and CUDA_VISIBLE_DEVICES");
    int device = o.device >= 0 ? o.device : trn_allreduce_local_rank(ar) % count;
    if (device >= count)
        return tnrec__fail(TNREC_EINVAL, "CUDA device %d asked for, but %d visible\nhint: choose --gpu 0..%d", device,
                           count, count - 1);
    tnrec_gpu_net *g = calloc(1, sizeof *g);
    if (!g)
        return tnrec__fail(TNREC_ENOMEM, "out of memory for the GPU net");
    g->m = m;
    g->ar = ar;
    g->opt = o;
    g->dt = o.precision == TNREC_PRECISION_FP16 ? TRN_DT_F16
            : o.precision == TNREC_PRECISION_BF16 ? TRN_DT_BF16 : TRN_DT_F32;
    g->loss_scale = o.precision == TNREC_PRECISION_FP16 ? (o.loss_scale > 0 ? o.loss_scale : 65536.0) : 1.0;
    g->max_batch = max_batch;
    g->device = device;
    g->nl = m->nlayers;
    g->first_param = 0;
    while (g->first_param < g->nl - 1 && m->layers[g->first_param].w_len == 0)
        g->first_param++;
    tnrec_err err = setup(g);
    if (err) {
        tnrec_gpu_net_free(g);
        return err;
    }
    *out = g;
    return TNREC_OK;
}

tnrec_err trn_gpu_net_create_ranked(tnrec_gpu_net **out, tnrec_model *m, int max_batch,
                                       const tnrec_gpu_options *opt, trn_allreduce *ar)
{
    *out = NULL;
    tnrec_gpu_net *g = NULL;
    /* The NCCL communicator is started by the step backend afterwards
     * (train/backend_cuda.c), which also agrees the ranks' status first. */
    tnrec_err err = create_local(&g, m, max_batch, opt, ar);
    if (err) {
        tnrec_gpu_net_free(g);
        return err;
    }
    *out = g;
    return TNREC_OK;
}

tnrec_err tnrec_gpu_net_create(tnrec_gpu_net **out, tnrec_model *m, int max_batch, const tnrec_gpu_options *opt)
{
    return trn_gpu_net_create_ranked(out, m, max_batch, opt, NULL);
}

const char *tnrec_gpu_net_describe(const tnrec_gpu_net *g) { return g->desc; }

/* ---- host <-> device ---- */

/* Waits for the compute stream; with NCCL collectives possibly on it,
 * through trn_nccl_wait, so a failed peer becomes an error, not a
 * hang. */
static tnrec_err wait_stream(tnrec_gpu_net *g, const char *what)
{
    trn_nccl *nc = g->ar && trn_allreduce_size(g->ar) > 1 ? (trn_nccl *)trn_allreduce_collective(g->ar) : NULL;
    if (nc)
        return trn_nccl_wait(nc, g->stream, what);
    return cu(cudaStreamSynchronize(g->stream), what);
}

tnrec_err tnrec_gpu_net_upload(tnrec_gpu_net *g)
{
    tnrec_model *m = g->m;
    TRY(cu(cudaSetDevice(g->device), "cudaSetDevice"));
    /* The host may have restored the optimiser too (a checkpoint into the
     * same tnrec_optim): the next optim step uploads its moments again. */
    g->optim = NULL;
    TRY(cu(cudaMemcpyAsync(g->params, m->params, m->nparams * sizeof(float), cudaMemcpyHostToDevice, g->stream),
           "upload of the weights"));
    if (m->nstate)
        TRY(cu(cudaMemcpyAsync(g->state, m->state, m->nstate * sizeof(float), cudaMemcpyHostToDevice, g->stream),
               "upload of the BN statistics"));
    TRY(cu(cudaStreamSynchronize(g->stream), "upload"));
    g->weights_dirty = 1;
    return TNREC_OK;
}

tnrec_err tnrec_gpu_net_download(tnrec_gpu_net *g)
{
    tnrec_model *m = g->m;
    TRY(cu(cudaSetDevice(g->device), "cudaSetDevice"));
    TRY(cu(cudaMemcpyAsync(m->params, g->params, m->nparams * sizeof(float), cudaMemcpyDeviceToHost, g->stream),
           "download of the weights"));
    if (g->grads)
        TRY(cu(cudaMemcpyAsync(m->grads, g->grads, m->nparams * sizeof(float), cudaMemcpyDeviceToHost, g->stream),
               "download of the gradient"));
    if (m->nstate)
        TRY(cu(cudaMemcpyAsync(m->state, g->state, m->nstate * sizeof(float), cudaMemcpyDeviceToHost, g->stream),
               "download of the BN statistics"));
    if (g->optim) {
        TRY(cu(cudaMemcpyAsync(g->optim->m, g->opt_m, m->nparams * sizeof(float), cudaMemcpyDeviceToHost, g->stream),
               "download of the Adam moments"));
        TRY(cu(cudaMemcpyAsync(g->optim->v, g->opt_v, m->nparams * sizeof(float), cudaMemcpyDeviceToHost, g->stream),
               "download of the Adam moments"));
    }
    return wait_stream(g, "download");
}

/* Sums a device array over ranks: NCCL, or through host memory (MPI). */
static tnrec_err sum_over_ranks(tnrec_gpu_net *g, float *dev, float *host, size_t n)
{
    if (!g->ar || trn_allreduce_size(g->ar) < 2 || n == 0)
        return TNREC_OK;
    trn_nccl *nc = (trn_nccl *)trn_allreduce_collective(g->ar);
    if (nc)
        return trn_nccl_sum_device(nc, dev, n, g->stream);
    TRY(cu(cudaMemcpyAsync(host, dev, n * sizeof(float), cudaMemcpyDeviceToHost, g->stream), "copy for the all-reduce"));
    TRY(cu(cudaStreamSynchronize(g->stream), "copy for the all-reduce"));
    TRY(trn_allreduce_sum(g->ar, host, n));
    return cu(cudaMemcpyAsync(dev, host, n * sizeof(float), cudaMemcpyHostToDevice, g->stream), "copy after the all-reduce");
}

tnrec_err trn_gpu_net_sync(tnrec_gpu_net *g)
{
    tnrec_model *m = g->m;
    TRY(cu(cudaSetDevice(g->device), "cudaSetDevice"));
    int world = g->ar ? trn_allreduce_size(g->ar) : 1;
    if (world > 1 && m->nstate) {
        TRY(sum_over_ranks(g, g->state, m->state, m->nstate));
        TRY(kr(trn_k_scale(g->state, m->nstate, 1.0f / (float)world, g->stream), "BN statistics average"));
    }
    return tnrec_gpu_net_download(g);
}

/* ---- forward ---- */

static tnrec_err pack_weights(tnrec_gpu_net *g)
{
    tnrec_model *m = g->m;
    for (int i = 0; i < g->nl; i++) {
        const trn_layer *L = &m->layers[i];
        int taps = L->kind == TRN_CONV ? 27 : L->kind == TRN_CCONV ? 9 : L->kind == TRN_CONV1 ? 1 : 0;
        if (!taps)
            continue;
        glayer *l = &g->L[i];
        int ci = L->kind == TRN_CCONV ? L->in_c + TRN_NCOORD : L->in_c;
        TRY(kr(trn_k_pack_filter(l->filt, g->params + L->w_off, taps, ci, l->ci_pad, L->c, g->dt, g->stream),
               "conv kernel packing"));
    }
    g->weights_dirty = 0;
    return TNREC_OK;
}

tnrec_err trn_gpu_net_pin(tnrec_gpu_net *g, const void *p, size_t bytes)
{
    for (int i = 0; i < g->npins; i++)
        if (g->pins[i].p == p && g->pins[i].bytes >= bytes)
            return TNREC_OK;
    if (g->npins == PIN_MAX || bytes == 0)
        return TNREC_OK;
    TRY(cu(cudaSetDevice(g->device), "cudaSetDevice"));
    if (cudaHostRegister((void *)p, bytes, cudaHostRegisterDefault) != cudaSuccess) {
        /* E.g. a page shared with a range already registered: the
         * staging buffer still works. Forget the error. */
        cudaGetLastError();
        return TNREC_OK;
    }
    g->pins[g->npins].p = p;
    g->pins[g->npins].bytes = bytes;
    g->npins++;
    return TNREC_OK;
}

static int is_pinned(const tnrec_gpu_net *g, const void *p, size_t bytes)
{
    const char *c = p;
    for (int i = 0; i < g->npins; i++)
        if (c >= g->pins[i].p && c + bytes <= g->pins[i].p + g->pins[i].bytes)
            return 1;
    return 0;
}

static size_t input_bytes(const tnrec_gpu_net *g, int n)
{
    const tnrec_model *m = g->m;
    return (size_t)n * m->in.frames * m->in.height * m->in.width * m->in.channels * sizeof(float);
}

/* Copies a batch into slot s on the copy stream, after the compute
 * stream's last use of the slot, and records the slot's `copied` event.
 * The input comes straight from registered host memory, else through the
 * pinned buffer h_x; labels and weights (either may be NULL) through the
 * slot's pinned buffer, so only the input must stay put until the copy
 * is done. The caller marks the slot unstaged first. */
static tnrec_err copy_in(tnrec_gpu_net *g, int s, const float *x, const float *label, const float *weight, int n)
{
    inslot *sl = &g->in[s];
    size_t bytes = input_bytes(g, n), nb = (size_t)n * sizeof(float);
    /* The slot's pinned label buffer may still feed its previous copy
     * (an evicted staged batch); a completed event returns at once. */
    TRY(cu(cudaEventSynchronize(sl->copied), "wait for an input slot"));
    const float *src = x;
    if (!is_pinned(g, x, bytes)) {
        if (g->hx_slot >= 0)
            TRY(cu(cudaEventSynchronize(g->in[g->hx_slot].copied), "wait for the input staging buffer"));
        memcpy(g->h_x, x, bytes);
        src = g->h_x;
        g->hx_slot = s;
    }
    TRY(cu(cudaStreamWaitEvent(g->copy_stream, sl->used, 0), "cudaStreamWaitEvent"));
    TRY(cu(cudaMemcpyAsync(sl->x, src, bytes, cudaMemcpyHostToDevice, g->copy_stream), "input copy"));
    if (label) {
        memcpy(sl->h_lw, label, nb);
        TRY(cu(cudaMemcpyAsync(sl->label, sl->h_lw, nb, cudaMemcpyHostToDevice, g->copy_stream), "label copy"));
    }
    if (weight) {
        memcpy(sl->h_lw + g->max_batch, weight, nb);
        TRY(cu(cudaMemcpyAsync(sl->weight, sl->h_lw + g->max_batch, nb, cudaMemcpyHostToDevice, g->copy_stream),
               "weight copy"));
    }
    return cu(cudaEventRecord(sl->copied, g->copy_stream), "cudaEventRecord");
}

/* The slot holding batch (x, n) staged, or -1; with labels_too, the
 * labels and weights must be the same host arrays as well. */
static int find_staged(const tnrec_gpu_net *g, const float *x, const float *label, const float *weight, int n,
                       int labels_too)
{
    for (int s = 0; s < NSLOTS; s++) {
        const inslot *sl = &g->in[s];
        if (sl->staged && sl->key_x == x && sl->key_n == n &&
            (!labels_too || (sl->key_label == label && sl->key_weight == weight)))
            return s;
    }
    return -1;
}

static int free_slot(const tnrec_gpu_net *g)
{
    for (int s = 0; s < NSLOTS; s++)
        if (!g->in[s].staged)
            return s;
    return -1;
}

/* Puts this step's batch in a slot: the slot that has it staged, else a
 * copy into a slot without a staged batch (with both staged, the older
 * staged batch gives way and its step will copy again). The compute
 * stream waits for the copy; x_in, cur_label and cur_weight point at the
 * slot (x_in at the cast copy in float16/bfloat16). *out_slot: the slot,
 * for input_done. */
static tnrec_err take_input(tnrec_gpu_net *g, const float *x, const float *label, const float *weight, int n,
                            int training, int *out_slot)
{
    tnrec_model *m = g->m;
    int s = find_staged(g, x, label, weight, n, training);
    /* Staged before the previous step or prediction began: its copy could
     * overlap that one's work. */
    if (s >= 0 && g->in[s].staged_at < g->takes)
        g->staged_steps++;
    g->takes++;
    if (s < 0) {
        s = free_slot(g);
        if (s < 0) {
            s = 0;
            for (int i = 1; i < NSLOTS; i++)
                if (g->in[i].age < g->in[s].age)
                    s = i;
        }
        g->in[s].staged = 0;
        TRY(copy_in(g, s, x, training ? label : NULL, training ? weight : NULL, n));
    }
    inslot *sl = &g->in[s];
    sl->staged = 0; /* consumed: the next copy into it waits for this step */
    *out_slot = s;
    TRY(cu(cudaStreamWaitEvent(g->stream, sl->copied, 0), "cudaStreamWaitEvent"));
    g->cur_label = sl->label;
    g->cur_weight = weight ? sl->weight : NULL;
    if (g->x_cast) {
        size_t pos = (size_t)n * m->in.frames * m->in.height * m->in.width;
        TRY(kr(trn_k_cast_input(g->x_cast, sl->x, pos, m->in.channels, g->in_cpad, g->dt, g->stream),
               "input cast"));
        g->x_in = g->x_cast;
    } else {
        g->x_in = sl->x;
    }
    return TNREC_OK;
}

/* After the last kernel of a step that reads slot s is on the compute
 * stream: later copies into the slot wait for it. err: the step's status,
 * returned unless it was fine and recording failed. */
static tnrec_err input_done(tnrec_gpu_net *g, int s, tnrec_err err)
{
    tnrec_err e = cu(cudaEventRecord(g->in[s].used, g->stream), "cudaEventRecord");
    return err ? err : e;
}

tnrec_err trn_gpu_net_stage(tnrec_gpu_net *g, const float *x, const float *label, const float *weight, int n)
{
    if (n < 0 || n > g->max_batch)
        return tnrec__fail(TNREC_EINVAL, "batch of %d staged for a GPU workspace of %d", n, g->max_batch);
    if (n == 0 || !x || g->stage_off || find_staged(g, x, label, weight, n, 1) >= 0)
        return TNREC_OK;
    /* Only registered memory is copied asynchronously; anything else is
     * left to its step (which copies it through h_x). */
    if (!is_pinned(g, x, input_bytes(g, n)))
        return TNREC_OK;
    int s = free_slot(g);
    if (s < 0)
        return TNREC_OK; /* both slots hold batches not yet used: keep them */
    TRY(cu(cudaSetDevice(g->device), "cudaSetDevice"));
    inslot *sl = &g->in[s];
    TRY(copy_in(g, s, x, label, weight, n));
    sl->key_x = x;
    sl->key_label = label;
    sl->key_weight = weight;
    sl->key_n = n;
    sl->age = ++g->stage_clock;
    sl->staged_at = g->takes;
    sl->staged = 1;
    return TNREC_OK;
}

tnrec_err trn_gpu_net_unstage(tnrec_gpu_net *g)
{
    for (int s = 0; s < NSLOTS; s++)
        g->in[s].staged = 0;
    TRY(cu(cudaSetDevice(g->device), "cudaSetDevice"));
    return cu(cudaStreamSynchronize(g->copy_stream), "input copies");
}

static int layer_dt(const tnrec_gpu_net *g, int i) { return g->L[i].is_float ? TRN_DT_F32 : g->dt; }

/* A 1x1 convolution (inference) as one product on cuBLAS, for any channel
 * count (the heatmap's single channel included), products of dt summed in
 * float: row-major y[p][co] = x[p][0..ci) K[co][ci]^T, i.e. column-major
 * y^T = K^T' x^T with the packed kernel [co][ci_pad] read transposed. */
static tnrec_err conv1x1_forward(tnrec_gpu_net *g, const trn_layer *L, const glayer *l, const void *in, int in_stride,
                                 size_t positions)
{
    if (positions > (size_t)INT32_MAX)
        return tnrec__fail(TNREC_EINVAL, "1x1 convolution over %zu positions: too many for one product", positions);
    cudaDataType_t t = g->dt == TRN_DT_F16 ? CUDA_R_16F : g->dt == TRN_DT_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    const float one = 1.0f, zero = 0.0f;
    return blas(cublasGemmEx(g->blas, CUBLAS_OP_T, CUBLAS_OP_N, L->c, (int)positions, L->in_c, &one, l->filt, t,
                             l->ci_pad, in, t, in_stride, &zero, l->out, t, L->c, CUBLAS_COMPUTE_32F,
                             CUBLAS_GEMM_DEFAULT),
                "1x1 convolution");
}

static tnrec_err forward(tnrec_gpu_net *g, plan *p, int n, int global_first, int training, uint64_t seed)
{
    tnrec_model *m = g->m;
    if (g->weights_dirty)
        TRY(pack_weights(g));
    for (int i = 0; i < g->nl; i++) {
        const trn_layer *L = &m->layers[i];
        glayer *l = &g->L[i];
        const void *in = i ? g->L[i - 1].out : g->x_in;
        int in_c = i ? g->L[i - 1].cpad : g->in_cpad;
        size_t s = (size_t)L->d * L->h * L->w, outn = (size_t)n * s * l->cpad;
        const float one = 1.0f, zero = 0.0f;
        switch (L->kind) {
        case TRN_CONV:
            TRY(trn_conv_forward(p->conv[i], l->out, in, l->filt, g->ws, g->ws_size));
            /* The float32 master bias, added in float (any dt). */
            TRY(kr(trn_k_conv_bias_add(l->out, g->params + L->b_off, (size_t)n * s, L->c, g->dt, g->stream),
                   "Conv3D bias"));
            break;
        case TRN_BN:
            if (training) {
                TRY(trn_bn_forward_train(p->bn[i], l->out, in, g->params + L->w_off, g->params + L->b_off,
                                            l->save_mean, l->save_inv, TRN_BN_EPSILON));
                TRY(kr(trn_k_bn_moving(g->state + L->s_off, g->state + L->s_off + L->c, l->save_mean, l->save_inv,
                                          L->c, TRN_BN_MOMENTUM, TRN_BN_EPSILON, g->stream),
                       "BN moving statistics"));
            } else {
                TRY(trn_bn_forward_infer(p->bn[i], l->out, in, g->params + L->w_off, g->params + L->b_off,
                                            g->state + L->s_off, g->state + L->s_off + L->c, TRN_BN_EPSILON));
            }
            break;
        case TRN_LRELU:
            TRY(kr(trn_k_lrelu_fwd(l->out, in, outn, (float)L->alpha, layer_dt(g, i), g->stream), "LeakyReLU"));
            break;
        case TRN_POOL:
            if (L->same)
                TRY(kr(trn_k_maxpool_same_fwd(l->out, in, n, L->in_d, L->in_h, L->in_w, l->cpad, L->pool[0],
                                              L->pool[1], L->pool[2], g->dt, g->stream),
                       "MaxPooling 'same'"));
            else
                TRY(kr(trn_k_maxpool_fwd(l->out, in, n, L->in_d, L->in_h, L->in_w, l->cpad, L->pool[0], L->pool[1],
                                            L->pool[2], g->dt, g->stream),
                       "MaxPooling3D"));
            break;
        case TRN_CCONV:
            TRY(kr(trn_k_coord_concat(g->xcat, in, g->coords, n, (size_t)L->d * L->h, L->w, L->in_c, in_c, l->ci_pad,
                                      m->ncoords, L->c_off, g->dt, g->stream),
                   "CoordConv2D coordinates"));
            TRY(trn_conv_forward(p->conv[i], l->out, g->xcat, l->filt, g->ws, g->ws_size));
            TRY(kr(trn_k_conv_bias_add(l->out, g->params + L->b_off, (size_t)n * s, L->c, g->dt, g->stream),
                   "CoordConv2D bias"));
            break;
        case TRN_CONV1:
            TRY(conv1x1_forward(g, L, l, in, in_c, (size_t)n * s));
            TRY(kr(trn_k_conv_bias_add(l->out, g->params + L->b_off, (size_t)n * s, L->c, g->dt, g->stream),
                   "1x1 convolution bias"));
            break;
        case TRN_RELU:
            TRY(kr(trn_k_lrelu_fwd(l->out, in, outn, 0.0f, layer_dt(g, i), g->stream), "ReLU"));
            break;
        case TRN_EDROP: /* inference only: the identity */
            if (l->out != in)
                TRY(cu(cudaMemcpyAsync(l->out, in, outn * trn_dt_size(layer_dt(g, i)), cudaMemcpyDeviceToDevice,
                                       g->stream),
                       "dropout copy"));
            break;
        case TRN_SDROP:
        case TRN_DROP:
            if (training && L->rate > 0) {
                TRY(kr(trn_k_dropout_mask(l->mask, (size_t)n * L->c, L->rate, seed, (uint64_t)i,
                                             (uint64_t)global_first * L->c, g->stream),
                       "dropout mask"));
                TRY(kr(trn_k_channel_scale(l->out, in, l->mask, n, s, l->cpad, layer_dt(g, i), g->stream),
                       "dropout"));
            } else if (l->out != in) {
                size_t es = l->is_float ? sizeof(float) : trn_dt_size(g->dt);
                TRY(cu(cudaMemcpyAsync(l->out, in, outn * es, cudaMemcpyDeviceToDevice, g->stream), "dropout copy"));
            }
            break;
        case TRN_GPOOL:
            TRY(kr(trn_k_gmax_fwd(l->out, in, n, (size_t)L->in_d * L->in_h * L->in_w, in_c, g->dt, g->stream),
                   "GlobalMaxPooling3D"));
            break;
        case TRN_DENSE:
            /* Row-major y[n][out] = x[n][in] W[in][out]: column-major y^T = W^T x^T. */
            TRY(blas(cublasSgemm(g->blas, CUBLAS_OP_N, CUBLAS_OP_N, L->c, n, L->in_c, &one, g->params + L->w_off, L->c,
                                 (const float *)in, L->in_c, &zero, (float *)l->out, L->c),
                     "Dense forward"));
            TRY(kr(trn_k_bias_add(l->out, g->params + L->b_off, n, L->c, g->stream), "Dense bias"));
            break;
        }
    }
    return TNREC_OK;
}

/* ---- training ---- */

static tnrec_err backward(tnrec_gpu_net *g, plan *p, int n)
{
    tnrec_model *m = g->m;
    int cur = 0;
    const void *gr = g->dlogits;
    const float one = 1.0f, zero = 0.0f;
    for (int i = g->nl - 1; i >= g->first_param; i--) {
        const trn_layer *L = &m->layers[i];
        glayer *l = &g->L[i];
        const void *in = i ? g->L[i - 1].out : g->x_in;
        int in_c = i ? g->L[i - 1].cpad : g->in_cpad;
        size_t s = (size_t)L->d * L->h * L->w, outn = (size_t)n * s * l->cpad;
        void *dx = i > g->first_param ? g->g[cur] : NULL;
        float *gw = g->grads + L->w_off, *gb = g->grads + L->b_off;
        switch (L->kind) {
        case TRN_CONV:
            TRY(trn_conv_backward(p->conv[i], dx, l->dfilt, in, l->filt, gr, g->ws, g->ws_size));
            TRY(kr(trn_k_unpack_filter(gw, l->dfilt, L->in_c, l->ci_pad, L->c, g->dt, g->stream), "kernel gradient"));
            /* Summed in float straight into the float32 gradient. */
            TRY(kr(trn_k_conv_bias_grad(gb, g->bias_part, gr, (size_t)n * s, L->c, g->dt, g->stream),
                   "Conv3D bias gradient"));
            break;
        case TRN_BN:
            /* The conv before it always needs dx. */
            if (!dx)
                dx = g->g[cur];
            TRY(trn_bn_backward(p->bn[i], dx, gw, gb, in, gr, g->params + L->w_off, l->save_mean, l->save_inv,
                                   TRN_BN_EPSILON));
            break;
        case TRN_LRELU:
            if (dx)
                TRY(kr(trn_k_lrelu_bwd(dx, l->out, gr, outn, (float)L->alpha, layer_dt(g, i), g->stream),
                       "LeakyReLU backward"));
            break;
        case TRN_POOL:
            if (dx)
                TRY(kr(trn_k_maxpool_bwd(dx, in, gr, n, L->in_d, L->in_h, L->in_w, l->cpad, L->pool[0], L->pool[1],
                                            L->pool[2], g->dt, g->stream),
                       "MaxPooling3D backward"));
            break;
        case TRN_SDROP:
        case TRN_DROP:
            if (dx) {
                if (L->rate > 0)
                    TRY(kr(trn_k_channel_scale(dx, gr, l->mask, n, s, l->cpad, layer_dt(g, i), g->stream),
                           "dropout backward"));
                else
                    TRY(cu(cudaMemcpyAsync(dx, gr, outn * (l->is_float ? sizeof(float) : trn_dt_size(g->dt)),
                                           cudaMemcpyDeviceToDevice, g->stream),
                           "dropout backward"));
            }
            break;
        case TRN_GPOOL:
            if (dx)
                TRY(kr(trn_k_gmax_bwd(dx, in, gr, n, (size_t)L->in_d * L->in_h * L->in_w, in_c, g->dt, g->stream),
                       "GlobalMaxPooling3D backward"));
            break;
        case TRN_DENSE:
            /* dW^T (out x in) = dy^T x; db = column sums; dx^T = W dy^T. */
            TRY(blas(cublasSgemm(g->blas, CUBLAS_OP_N, CUBLAS_OP_T, L->c, L->in_c, n, &one, (const float *)gr, L->c,
                                 (const float *)in, L->in_c, &zero, gw, L->c),
                     "Dense weight gradient"));
            TRY(kr(trn_k_bias_grad(gb, gr, n, L->c, g->stream), "Dense bias gradient"));
            if (dx)
                TRY(blas(cublasSgemm(g->blas, CUBLAS_OP_T, CUBLAS_OP_N, L->in_c, n, L->c, &one, g->params + L->w_off,
                                     L->c, (const float *)gr, L->c, &zero, (float *)dx, L->in_c),
                         "Dense input gradient"));
            break;
        }
        if (dx) {
            gr = dx;
            cur ^= 1;
        }
    }
    return TNREC_OK;
}

/* Forward, loss and backward of this rank's n > 0 samples. */
static tnrec_err train_local(tnrec_gpu_net *g, const float *x, const float *label, const float *weight, int n,
                             int global_n, int global_first, uint64_t dropout_seed)
{
    plan *p = NULL;
    int s = 0;
    TRY(plan_get(g, n, &p));
    TRY(take_input(g, x, label, weight, n, 1, &s));
    tnrec_err err = forward(g, p, n, global_first, 1, dropout_seed);
    if (!err)
        err = kr(trn_k_bce(g->loss_terms, g->dlogits, g->L[g->nl - 1].out, g->cur_label, g->cur_weight, n,
                              (double)global_n, (float)g->loss_scale, g->stream),
                 "loss");
    if (!err)
        err = backward(g, p, n);
    return input_done(g, s, err);
}

tnrec_err trn_gpu_net_train_step(tnrec_gpu_net *g, const float *x, const float *label, const float *weight,
                                    int n, int global_n, int global_first, uint64_t dropout_seed, float *logits,
                                    double *out_loss)
{
    tnrec_model *m = g->m;
    if (g->opt.inference_only)
        return tnrec__fail(TNREC_EINVAL, "this GPU net was made for inference only (tnrec_gpu_options.inference_only)");
    if (n < 0 || n > g->max_batch || global_n < 1 || global_n < n)
        return tnrec__fail(TNREC_EINVAL, "batch of %d (global %d) does not fit a GPU workspace of %d", n, global_n,
                           g->max_batch);
    TRY(cu(cudaSetDevice(g->device), "cudaSetDevice"));
    const float *z = g->L[g->nl - 1].out;
    if (n == 0) {
        /* A rank without samples in a small last batch still joins the sums. */
        TRY(cu(cudaMemsetAsync(g->grads, 0, m->nparams * sizeof(float), g->stream), "cudaMemset"));
    } else {
        TRY(train_local(g, x, label, weight, n, global_n, global_first, dropout_seed));
    }
    if (g->loss_scale != 1.0)
        TRY(kr(trn_k_scale(g->grads, m->nparams, (float)(1.0 / g->loss_scale), g->stream), "gradient unscaling"));
    TRY(sum_over_ranks(g, g->grads, m->grads, m->nparams));
    /* L2 after the sum, as the CPU path: every rank adds the same term once. */
    int pb = 0;
    for (int i = 0; i < g->nl; i++) {
        const trn_layer *L = &m->layers[i];
        if (L->l2 <= 0)
            continue;
        TRY(kr(trn_k_l2(g->grads + L->w_off, g->params + L->w_off, L->w_len, (float)L->l2, g->l2_partial + pb,
                           g->stream),
               "L2 penalty"));
        pb += trn_k_l2_blocks(L->w_len);
    }
    double *h_terms = g->h_dbl, *h_l2 = g->h_dbl + g->max_batch;
    float *h_logits = g->h_small;
    TRY(cu(cudaMemcpyAsync(h_terms, g->loss_terms, (size_t)n * sizeof(double), cudaMemcpyDeviceToHost, g->stream),
           "loss copy"));
    if (pb)
        TRY(cu(cudaMemcpyAsync(h_l2, g->l2_partial, (size_t)pb * sizeof(double), cudaMemcpyDeviceToHost, g->stream),
               "L2 copy"));
    TRY(cu(cudaMemcpyAsync(h_logits, z, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost, g->stream), "logit copy"));
    TRY(wait_stream(g, "training step"));
    double loss = 0;
    for (int i = 0; i < n; i++)
        loss += h_terms[i];
    loss /= (double)global_n;
    if (g->ar)
        TRY(trn_allreduce_sum_double(g->ar, &loss, 1));
    pb = 0;
    for (int i = 0; i < g->nl; i++) {
        const trn_layer *L = &m->layers[i];
        if (L->l2 <= 0)
            continue;
        int nb = trn_k_l2_blocks(L->w_len);
        double s = 0;
        for (int b = 0; b < nb; b++)
            s += h_l2[pb + b];
        loss += L->l2 * s;
        pb += nb;
    }
    if (logits)
        memcpy(logits, h_logits, (size_t)n * sizeof(float));
    *out_loss = loss;
    return TNREC_OK;
}

tnrec_err tnrec_gpu_net_train_step(tnrec_gpu_net *g, const float *x, const float *label, const float *weight, int n,
                                   uint64_t dropout_seed, float *logits, double *out_loss)
{
    return trn_gpu_net_train_step(g, x, label, weight, n, n, 0, dropout_seed, logits, out_loss);
}

/* Each sample's CoordConv coordinates (host, as network.c's) onto the
 * device, queued on the compute stream: the pinned buffer is reused only
 * after the prediction's synchronisation. */
static tnrec_err upload_coords(tnrec_gpu_net *g, const float *range_limits, int n)
{
    const tnrec_model *m = g->m;
    size_t nc = m->ncoords;
    for (int s = 0; s < n; s++) {
        const double *src = m->coords;
        if (range_limits) {
            const float *lim = range_limits + 2 * (size_t)s;
            if (!trn_coords_window_ok(lim))
                return tnrec__fail(TNREC_EINVAL, "sample %d of the batch has range limits [%g, %g] m, which are no "
                                   "range window", s, (double)lim[0], (double)lim[1]);
            trn_model_coords(m, lim, g->coord_scratch, g->coord_work);
            src = g->coord_work;
        }
        for (size_t j = 0; j < nc; j++)
            g->h_coords[(size_t)s * nc + j] = (float)src[j];
    }
    return cu(cudaMemcpyAsync(g->coords, g->h_coords, (size_t)n * nc * sizeof(float), cudaMemcpyHostToDevice,
                              g->stream),
              "coordinate copy");
}

tnrec_err tnrec_gpu_net_predict_at(tnrec_gpu_net *g, const float *x, const float *range_limits, int n, float *logits)
{
    if (n < 0 || n > g->max_batch)
        return tnrec__fail(TNREC_EINVAL, "batch of %d does not fit a GPU workspace of %d", n, g->max_batch);
    if (n == 0)
        return TNREC_OK;
    TRY(cu(cudaSetDevice(g->device), "cudaSetDevice"));
    plan *p = NULL;
    int s = 0;
    TRY(plan_get(g, n, &p));
    if (g->coords)
        TRY(upload_coords(g, range_limits, n));
    TRY(take_input(g, x, NULL, NULL, n, 0, &s));
    TRY(input_done(g, s, forward(g, p, n, 0, 0, 0)));
    float *h_logits = g->h_small;
    TRY(cu(cudaMemcpyAsync(h_logits, g->L[g->nl - 1].out, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost,
                           g->stream),
           "logit copy"));
    TRY(cu(cudaStreamSynchronize(g->stream), "inference"));
    memcpy(logits, h_logits, (size_t)n * sizeof(float));
    return TNREC_OK;
}

tnrec_err tnrec_gpu_net_predict(tnrec_gpu_net *g, const float *x, int n, float *logits)
{
    return tnrec_gpu_net_predict_at(g, x, NULL, n, logits);
}

tnrec_err tnrec_gpu_net_optim_step(tnrec_gpu_net *g, tnrec_optim *o, double lr, int *out_applied)
{
    tnrec_model *m = g->m;
    if (out_applied)
        *out_applied = 0;
    if (g->opt.inference_only)
        return tnrec__fail(TNREC_EINVAL, "this GPU net was made for inference only (tnrec_gpu_options.inference_only)");
    if (o->n != m->nparams)
        return tnrec__fail(TNREC_EINVAL, "optimizer made for %zu parameters used on a model with %zu", o->n, m->nparams);
    if (!(lr >= 0) || !isfinite(lr))
        return tnrec__fail(TNREC_EINVAL, "learning rate %g is not a finite number >= 0", lr);
    TRY(cu(cudaSetDevice(g->device), "cudaSetDevice"));
    if (g->optim != o) {
        TRY(cu(cudaMemcpyAsync(g->opt_m, o->m, o->n * sizeof(float), cudaMemcpyHostToDevice, g->stream), "Adam upload"));
        TRY(cu(cudaMemcpyAsync(g->opt_v, o->v, o->n * sizeof(float), cudaMemcpyHostToDevice, g->stream), "Adam upload"));
        g->optim = o;
    }
    TRY(cu(cudaMemsetAsync(g->flag, 0, sizeof(int), g->stream), "cudaMemset"));
    TRY(kr(trn_k_nonfinite(g->flag, g->grads, m->nparams, g->stream), "gradient check"));
    TRY(cu(cudaMemcpyAsync(g->h_flag, g->flag, sizeof(int), cudaMemcpyDeviceToHost, g->stream), "flag copy"));
    TRY(cu(cudaStreamSynchronize(g->stream), "gradient check"));
    if (*g->h_flag) {
        if (g->opt.precision == TNREC_PRECISION_FP16 && g->loss_scale > 1.0) {
            /* Overflow under loss scaling: skip this step, scale down
             * (never below 1, which checkpoints require). */
            g->loss_scale = g->loss_scale / 2 < 1.0 ? 1.0 : g->loss_scale / 2;
            g->good_steps = 0;
            return TNREC_OK;
        }
        return tnrec__fail(TNREC_ERANGE, "gradient is not finite on the GPU\n"
                                         "hint: lower --lr or add --clipvalue / --clipnorm");
    }
    if (o->cfg.clipnorm > 0)
        TRY(kr(trn_k_clipnorm(g->grads, g->clip_off, g->clip_len, g->nclip, (float)o->cfg.clipnorm, g->stream),
               "norm clipping"));
    float decay = 1.0f;
    if (o->cfg.kind == TNREC_OPT_ADAMW && o->cfg.weight_decay > 0)
        decay = (float)(1.0 - lr * o->cfg.weight_decay);
    o->t++;
    double b1 = o->cfg.beta1, b2 = o->cfg.beta2;
    double alpha = lr * sqrt(1 - pow(b2, (double)o->t)) / (1 - pow(b1, (double)o->t));
    TRY(kr(trn_k_adam(g->params, g->opt_m, g->opt_v, g->grads, m->nparams, (float)alpha, (float)b1, (float)b2,
                         (float)o->cfg.epsilon, (float)o->cfg.clipvalue, decay, g->stream),
           "Adam"));
    g->weights_dirty = 1;
    if (g->opt.precision == TNREC_PRECISION_FP16 && ++g->good_steps >= SCALE_GROWTH_STEPS) {
        g->loss_scale *= 2;
        g->good_steps = 0;
    }
    if (out_applied)
        *out_applied = 1;
    return TNREC_OK;
}

uint64_t trn_gpu_net_staged_steps(const tnrec_gpu_net *g) { return g->staged_steps; }

void trn_gpu_net_loss_scale(const tnrec_gpu_net *g, double *out_scale, int *out_good_steps)
{
    *out_scale = g->loss_scale;
    *out_good_steps = g->good_steps;
}

tnrec_err trn_gpu_net_set_loss_scale(tnrec_gpu_net *g, double scale, int good_steps)
{
    if (!(scale >= 1.0) || !isfinite(scale) || good_steps < 0)
        return tnrec__fail(TNREC_EINVAL, "loss scale %g (after %d good steps) is not a finite number >= 1", scale,
                           good_steps);
    if (g->opt.precision != TNREC_PRECISION_FP16)
        return TNREC_OK; /* only float16 scales the loss */
    g->loss_scale = scale;
    g->good_steps = good_steps < SCALE_GROWTH_STEPS ? good_steps : 0;
    return TNREC_OK;
}
