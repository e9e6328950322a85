/* train/nn.h: private to train/: the model's layer table, the float
 * versions of the reference layers, the allreduce-aware training step.
 *
 * A model is a flat list of layers; parameters live in one flat float
 * array (trainable: kernels, biases, BN gamma and beta) and one state array
 * (BN moving mean and variance), so the optimiser, checkpoints and the
 * gradient all-reduce see single arrays. */
#ifndef TNREC_TRAIN_NN_H
#define TNREC_TRAIN_NN_H

#include <stddef.h>
#include <stdint.h>

#include "allreduce.h"
#include "tnrec/gpu.h"
#include "tnrec/train.h"

#define TRN_BN_MOMENTUM 0.99
#define TRN_BN_EPSILON 1e-3
#define TRN_LEAKY_ALPHA 0.1

/* The coordinate channels of a CoordConv layer (train/model.c): range in
 * units of 1e-5 m across each chip's range_limits [lower, upper] (250 m
 * gates), floored at TRN_COORD_MIN_RANGE_M as cnn_baseline.py's
 * compute_coordinates does. A chip without limits takes the fixed window
 * of 250 m gates starting at TRN_COORD_RANGE0_M. */
#define TRN_COORD_RANGE0_M 50000.0
#define TRN_COORD_GATE_M 250.0
#define TRN_COORD_MIN_RANGE_M 2125.0
#define TRN_COORD_SCALE 1e-5
#define TRN_NCOORD 2 /* r, 1/r */

enum trn_layer_kind {
    TRN_CONV, TRN_BN, TRN_LRELU, TRN_POOL, TRN_SDROP,
    TRN_GPOOL, TRN_DENSE, TRN_DROP,
    TRN_CCONV,  /* CoordConv2D: 3x3 per frame over the input and the coordinates */
    TRN_CONV1,  /* 1x1 convolution (a Dense at every position) */
    TRN_RELU,   /* ReLU */
    TRN_EDROP   /* Dropout of single elements (Keras Dropout on a feature map) */
};

typedef struct trn_layer {
    int kind;
    int in_d, in_h, in_w, in_c;      /* input of one sample */
    int d, h, w, c;                  /* output of one sample (dense: 1,1,1,units) */
    int pool[3];
    int same;                        /* pool: 'same' padding (ceil), not 'valid' (floor) */
    size_t c_off;                    /* CoordConv: its w x 2 coordinates in the model's coords */
    double rate, alpha, l2;
    size_t w_off, w_len, b_off, b_len; /* in params: kernel + bias, or BN gamma + beta */
    size_t s_off;                    /* in state: BN moving mean (c), then variance (c) */
    int inplace;                     /* output shares the input's buffer */
} trn_layer;

struct tnrec_model {
    tnrec_input_shape in;
    char *spec;
    int nlayers;
    trn_layer *layers;
    size_t nparams, nstate;
    float *params, *grads, *state;
    double *coords;                  /* CoordConv coordinates (r, 1/r per range gate) of the fixed window, ncoords values */
    size_t ncoords;
};

static inline size_t trn_layer_out_elems(const trn_layer *L)
{
    return (size_t)L->d * L->h * L->w * L->c;
}
static inline size_t trn_layer_in_elems(const trn_layer *L)
{
    return (size_t)L->in_d * L->in_h * L->in_w * L->in_c;
}
const char *trn_layer_kind_name(int kind);
/* The first layer of m that the GPU net cannot run, or -1. */
int trn_model_first_cpu_only_layer(const tnrec_model *m);

/* What a new run of a model takes when it gives none (train/model.c's
 * preset table; a layer spec gets the defaults of the non-tiny presets). */
typedef struct trn_model_defaults {
    int batch, epochs;          /* the train config's batch and epochs 0 */
    int keeps_dataset_nodata;   /* the config's nodata NULL: 1 the dataset's value, 0 TRN_DEFAULT_NODATA */
} trn_model_defaults;
/* The defaults of model: a preset name, a layer spec, or NULL for tiny. */
const trn_model_defaults *trn_model_defaults_of(const char *model);

/* The input gradient's kernel (train/conv_fast.c): dx = conv(dy, K') with
 * K'[2-kz][2-ky][2-kx][o][c] = K[kz][ky][kx][c][o]; kflip holds 27 x co x ci. */
void trn_conv3d_flip_kernel(float *kflip, const float *k, int ci, int co);

