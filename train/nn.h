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
#include "tnrec/train.h"

#define TNREC__BN_MOMENTUM 0.99
#define TNREC__BN_EPSILON 1e-3
#define TNREC__LEAKY_ALPHA 0.1

enum tnrec__layer_kind {
    TNREC__CONV, TNREC__BN, TNREC__LRELU, TNREC__POOL, TNREC__SDROP,
    TNREC__GPOOL, TNREC__DENSE, TNREC__DROP
};

typedef struct tnrec__layer {
    int kind;
    int in_d, in_h, in_w, in_c;      /* input of one sample */
    int d, h, w, c;                  /* output of one sample (dense: 1,1,1,units) */
    int pool[3];
    double rate, alpha, l2;
    size_t w_off, w_len, b_off, b_len; /* in params: kernel + bias, or BN gamma + beta */
    size_t s_off;                    /* in state: BN moving mean (c), then variance (c) */
    int inplace;                     /* output shares the input's buffer */
} tnrec__layer;

struct tnrec_model {
    tnrec_input_shape in;
    char *spec;
    int nlayers;
    tnrec__layer *layers;
    size_t nparams, nstate;
    float *params, *grads, *state;
};

static inline size_t tnrec__layer_out_elems(const tnrec__layer *L)
{
    return (size_t)L->d * L->h * L->w * L->c;
}
static inline size_t tnrec__layer_in_elems(const tnrec__layer *L)
{
    return (size_t)L->in_d * L->in_h * L->in_w * L->in_c;
}
const char *tnrec__layer_kind_name(int kind);

/* Float instances of the reference layers (train/reference_float.c). */
#define TNREC__REFF_DECLS(real, FN)                                                              \
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
    double FN(bce_logits)(real *dz, const real *z, const real *label, const real *weight, int n, \
                          double denom);

#define TNREC__REFF(name) tnrec__reff_##name
TNREC__REFF_DECLS(float, TNREC__REFF)

/* The training step with a part of a global batch: this process holds
 * samples [global_first, global_first + n) of a batch of global_n. BN
 * statistics and the gradient are summed over all ranks of ar (NULL: one
 * process); the loss is the global one. */
tnrec_err tnrec__net_train_step(tnrec_net *net, const float *x, const float *label,
                                const float *weight, int n, int global_n, int global_first,
                                uint64_t dropout_seed, trn_allreduce *ar, float *logits,
                                double *out_loss);
/* L2 penalty of the current weights (sum over layers of l2 * sum w^2). */
double tnrec__model_l2(const tnrec_model *m);

#endif
