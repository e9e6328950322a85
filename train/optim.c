/* train/optim.c: Adam and AdamW as Keras defines them, with value and norm
 * clipping.
 *
 * Update (Keras): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * w -= lr * sqrt(1-b2^t) / (1-b1^t) * m / (sqrt(v) + eps); AdamW first
 * applies w -= lr * weight_decay * w to every trainable variable (Keras'
 * default: nothing excluded).
 * clipnorm is per tensor (each kernel, bias, gamma, beta), as Keras'
 * clipnorm; clipvalue clips elements. Not here: learning-rate schedules
 * (the trainer passes lr each step). State is m, v and the step count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "nn.h"
#include "optim.h"

void tnrec_optim_config_default(tnrec_optim_config *out, tnrec_optimizer_kind kind)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->beta1 = 0.9;
    out->beta2 = 0.999;
    out->epsilon = 1e-7;
    out->weight_decay = kind == TNREC_OPT_ADAMW ? 0.004 : 0.0;
}

tnrec_err tnrec_optim_create(tnrec_optim **out, const tnrec_optim_config *cfg, const tnrec_model *m)
{
    *out = NULL;
    if (cfg->kind != TNREC_OPT_ADAM && cfg->kind != TNREC_OPT_ADAMW)
        return tnrec__fail(TNREC_EINVAL, "unknown optimizer %d\nhint: use adam or adamw", (int)cfg->kind);
    if (!(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1) || !(cfg->epsilon > 0) ||
        !(cfg->weight_decay >= 0) || !(cfg->clipvalue >= 0) || !(cfg->clipnorm >= 0))
        return tnrec__fail(TNREC_EINVAL, "optimizer settings out of range (betas in [0,1), epsilon > 0, decay and clipping >= 0)");
    tnrec_optim *o = calloc(1, sizeof *o);
    if (!o)
        return tnrec__fail(TNREC_ENOMEM, "out of memory for the optimizer");
    o->cfg = *cfg;
    o->n = m->nparams;
    o->m = calloc(o->n, sizeof *o->m);
    o->v = calloc(o->n, sizeof *o->v);
    if (!o->m || !o->v) {
        tnrec_optim_free(o);
        return tnrec__fail(TNREC_ENOMEM, "out of memory for the optimizer (%zu parameters)", m->nparams);
    }
    *out = o;
    return TNREC_OK;
}

void tnrec_optim_free(tnrec_optim *o)
{
    if (!o)
        return;
    free(o->m);
    free(o->v);
    free(o);
}

uint64_t tnrec_optim_iterations(const tnrec_optim *o) { return o->t; }

static void clip_tensor(float *g, size_t len, double clipnorm)
{
    double s = 0;
    for (size_t j = 0; j < len; j++)
        s += (double)g[j] * g[j];
    double norm = sqrt(s);
    if (norm > clipnorm) {
        float f = (float)(clipnorm / norm);
        for (size_t j = 0; j < len; j++)
            g[j] *= f;
    }
}

tnrec_err tnrec_optim_step(tnrec_optim *o, tnrec_model *mdl, double lr)
{
    if (o->n != mdl->nparams)
        return tnrec__fail(TNREC_EINVAL, "optimizer made for %zu parameters used on a model with %zu", o->n, mdl->nparams);
    if (!(lr >= 0) || !isfinite(lr))
        return tnrec__fail(TNREC_EINVAL, "learning rate %g is not a finite number >= 0", lr);
    float *g = mdl->grads, *w = mdl->params;
    for (size_t j = 0; j < o->n; j++)
        if (!isfinite(g[j]))
            return tnrec__fail(TNREC_ERANGE, "gradient is not finite (parameter %zu)\n"
                                             "hint: lower --lr or add --clipvalue / --clipnorm", j);
    if (o->cfg.clipnorm > 0)
        for (int i = 0; i < mdl->nlayers; i++) {
            const trn_layer *L = &mdl->layers[i];
            if (L->w_len)
                clip_tensor(g + L->w_off, L->w_len, o->cfg.clipnorm);
            if (L->b_len)
                clip_tensor(g + L->b_off, L->b_len, o->cfg.clipnorm);
        }
    if (o->cfg.clipvalue > 0) {
        float c = (float)o->cfg.clipvalue;
        for (size_t j = 0; j < o->n; j++)
            g[j] = g[j] > c ? c : g[j] < -c ? -c : g[j];
    }
    if (o->cfg.kind == TNREC_OPT_ADAMW && o->cfg.weight_decay > 0) {
        float f = (float)(1.0 - lr * o->cfg.weight_decay);
        for (size_t j = 0; j < o->n; j++)
            w[j] *= f;
    }
    o->t++;
    double b1 = o->cfg.beta1, b2 = o->cfg.beta2;
    double alpha = lr * sqrt(1 - pow(b2, (double)o->t)) / (1 - pow(b1, (double)o->t));
    float fb1 = (float)b1, fb2 = (float)b2, fa = (float)alpha, feps = (float)o->cfg.epsilon;
    for (size_t j = 0; j < o->n; j++) {
        o->m[j] = fb1 * o->m[j] + (1 - fb1) * g[j];
        o->v[j] = fb2 * o->v[j] + (1 - fb2) * g[j] * g[j];
        w[j] -= fa * o->m[j] / (sqrtf(o->v[j]) + feps);
    }
    return TNREC_OK;
}
