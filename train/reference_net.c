/* train/reference_net.c: a whole model's loss and gradient in double
 * precision, chaining the reference layers, for gradient checks and as the
 * ground truth of the float training step (train/network.c).
 *
 * Deliberately simple: one buffer per layer, no threads, no reuse. Training
 * mode only (batch statistics, dropout masks drawn as the float path draws
 * them). */
#include <stdlib.h>
#include <string.h>

#define TNREC_TESTING 1 /* tnrec_ref_* and tnrec_model_ref_loss (tnrec/testing.h) */
#include "common.h"
#include "nn.h"
#include "tnrec/testing.h"

tnrec_err tnrec_model_ref_loss(double *out_loss, double *grad, const tnrec_model *m,
                               const double *params, const double *x, const double *label,
                               const double *weight, int n, uint64_t dropout_seed)
{
    int nl = m->nlayers;
    tnrec_err err = TNREC_OK;
    double **act = calloc((size_t)nl + 1, sizeof *act);     /* act[i]: input of layer i */
    double **aux = calloc((size_t)nl, sizeof *aux);          /* BN mean+var, dropout scale */
    double *g = NULL, *gin = NULL;
    if (!act || !aux) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory in the reference model");
        goto done;
    }
    act[0] = (double *)x;
    for (int i = 0; i < nl; i++) {
        const trn_layer *L = &m->layers[i];
        size_t outn = (size_t)n * trn_layer_out_elems(L);
        size_t m_pos = (size_t)n * L->d * L->h * L->w;
        const double *in = act[i];
        double *y = malloc(outn * sizeof *y);
        act[i + 1] = y;
        if (!y) {
            err = tnrec__fail(TNREC_ENOMEM, "out of memory in the reference model");
            goto done;
        }
        const double *pw = params + L->w_off, *pb = params + L->b_off;
        switch (L->kind) {
        case TRN_CONV:
            tnrec_ref_conv3d_forward(y, in, pw, pb, n, L->d, L->h, L->w, L->in_c, L->c);
            break;
        case TRN_BN:
            if (!(aux[i] = malloc(2 * (size_t)L->c * sizeof(double)))) {
                err = tnrec__fail(TNREC_ENOMEM, "out of memory in the reference model");
                goto done;
            }
            tnrec_ref_batchnorm_forward_train(y, aux[i], aux[i] + L->c, in, pw, pb, m_pos, L->c, TRN_BN_EPSILON);
            break;
        case TRN_LRELU:
            tnrec_ref_leaky_relu_forward(y, in, outn, L->alpha);
            break;
        case TRN_POOL:
            if (L->same)
                tnrec_ref_maxpool3d_same_forward(y, in, n, L->in_d, L->in_h, L->in_w, L->c, L->pool[0], L->pool[1], L->pool[2]);
            else
                tnrec_ref_maxpool3d_forward(y, in, n, L->in_d, L->in_h, L->in_w, L->c, L->pool[0], L->pool[1], L->pool[2]);
            break;
        case TRN_CCONV:
            tnrec_ref_coordconv2d_forward(y, in, m->coords + L->c_off, pw, pb, n, L->d, L->h, L->w, L->in_c, L->c);
            break;
        case TRN_CONV1:
            tnrec_ref_dense_forward(y, in, pw, pb, (int)m_pos, L->in_c, L->c);
            break;
        case TRN_RELU:
            tnrec_ref_relu_forward(y, in, outn);
            break;
        case TRN_EDROP:
            if (!(aux[i] = malloc(outn * sizeof(double)))) {
                err = tnrec__fail(TNREC_ENOMEM, "out of memory in the reference model");
                goto done;
            }
            tnrec_ref_dropout_mask(aux[i], outn, L->rate, dropout_seed, (uint64_t)i, 0);
            tnrec_ref_channel_scale_forward(y, in, aux[i], n, 1, (int)trn_layer_out_elems(L));
            break;
        case TRN_SDROP:
        case TRN_DROP:
            if (!(aux[i] = malloc((size_t)n * L->c * sizeof(double)))) {
                err = tnrec__fail(TNREC_ENOMEM, "out of memory in the reference model");
                goto done;
            }
            tnrec_ref_dropout_mask(aux[i], (size_t)n * L->c, L->rate, dropout_seed, (uint64_t)i, 0);
            tnrec_ref_channel_scale_forward(y, in, aux[i], n, (size_t)L->d * L->h * L->w, L->c);
            break;
        case TRN_GPOOL:
            tnrec_ref_global_maxpool_forward(y, in, n, (size_t)L->in_d * L->in_h * L->in_w, L->c);
            break;
        case TRN_DENSE:
            tnrec_ref_dense_forward(y, in, pw, pb, n, L->in_c, L->c);
            break;
        }
    }
    size_t maxe = (size_t)m->in.frames * m->in.height * m->in.width * m->in.channels;
    for (int i = 0; i < nl; i++)
        if (trn_layer_out_elems(&m->layers[i]) > maxe)
            maxe = trn_layer_out_elems(&m->layers[i]);
    g = malloc((size_t)n * maxe * sizeof *g);
    gin = malloc((size_t)n * maxe * sizeof *gin);
    if (!g || !gin) {
        err = tnrec__fail(TNREC_ENOMEM, "out of memory in the reference model");
        goto done;
    }
    double loss = tnrec_ref_bce_logits(g, act[nl], label, weight, n, (double)n);
    if (grad)
        memset(grad, 0, m->nparams * sizeof *grad);
    for (int i = nl - 1; i >= 0 && grad; i--) {
        const trn_layer *L = &m->layers[i];
        const double *in = act[i];
        size_t inn = (size_t)n * trn_layer_in_elems(L);
        size_t m_pos = (size_t)n * L->d * L->h * L->w;
        const double *pw = params + L->w_off;
        double *gw = grad + L->w_off, *gb = grad + L->b_off;
        double *dx = i > 0 ? gin : NULL;
        switch (L->kind) {
        case TRN_CONV:
            tnrec_ref_conv3d_backward(dx, gw, gb, in, pw, g, n, L->d, L->h, L->w, L->in_c, L->c);
            break;
        case TRN_BN:
            tnrec_ref_batchnorm_backward(dx, gw, gb, in, pw, aux[i], aux[i] + L->c, g, m_pos, L->c, TRN_BN_EPSILON);
            break;
        case TRN_LRELU:
            if (dx)
                tnrec_ref_leaky_relu_backward(dx, in, g, inn, L->alpha);
            break;
        case TRN_POOL:
            if (dx && L->same)
                tnrec_ref_maxpool3d_same_backward(dx, in, g, n, L->in_d, L->in_h, L->in_w, L->c, L->pool[0], L->pool[1], L->pool[2]);
            else if (dx)
                tnrec_ref_maxpool3d_backward(dx, in, g, n, L->in_d, L->in_h, L->in_w, L->c, L->pool[0], L->pool[1], L->pool[2]);
            break;
        case TRN_CCONV:
            tnrec_ref_coordconv2d_backward(dx, gw, gb, in, m->coords + L->c_off, pw, g, n, L->d, L->h, L->w, L->in_c, L->c);
            break;
        case TRN_CONV1:
            tnrec_ref_dense_backward(dx, gw, gb, in, pw, g, (int)m_pos, L->in_c, L->c);
            break;
        case TRN_RELU:
            if (dx)
                tnrec_ref_relu_backward(dx, in, g, inn);
            break;
        case TRN_EDROP:
            if (dx)
                tnrec_ref_channel_scale_backward(dx, g, aux[i], n, 1, (int)trn_layer_out_elems(L));
            break;
        case TRN_SDROP:
        case TRN_DROP:
            if (dx)
                tnrec_ref_channel_scale_backward(dx, g, aux[i], n, (size_t)L->d * L->h * L->w, L->c);
            break;
        case TRN_GPOOL:
            if (dx)
                tnrec_ref_global_maxpool_backward(dx, in, g, n, (size_t)L->in_d * L->in_h * L->in_w, L->c);
            break;
        case TRN_DENSE:
            tnrec_ref_dense_backward(dx, gw, gb, in, pw, g, n, L->in_c, L->c);
            break;
        }
        double *t = g;
        g = gin;
        gin = t;
    }
    for (int i = 0; i < nl; i++) {
        const trn_layer *L = &m->layers[i];
        if (L->l2 <= 0)
            continue;
        for (size_t j = 0; j < L->w_len; j++) {
            double wv = params[L->w_off + j];
            loss += L->l2 * wv * wv;
            if (grad)
                grad[L->w_off + j] += 2 * L->l2 * wv;
        }
    }
    *out_loss = loss;
done:
    if (act)
        for (int i = 1; i <= nl; i++)
            free(act[i]);
    if (aux)
        for (int i = 0; i < nl; i++)
            free(aux[i]);
    free(act);
    free(aux);
    free(g);
    free(gin);
    return err;
}