/* Float instances of the reference layers (train/reference_float.c). */
#define TRN_REF32_DECLS(real, FN)                                                              \
    void FN(conv3d_forward)(real *y, const real *x, const real *k, const real *b, int n, int d,  \
                            int h, int w, int ci, int co);                                       \
    void FN(conv3d_backward)(real *dx, real *dk, real *db, const real *x, const real *k,         \
                             const real *dy, int n, int d, int h, int w, int ci, int co);        \
    void FN(batchnorm_forward_train)(real *y, real *mean, real *var, const real *x,              \
                                     const real *gamma, const real *beta, size_t m, int c,       \
                                     real eps);                                                  \
    void FN(batchnorm_forward_infer)(real *y, const real *x, const real *gamma,                  \
                                     const real *beta, const real *mm, const real *mv, size_t m, \
                                     int c, real eps);                                           \
    void FN(batchnorm_backward)(real *dx, real *dgamma, real *dbeta, const real *x,              \
                                const real *gamma, const real *mean, const real *var,            \
                                const real *dy, size_t m, int c, real eps);                      \
    void FN(leaky_relu_forward)(real *y, const real *x, size_t len, real alpha);                 \
    void FN(leaky_relu_backward)(real *dx, const real *x, const real *dy, size_t len,            \
                                 real alpha);                                                    \
    void FN(maxpool3d_forward)(real *y, const real *x, int n, int d, int h, int w, int c,        \
                               int pd, int ph, int pw);                                          \
    void FN(maxpool3d_backward)(real *dx, const real *x, const real *dy, int n, int d, int h,    \
                                int w, int c, int pd, int ph, int pw);                           \
    void FN(channel_scale_forward)(real *y, const real *x, const real *scale, int n, size_t s,   \
                                   int c);                                                       \
    void FN(channel_scale_backward)(real *dx, const real *dy, const real *scale, int n,          \
                                    size_t s, int c);                                            \
    void FN(dropout_mask)(real *scale, size_t count, double rate, uint64_t seed,                 \
                          uint64_t stream, uint64_t first);                                      \
    void FN(global_maxpool_forward)(real *y, const real *x, int n, size_t s, int c);             \
    void FN(global_maxpool_backward)(real *dx, const real *x, const real *dy, int n, size_t s,   \
                                     int c);                                                     \
    void FN(dense_forward)(real *y, const real *x, const real *wt, const real *b, int n, int in, \
                           int out);                                                             \
    void FN(dense_backward)(real *dx, real *dw, real *db, const real *x, const real *wt,         \
                            const real *dy, int n, int in, int out);                             \
    void FN(coordconv2d_forward)(real *y, const real *x, const real *coord, const real *k,        \
                                 const real *b, int n, int d, int h, int w, int ci, int co);     \
    void FN(coordconv2d_backward)(real *dx, real *dk, real *db, const real *x,                   \
                                  const real *coord, const real *k, const real *dy, int n,       \
                                  int d, int h, int w, int ci, int co);                          \
    void FN(relu_forward)(real *y, const real *x, size_t len);                                   \
    void FN(relu_backward)(real *dx, const real *x, const real *dy, size_t len);                 \
    void FN(maxpool3d_same_forward)(real *y, const real *x, int n, int d, int h, int w, int c,   \
                                    int pd, int ph, int pw);                                     \
    void FN(maxpool3d_same_backward)(real *dx, const real *x, const real *dy, int n, int d,      \
                                     int h, int w, int c, int pd, int ph, int pw);               \
    double FN(bce_logits)(real *dz, const real *z, const real *label, const real *weight, int n, \
                          double denom);

#define TRN_REF32(name) trn_ref32_##name
TRN_REF32_DECLS(float, TRN_REF32)

/* CoordConv coordinates. The fixed window of a chip `width` gates wide;
 * whether limits [lower, upper] (metres) are a range window at all; and
 * the model's m->ncoords coordinates for a chip with those limits
 * (scratch: m->in.width x TRN_NCOORD doubles). */
void trn_coords_default_window(int width, float limits[2]);
int trn_coords_window_ok(const float limits[2]);
void trn_model_coords(const tnrec_model *m, const float limits[2], double *scratch, double *out);
/* 1 when a model spec (or preset name) has CoordConv layers, which take
 * each sample's range_limits. */
int trn_spec_has_coords(const char *spec);

/* The training step with a part of a global batch: this process holds
 * samples [global_first, global_first + n) of a batch of global_n. BN
 * statistics and the gradient are summed over all ranks of ar (NULL: one
 * process); the loss is the global one. range_limits: n x [lower, upper]
 * metres, each chip's range window for the CoordConv coordinates (NULL:
 * the fixed window). */
tnrec_err trn_net_train_step(tnrec_net *net, const float *x, const float *range_limits,
                             const float *label, const float *weight, int n, int global_n, int global_first,
                             uint64_t dropout_seed, trn_allreduce *ar, float *logits,
                             double *out_loss);
/* The precision of inference on the CPU: fp32 (the default), or bf16:
 * bfloat16 products and float32 sums in the convolutions where the CPU
 * has avx512_bf16 and TNREC_CPU_BF16 is not "off", float32 elsewhere
 * (trn_net_bf16 says which). fp16 is refused (TNREC_EINVAL). Training
 * steps compute in float32 unless trn_net_set_train_precision says bf16. */
tnrec_err trn_net_set_precision(tnrec_net *net, tnrec_precision p);
/* The same for training steps too: with bf16 (where it takes effect) the
 * convolutions' forward, input gradient and kernel gradient multiply in
 * bfloat16 and sum in float32; the weights, their gradients and every
 * other layer stay float32. Allocates the scratch it needs. */
tnrec_err trn_net_set_train_precision(tnrec_net *net, tnrec_precision p);
int trn_net_bf16(const tnrec_net *net);
/* L2 penalty of the current weights (sum over layers of l2 * sum w^2). */
double trn_model_l2(const tnrec_model *m);

#endif
