/* train/conv_dnnl.c: Conv3D forward and backward through oneDNN (when
 * compiled with it), on the same NDHWC activations and [kd][kh][kw][ci][co]
 * kernels as the direct path.
 *
 * Primitives are created once per shape and kept in a small cache (a run
 * sees a handful of shapes: one per layer, plus the last partial batch and
 * the inference batch); buffers are attached per call. Not thread-safe for
 * concurrent calls (the trainer runs one step at a time); oneDNN itself
 * uses the OpenMP threads. Checked against train/reference.c by tests. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "conv_impl.h"
#include "tnrec/config.h"

#if TNREC_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>

enum { K_FWD, K_BWD_DATA, K_BWD_WEIGHTS };

typedef struct prim {
    int kind, n, d, h, w, ci, co, bias;
    dnnl_primitive_t p;
    dnnl_memory_t m[4];
    int args[4];
    int nargs;
    struct prim *next;
} prim;

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static prim *cache;

static tnrec_err dnnl_fail(dnnl_status_t st, const char *what)
{
    return tnrec__fail(st == dnnl_out_of_memory ? TNREC_ENOMEM : TNREC_EINTERNAL,
                       "oneDNN %s failed (status %d)\nhint: set TNREC_CONV=direct to use the built-in kernels", what, (int)st);
}

static tnrec_err ensure_engine(void)
{
    dnnl_status_t st;
    if (!engine && (st = dnnl_engine_create(&engine, dnnl_cpu, 0)) != dnnl_success)
        return dnnl_fail(st, "engine creation");
    if (!stream && (st = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags)) != dnnl_success)
        return dnnl_fail(st, "stream creation");
    return TNREC_OK;
}

static void desc_act(dnnl_memory_desc_t *md, int n, int c, int d, int h, int w)
{
    dnnl_dims_t dims = { n, c, d, h, w };
    dnnl_memory_desc_init_by_tag(md, 5, dims, dnnl_f32, dnnl_ndhwc);
}
static void desc_weights(dnnl_memory_desc_t *md, int ci, int co)
{
    dnnl_dims_t dims = { co, ci, 3, 3, 3 };
    dnnl_memory_desc_init_by_tag(md, 5, dims, dnnl_f32, dnnl_dhwio);
}
static void desc_bias(dnnl_memory_desc_t *md, int co)
{
    dnnl_dims_t dims = { co };
    dnnl_memory_desc_init_by_tag(md, 1, dims, dnnl_f32, dnnl_x);
}

static tnrec_err get_prim(prim **out, int kind, int n, int d, int h, int w, int ci, int co, int bias)
{
    for (prim *p = cache; p; p = p->next)
        if (p->kind == kind && p->n == n && p->d == d && p->h == h && p->w == w && p->ci == ci && p->co == co && p->bias == bias) {
            *out = p;
            return TNREC_OK;
        }
    tnrec_err err = ensure_engine();
    if (err)
        return err;
    dnnl_memory_desc_t src, wt, b, dst;
    desc_act(&src, n, ci, d, h, w);
    desc_act(&dst, n, co, d, h, w);
    desc_weights(&wt, ci, co);
    desc_bias(&b, co);
    dnnl_dims_t one = { 1, 1, 1 }, pad = { 1, 1, 1 };
    dnnl_convolution_desc_t fd, bd;
    dnnl_primitive_desc_t fpd = NULL, pd = NULL;
    dnnl_status_t st = dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &src, &wt,
                                                          bias ? &b : NULL, &dst, one, pad, pad);
    if (st == dnnl_success)
        st = dnnl_primitive_desc_create(&fpd, &fd, NULL, engine, NULL);
    if (st != dnnl_success)
        return dnnl_fail(st, "convolution set-up");
    prim *p = calloc(1, sizeof *p);
    if (!p) {
        dnnl_primitive_desc_destroy(fpd);
        return tnrec__fail(TNREC_ENOMEM, "out of memory");
    }
    *p = (prim){ .kind = kind, .n = n, .d = d, .h = h, .w = w, .ci = ci, .co = co, .bias = bias };
    const dnnl_memory_desc_t *mds[4];
    if (kind == K_FWD) {
        pd = fpd;
        fpd = NULL;
        p->args[0] = DNNL_ARG_SRC; mds[0] = &src;
        p->args[1] = DNNL_ARG_WEIGHTS; mds[1] = &wt;
        p->args[2] = DNNL_ARG_DST; mds[2] = &dst;
        p->args[3] = DNNL_ARG_BIAS; mds[3] = &b;
        p->nargs = bias ? 4 : 3;
    } else if (kind == K_BWD_DATA) {
        st = dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &src, &wt, &dst, one, pad, pad);
        if (st == dnnl_success)
            st = dnnl_primitive_desc_create(&pd, &bd, NULL, engine, fpd);
        p->args[0] = DNNL_ARG_DIFF_DST; mds[0] = &dst;
        p->args[1] = DNNL_ARG_WEIGHTS; mds[1] = &wt;
        p->args[2] = DNNL_ARG_DIFF_SRC; mds[2] = &src;
        p->nargs = 3;
    } else {
        st = dnnl_convolution_backward_weights_desc_init(&bd, dnnl_convolution_direct, &src, &wt, bias ? &b : NULL, &dst,
                                                         one, pad, pad);
        if (st == dnnl_success)
            st = dnnl_primitive_desc_create(&pd, &bd, NULL, engine, fpd);
        p->args[0] = DNNL_ARG_SRC; mds[0] = &src;
        p->args[1] = DNNL_ARG_DIFF_DST; mds[1] = &dst;
        p->args[2] = DNNL_ARG_DIFF_WEIGHTS; mds[2] = &wt;
        p->args[3] = DNNL_ARG_DIFF_BIAS; mds[3] = &b;
        p->nargs = bias ? 4 : 3;
    }
    if (fpd)
        dnnl_primitive_desc_destroy(fpd);
    if (st == dnnl_success)
        st = dnnl_primitive_create(&p->p, pd);
    for (int i = 0; i < p->nargs && st == dnnl_success; i++)
        st = dnnl_memory_create(&p->m[i], mds[i], engine, DNNL_MEMORY_NONE);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) {
        for (int i = 0; i < 4; i++)
            if (p->m[i])
                dnnl_memory_destroy(p->m[i]);
        if (p->p)
            dnnl_primitive_destroy(p->p);
        free(p);
        return dnnl_fail(st, "convolution set-up");
    }
    p->next = cache;
    cache = p;
    *out = p;
    return TNREC_OK;
}

static tnrec_err run(prim *p, void *const *bufs)
{
    dnnl_exec_arg_t args[4];
    for (int i = 0; i < p->nargs; i++) {
        dnnl_status_t st = dnnl_memory_set_data_handle(p->m[i], bufs[i]);
        if (st != dnnl_success)
            return dnnl_fail(st, "buffer binding");
        args[i].arg = p->args[i];
        args[i].memory = p->m[i];
    }
    dnnl_status_t st = dnnl_primitive_execute(p->p, stream, p->nargs, args);
    if (st == dnnl_success)
        st = dnnl_stream_wait(stream);
    return st == dnnl_success ? TNREC_OK : dnnl_fail(st, "convolution");
}

int tnrec__conv_dnnl_available(void) { return 1; }

tnrec_err tnrec__conv_dnnl_forward(float *y, const float *x, const float *k, const float *b, int n, int d, int h,
                                   int w, int ci, int co)
{
    prim *p;
    tnrec_err err = get_prim(&p, K_FWD, n, d, h, w, ci, co, b != NULL);
    if (err)
        return err;
    void *bufs[4] = { (void *)x, (void *)k, y, (void *)b };
    return run(p, bufs);
}

tnrec_err tnrec__conv_dnnl_backward(float *dx, float *dk, float *db, const float *x, const float *k,
                                    const float *dy, int n, int d, int h, int w, int ci, int co)
{
    prim *p;
    tnrec_err err = TNREC_OK;
    if (dx) {
        if ((err = get_prim(&p, K_BWD_DATA, n, d, h, w, ci, co, 0)))
            return err;
        void *bufs[3] = { (void *)dy, (void *)k, dx };
        if ((err = run(p, bufs)))
            return err;
    }
    if (dk) {
        if ((err = get_prim(&p, K_BWD_WEIGHTS, n, d, h, w, ci, co, db != NULL)))
            return err;
        void *bufs[4] = { (void *)x, (void *)dy, dk, db };
        err = run(p, bufs);
    } else if (db) {
        return tnrec__fail(TNREC_EINVAL, "conv3d backward: bias gradient without kernel gradient");
    }
    return err;
}

#else

int tnrec__conv_dnnl_available(void) { return 0; }

tnrec_err tnrec__conv_dnnl_forward(float *y, const float *x, const float *k, const float *b, int n, int d, int h,
                                   int w, int ci, int co)
{
    return tnrec__fail(TNREC_EUNSUPPORTED, "this tnrec was built without oneDNN\nhint: install libdnnl-dev and rebuild");
}

tnrec_err tnrec__conv_dnnl_backward(float *dx, float *dk, float *db, const float *x, const float *k,
                                    const float *dy, int n, int d, int h, int w, int ci, int co)
{
    return tnrec__fail(TNREC_EUNSUPPORTED, "this tnrec was built without oneDNN\nhint: install libdnnl-dev and rebuild");
}

#endif
